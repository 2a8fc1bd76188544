package demo

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
)

// TestStartServesAndCloseStopsEverything runs the services on real ports
// and checks that Close leaves no goroutine and no listener behind. It is
// not parallel, so the goroutine count is its own.
func TestStartServesAndCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()

	s, err := Start(nil)
	if err != nil {
		t.Fatalf("Start: %s", err)
	}
	controlAddr, err := s.ListenControl("127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenControl: %s", err)
	}
	control := "http://" + controlAddr
	urls := map[string]string{
		"auth": s.Auth, "orders-1": s.Orders, "orders-2": s.Orders2, "payment": s.Payment,
		"products": s.Products, "control": control,
	}
	seen := map[string]bool{}
	for name, u := range urls {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("%s URL: got %q, want http://127.0.0.1:PORT", name, u)
		}
		if seen[u] {
			t.Errorf("%s URL %s is shared with another service", name, u)
		}
		seen[u] = true
	}

	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	requests := []struct{ service, method, url, body string }{
		{"auth", http.MethodPost, s.Auth + "/login", tourLoginBody},
		{"orders", http.MethodGet, s.Orders + "/", ""},
		{"orders", http.MethodPost, s.Orders + "/", tourOrderBody},
		{"orders", http.MethodGet, s.Orders2 + "/9", ""},
		{"payment", http.MethodPost, s.Payment + "/charge", tourChargeBody},
		{"products", http.MethodGet, s.Products + "/products?category=books", ""},
	}
	for _, rq := range requests {
		req, err := http.NewRequest(rq.method, rq.url, strings.NewReader(rq.body))
		if err != nil {
			t.Fatalf("new request: %s", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %s", rq.method, rq.url, err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Errorf("%s %s: got %d, want 2xx; %s", rq.method, rq.url, resp.StatusCode, b.Bytes())
		}
		checkJSON(t, resp, b.Bytes(), resp.StatusCode, rq.service)
	}

	// A replica stopped and started again is closed by Close like the
	// others; one left stopped is no error.
	for _, action := range []string{"stop", "start", "stop"} {
		resp, err := client.Post(control+"/replicas/orders-2/"+action, "", nil)
		if err != nil {
			t.Fatalf("%s orders-2: %s", action, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s orders-2: got %d, want 200", action, resp.StatusCode)
		}
	}

	env := s.Env()
	wantEnv := map[string]string{
		EnvAuthURL: s.Auth, EnvOrdersURL: s.Orders, EnvOrders2URL: s.Orders2, EnvPaymentURL: s.Payment,
		EnvProductsURL: s.Products,
	}
	if len(env) != len(wantEnv) {
		t.Errorf("Env: got %v, want %v", env, wantEnv)
	}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("Env[%s]: got %q, want %q", k, env[k], v)
		}
	}

	// Keep a connection open across Close: Shutdown must close it too.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %s", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %s", err)
	}
	tr.CloseIdleConnections()

	for _, u := range urls {
		if c, err := net.DialTimeout("tcp", strings.TrimPrefix(u, "http://"), time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", u)
		}
	}

	awaitGoroutines(t, before)
}

// awaitGoroutines waits until the process runs at most n goroutines, and
// fails the test with every stack after 5 s. It polls: a goroutine that
// exits signals nothing that could be waited on.
func awaitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: got %d after Close, want at most %d\n%s",
				runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

func TestCloseWithoutRequests(t *testing.T) {
	s, err := Start(nil)
	if err != nil {
		t.Fatalf("Start: %s", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %s", err)
	}
}

// TestExampleConfigIsTheEmbeddedConfig keeps examples/demo.yaml and the
// embedded internal/demo/demo.yaml byte-identical.
func TestExampleConfigIsTheEmbeddedConfig(t *testing.T) {
	t.Parallel()
	example := filepath.Join("..", "..", "examples", "demo.yaml")
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatalf("read %s: %s", example, err)
	}
	if !bytes.Equal(b, Config()) {
		t.Errorf("examples/demo.yaml and internal/demo/demo.yaml differ; they must be identical.\n" +
			"Edit one, then copy it onto the other, e.g.: cp internal/demo/demo.yaml examples/demo.yaml")
	}
}

func TestConfigReturnsACopy(t *testing.T) {
	t.Parallel()
	b := Config()
	b[0] = 0
	if Config()[0] == 0 {
		t.Error("Config returned the embedded bytes, not a copy")
	}
}

