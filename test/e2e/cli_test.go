package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessLog checks one JSON line per request on stdout with the
// documented fields, and that credentials sent by the client never appear
// in anything the process writes.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "svc", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: svc, url: %q}
routes:
  - {name: logged, match: {paths: ["/logged"]}, service: svc}
plugins:
  access_log: {output: stdout}
`, up.URL()))
	c := newClient(t)
	secrets := []string{"secret-token-123", "session=abc", "topsecret"}
	ids := []string{"log-1", "log-2", "log-3"}
	for _, id := range ids {
		resp, _ := get(t, c, g.URL("/logged/x?api_key=topsecret&page=2"),
			"X-Request-ID", id,
			"Authorization", "Bearer secret-token-123",
			"Cookie", "session=abc")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status: got %d, want 200", resp.StatusCode)
		}
	}
	resp, _ := get(t, c, g.URL("/nope?api_key=topsecret"), "X-Request-ID", "log-404", "Authorization", "Bearer secret-token-123")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status: got %d, want 404", resp.StatusCode)
	}

	// The access log is buffered; stopping the gateway flushes it.
	c.CloseIdleConnections()
	g.Signal(syscall.SIGTERM)
	if code := g.Wait(10 * time.Second); code != 0 {
		t.Errorf("exit code: got %d, want 0", code)
	}

	byID := map[string][]map[string]any{}
	for _, l := range g.AccessLog() {
		if id, ok := l["request_id"].(string); ok {
			byID[id] = append(byID[id], l)
		}
	}
	for _, id := range ids {
		lines := byID[id]
		if len(lines) != 1 {
			t.Fatalf("access log lines for %s: got %d, want 1; stdout:\n%s", id, len(lines), g.stdout)
		}
		l := lines[0]
		want := map[string]any{
			"request_id": id, "client_ip": "127.0.0.1", "method": "GET",
			"route": "logged", "service": "svc", "status": float64(200), "upstream": up.Addr(),
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("%s: field %s: got %v, want %v", id, k, l[k], v)
			}
		}
		if p, _ := l["path"].(string); !strings.HasPrefix(p, "/logged/x") {
			t.Errorf("%s: field path: got %v, want /logged/x", id, l["path"])
		}
		if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
			t.Errorf("%s: field duration_ms: got %v, want a non-negative number", id, l["duration_ms"])
		}
	}
	if lines := byID["log-404"]; len(lines) != 1 || lines[0]["status"] != float64(404) {
		t.Errorf("access log for the unrouted request: got %v, want one line with status 404", lines)
	}
	out := g.stdout.String() + g.stderr.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the process output contains the client secret %q", s)
		}
	}
}

// runCLI runs portico with args and returns its exit code, stdout and
// stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("run portico %v: %s", args, err)
		return -1, "", ""
	}
}

const badConfig = `listen: 127.0.0.1:0
admin: {listen: "off"}
services:
  - name: api
    url: http://127.0.0.1:9
    timeouts: {connect: 5 parsecs}
routes:
  - name: r0
    match: {paths: ["/x"]}
    service: nope
  - name: r1
    match: {paths: ["/y"]}
    service: api
    strip_prefx: true
`

// TestValidate checks `portico validate`: "ok" for a good file, and every
// error as FILE:LINE:COL: path: message for a bad one.
func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`listen: 127.0.0.1:0
services:
  - {name: api, url: "http://127.0.0.1:9"}
routes:
  - {name: api, match: {paths: ["/api"]}, service: api, strip_prefix: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "validate", "-c", good)
	if code != 0 || strings.TrimSpace(stdout) != "ok" {
		t.Errorf("validate good file: got exit %d, stdout %q, stderr %q; want 0 and ok", code, stdout, stderr)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(badConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "validate", "-c", bad)
	if code != 1 {
		t.Errorf("validate bad file: got exit %d, want 1", code)
	}
	lineRE := regexp.MustCompile(`^(.+):(\d+):(\d+): (\S+): (.+)$`)
	type located struct{ line, path, msg string }
	var got []located
	for _, l := range strings.Split(strings.TrimSpace(stdout+stderr), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("output line %q is not FILE:LINE:COL: path: message", l)
			continue
		}
		if m[1] != bad {
			t.Errorf("output line %q: file got %q, want %q", l, m[1], bad)
		}
		got = append(got, located{m[2], m[4], m[5]})
	}
	wants := []struct {
		line, path string
		words      []string
	}{
		{"6", "services[0].timeouts.connect", nil},
		{"10", "routes[0].service", []string{"nope"}},
		{"14", "routes[1].strip_prefx", []string{"strip_prefx", "did you mean", "strip_prefix"}},
	}
	for _, w := range wants {
		found := false
		for _, e := range got {
			if e.line != w.line || e.path != w.path {
				continue
			}
			found = true
			for _, word := range w.words {
				if !strings.Contains(e.msg, word) {
					t.Errorf("%s: message %q, want it to mention %q", w.path, e.msg, word)
				}
			}
		}
		if !found {
			t.Errorf("no error at line %s for %s; output:\n%s%s", w.line, w.path, stdout, stderr)
		}
	}
}