// TestConfigMatchesServices loads the demo config with the config
// package, the ${...} values looked up in Env, and checks that it routes to
// the services the way they expect.
func TestConfigMatchesServices(t *testing.T) {
	t.Parallel()
	env := (&Services{
		Auth: "http://127.0.0.1:1001", Orders: "http://127.0.0.1:1002",
		Orders2: "http://127.0.0.1:1012", Payment: "http://127.0.0.1:1003",
		Products: "http://127.0.0.1:1004",
	}).Env()
	var used []string
	cfg, err := config.Parse(Config(), "demo.yaml", func(name string) (string, bool) {
		used = append(used, name)
		v, ok := env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("demo.yaml does not load:\n%s", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("demo.yaml is not valid:\n%s", err)
	}
	slices.Sort(used)
	if want := []string{EnvAuthURL, EnvOrders2URL, EnvOrdersURL, EnvPaymentURL, EnvProductsURL}; !slices.Equal(used, want) {
		t.Errorf("${...} references: got %v, want %v", used, want)
	}
	var names []string
	for _, e := range cfg.Plugins.Entries {
		names = append(names, e.Name)
	}
	if want := []string{"request_id", "access_log", "body_limit", "cors", "compression"}; !slices.Equal(names, want) {
		t.Errorf("plugins: got %v, want %v", names, want)
	}
	if _, err := plugins.NewRegistry().Decode(cfg, cfg.Plugins, pipeline.ScopeGlobal); err != nil {
		t.Errorf("demo.yaml plugin settings do not decode:\n%s", err)
	}

	services := map[string]config.Service{}
	for _, s := range cfg.Services {
		services[s.Name] = s
	}
	for name, url := range map[string]string{
		"auth": env[EnvAuthURL], "payment": env[EnvPaymentURL], "products": env[EnvProductsURL],
	} {
		if got := services[name].URL; got != url {
			t.Errorf("service %s url: got %q, want %q", name, got, url)
		}
	}
	checkOrdersResilience(t, services["orders"], env)

	// What each route forwards must be what the service serves.
	routes := map[string]config.Route{}
	for _, r := range cfg.Routes {
		if _, ok := services[r.Service]; !ok {
			t.Errorf("route %s names unknown service %q", r.Name, r.Service)
		}
		routes[r.Name] = r
		if _, err := plugins.NewRegistry().Decode(cfg, r.Plugins, pipeline.ScopeRoute); err != nil {
			t.Errorf("route %s plugin settings do not decode:\n%s", r.Name, err)
		}
	}
	login := routes["auth-login"]
	if login.Service != "auth" || login.PathRewrite == nil || login.PathRewrite.Replacement != "/login" ||
		!slices.Equal(login.Match.Paths, []string{"=/api/auth/login"}) {
		t.Errorf("route auth-login: got %+v, want =/api/auth/login rewritten to /login on auth", login)
	}
	for name, prefix := range map[string]string{"orders": ordersPublicPrefix, "payment": "/api/payment"} {
		r := routes[name]
		if r.Service != name || !r.StripPrefix || !slices.Equal(r.Match.Paths, []string{prefix}) {
			t.Errorf("route %s: got %+v, want %s with strip_prefix to service %s", name, r, prefix, name)
		}
	}
	checkProductsRoute(t, routes["products"])
	const fallbackBody = `{"message":"Payment temporarily unavailable, try again"}`
	if f := routes["payment"].Fallback; f == nil || f.Status != http.StatusServiceUnavailable || f.Body != fallbackBody {
		t.Errorf("route payment fallback: got %+v, want 503 with %s", f, fallbackBody)
	}
}

// checkOrdersResilience checks the orders service's replicas, retries,
// health checks and breaker, and that the replicas serve the active
// check's path.
func checkOrdersResilience(t *testing.T, orders config.Service, env map[string]string) {
	t.Helper()
	var targets []string
	for _, tg := range orders.Targets {
		targets = append(targets, tg.URL)
	}
	if want := []string{env[EnvOrdersURL], env[EnvOrders2URL]}; orders.URL != "" || !slices.Equal(targets, want) {
		t.Errorf("service orders: got url %q, targets %v; want targets %v", orders.URL, targets, want)
	}
	if r := orders.Retries; r == nil || r.Attempts != 3 {
		t.Errorf("service orders retries: got %+v, want 3 attempts", r)
	}
	a := orders.HealthCheck.Active
	if a == nil {
		t.Fatal("service orders has no active health check")
	}
	if a.Path != "/health" || a.Interval.D() != time.Second || a.Timeout.D() != 500*time.Millisecond ||
		a.UnhealthyThreshold != 2 || a.HealthyThreshold != 2 {
		t.Errorf("service orders active check: got %+v, want /health every 1s, timeout 500ms, thresholds 2 and 2", a)
	}
	if orders.HealthCheck.Passive == nil {
		t.Error("service orders has no passive health check")
	}
	if b := orders.CircuitBreaker; b == nil || b.ConsecutiveFailures != 5 || b.OpenFor.D() != 10*time.Second {
		t.Errorf("service orders circuit_breaker: got %+v, want 5 consecutive failures, open for 10s", b)
	}
	// The probe goes to the replica itself, so the path is the service's own.
	if got := serveOnce(newTestOrders(), http.MethodGet, a.Path, ""); got != http.StatusOK {
		t.Errorf("GET %s on an orders replica: got %d, want 200", a.Path, got)
	}
}

// checkProductsRoute checks that the products route publishes GET
// /api/products as the service's /products, cached as the tour says.
func checkProductsRoute(t *testing.T, r config.Route) {
	t.Helper()
	if r.Service != "products" || !slices.Equal(r.Match.Paths, []string{"=/api/products"}) ||
		!slices.Equal(r.Match.Methods, []string{http.MethodGet}) || r.StripPrefix {
		t.Errorf("route products: got %+v, want GET =/api/products on service products", r)
	}
	if pr := r.PathRewrite; pr == nil || pr.Pattern != "^/api/products$" || pr.Replacement != "/products" {
		t.Errorf("route products path_rewrite: got %+v, want ^/api/products$ rewritten to /products", pr)
	}
	var names []string
	for _, e := range r.Plugins.Entries {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"cache"}) {
		t.Fatalf("route products plugins: got %v, want [cache]", names)
	}
	var got map[string]any
	if err := r.Plugins.Entries[0].Node.Decode(&got); err != nil {
		t.Fatalf("route products cache settings: %s", err)
	}
	want := map[string]any{"default_ttl": "60s", "stale_if_error": "5m", "x_cache_header": true}
	if len(got) != len(want) {
		t.Errorf("route products cache settings: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("route products cache %s: got %v, want %v", k, got[k], v)
		}
	}
}