// TestVersion checks `portico version`.
func TestVersion(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, "version")
	if code != 0 || !regexp.MustCompile(`^portico \S+\n$`).MatchString(stdout) {
		t.Errorf("portico version: got exit %d, stdout %q, stderr %q; want 0 and \"portico VERSION\"", code, stdout, stderr)
	}
}

// TestDemo runs `portico demo` and walks the flow its tour prints.
func TestDemo(t *testing.T) {
	t.Parallel()
	g := startProcess(t, t.TempDir(), "demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--control", "127.0.0.1:0")
	c := newClient(t)

	resp, body := do(t, c, http.MethodPost, g.URL("/api/auth/login"),
		strings.NewReader(`{"username":"alice","password":"alice-password"}`), "Content-Type", "application/json")
	var login struct{ Token string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &login) != nil || login.Token == "" {
		t.Fatalf("login: got %d %s, want 200 with a token", resp.StatusCode, body)
	}
	auth := []string{"Authorization", "Bearer " + login.Token}

	resp, body = get(t, c, g.URL("/api/orders"), auth...)
	var orders map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &orders) != nil {
		t.Fatalf("orders: got %d %s, want 200 JSON", resp.StatusCode, body)
	}
	if len(body) <= 1024 {
		t.Errorf("orders body: got %d bytes, want more than 1 KB", len(body))
	}
	if caller, ok := orders["caller"].(map[string]any); !ok || caller["request_id"] == "" || caller["user_id"] != "alice" {
		t.Errorf("orders caller: got %v, want the request id and user_id alice (the token's sub)", orders["caller"])
	}
	// Orders without a token, or with a forged one, never reach the service.
	resp, body = get(t, c, g.URL("/api/orders"), "X-User-ID", "mallory")
	checkProblem(t, resp, body, http.StatusUnauthorized)
	resp, body = get(t, c, g.URL("/api/orders"), "Authorization", "Bearer "+login.Token[:len(login.Token)-4]+"AAAA")
	checkProblem(t, resp, body, http.StatusUnauthorized)

	charge := `{"order_id":7,"amount":41797,"currency":"EUR"}`
	resp, body = do(t, c, http.MethodPost, g.URL("/api/payment/charge"), strings.NewReader(charge),
		"Content-Type", "application/json", "X-API-Key", "premium-key-67890", "X-Consumer-ID", "forged")
	var paid map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &paid) != nil {
		t.Fatalf("charge: got %d %s, want 200", resp.StatusCode, body)
	}
	if caller, _ := paid["caller"].(map[string]any); caller["consumer_id"] != "premium-app" || caller["consumer_name"] != "premium-app" {
		t.Errorf("charge caller: got %v, want consumer premium-app (not the forged id)", paid["caller"])
	}
	resp, body = do(t, c, http.MethodPost, g.URL("/api/payment/charge"), strings.NewReader(charge),
		"Content-Type", "application/json", "X-API-Key", "wrong-key-000")
	checkProblem(t, resp, body, http.StatusUnauthorized)
	if resp, body := get(t, c, g.URL("/health")); resp.StatusCode != http.StatusOK {
		t.Errorf("health: got %d %s, want 200", resp.StatusCode, body)
	}
	resp, body = get(t, c, g.URL("/nope"))
	checkProblem(t, resp, body, http.StatusNotFound)

	// The tour's edge step: the client's own X-Forwarded-For and a
	// Connection header naming X-Consumer-ID change nothing the service
	// sees; two API keys get 400; TRACE gets 405.
	resp, body = do(t, c, http.MethodPost, g.URL("/api/payment/charge"),
		strings.NewReader(`{"order_id":7,"amount":100,"currency":"EUR"}`), "Content-Type", "application/json",
		"X-API-Key", "premium-key-67890", "X-Forwarded-For", "6.6.6.6", "Connection", "X-Consumer-ID")
	var edgeCaller struct {
		Caller struct {
			ConsumerID   string `json:"consumer_id"`
			ForwardedFor string `json:"forwarded_for"`
		} `json:"caller"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &edgeCaller) != nil ||
		edgeCaller.Caller.ConsumerID != "premium-app" || edgeCaller.Caller.ForwardedFor != "127.0.0.1" {
		t.Errorf("edge step: got %d %s, want the consumer premium-app forwarded for 127.0.0.1", resp.StatusCode, body)
	}
	if resp, body := do(t, c, http.MethodPost, g.URL("/api/payment/charge"), nil,
		"X-API-Key", "app-key-12345", "X-API-Key", "premium-key-67890"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two API keys: got %d %s, want 400", resp.StatusCode, body)
	}
	if resp, body := do(t, c, "TRACE", g.URL("/api/orders"), nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("TRACE: got %d %s, want 405", resp.StatusCode, body)
	}

	demoReplicas(t, g, c, auth)

	c.CloseIdleConnections()
	g.Signal(syscall.SIGINT)
	if code := g.Wait(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGINT: got %d, want 0", code)
	}

}

// demoReplicas walks the demo tour's replica step: both orders replicas
// answer in turn from one store; orders-2 stopped through the demo's
// control listener costs clients nothing; GET /upstreams shows it
// unavailable; started again, it answers again.
func demoReplicas(t *testing.T, g *gw, c *http.Client, auth []string) {
	t.Helper()
	var control string
	for _, l := range g.stderr.JSONLines() {
		if l["msg"] == "demo control listening" {
			control, _ = l["control"].(string)
		}
	}
	if control == "" {
		t.Fatalf("no \"demo control listening\" log line with the control address")
	}
	control = "http://" + control
	if !g.stdout.waitFor(startTimeout, g.done, func(s string) bool { return strings.Contains(s, "Control  "+control) }) {
		t.Errorf("the tour does not print the control address %s:\n%s", control, g.stdout)
	}
	var list struct {
		Replicas []struct{ Name, URL, State string }
	}
	resp, body := get(t, c, control+"/replicas")
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Replicas) != 2 {
		t.Fatalf("GET /replicas: got %d %s, want 200 listing two replicas", resp.StatusCode, body)
	}
	orders2 := list.Replicas[1].URL
	if list.Replicas[1].Name != "orders-2" || orders2 == "" {
		t.Fatalf("GET /replicas: got %s, want orders-2 second", body)
	}

	// replica sends GET path through the gateway and returns who answered.
	replica := func(path string) (int, string) {
		t.Helper()
		resp, body := get(t, c, g.URL(path), auth...)
		var m struct{ Replica string }
		_ = json.Unmarshal(body, &m)
		return resp.StatusCode, m.Replica
	}

	// An order made through one replica is read through both.
	resp, body = do(t, c, http.MethodPost, g.URL("/api/orders"),
		strings.NewReader(`{"items":[{"sku":"MUG-01","quantity":2,"unit_price":1250}]}`),
		append([]string{"Content-Type", "application/json"}, auth...)...)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(loc, "/api/orders/") {
		t.Fatalf("create order: got %d %s (Location %q), want 201 with a Location", resp.StatusCode, body, loc)
	}
	seen := map[string]int{}
	for range 4 {
		code, who := replica(loc)
		if code != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200 from either replica", loc, code)
		}
		seen[who]++
	}
	if seen["orders-1"] == 0 || seen["orders-2"] == 0 || len(seen) != 2 {
		t.Errorf("replicas over 4 requests: got %v, want both orders-1 and orders-2 (round robin)", seen)
	}

	resp, body = do(t, c, http.MethodPost, control+"/replicas/orders-2/stop", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"state":"down"`) {
		t.Fatalf("stop orders-2: got %d %s, want 200 down", resp.StatusCode, body)
	}
	// No client sees the outage: the first requests are retried on
	// orders-1, later ones no longer go to orders-2.
	for i := range 10 {
		if code, who := replica("/api/orders"); code != http.StatusOK || who != "orders-1" {
			t.Errorf("request %d with orders-2 down: got %d from %q, want 200 from orders-1", i, code, who)
		}
	}
	eventually(t, 10*time.Second, func() error {
		if demoTargetAvailable(t, g, orders2) {
			return errors.New("GET /upstreams still shows orders-2 available")
		}
		return nil
	})

	resp, body = do(t, c, http.MethodPost, control+"/replicas/orders-2/start", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"state":"up"`) {
		t.Fatalf("start orders-2: got %d %s, want 200 up", resp.StatusCode, body)
	}
	// Back after two passing health checks, or at most one passive
	// ejection (10s).
	eventually(t, 20*time.Second, func() error {
		code, who := replica("/api/orders")
		if code != http.StatusOK {
			return fmt.Errorf("GET /api/orders after the restart: got %d, want 200", code)
		}
		if who != "orders-2" {
			return errors.New("orders-2 does not answer again")
		}
		return nil
	})
}

// demoTargetAvailable reports what the admin API's GET /upstreams says
// of the target with url.
func demoTargetAvailable(t *testing.T, g *gw, url string) bool {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/upstreams"))
	if err != nil {
		t.Fatalf("GET /upstreams: %s", err)
	}
	defer resp.Body.Close()
	var services []struct {
		Targets []struct {
			URL       string `json:"url"`
			Available bool   `json:"available"`
		} `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&services); err != nil {
		t.Fatalf("decode GET /upstreams (status %d): %s", resp.StatusCode, err)
	}
	for _, s := range services {
		for _, tg := range s.Targets {
			if tg.URL == url {
				return tg.Available
			}
		}
	}
	t.Fatalf("target %s is not in GET /upstreams", url)
	return false
}
