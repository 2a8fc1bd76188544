package gateway

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/router"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/upstream"
)

// compileYAML parses, validates and compiles a config whose services point
// at upstream.
func compileYAML(t testing.TB, yaml string, upstreamURL string) (*Snapshot, error) {
	t.Helper()
	env := map[string]string{"UP": upstreamURL}
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ups := upstream.NewRegistry(logger)
	sinks := telemetry.NewSinks(nil, nil)
	t.Cleanup(func() {
		_ = ups.Close()
		_ = sinks.Close()
	})
	// Not Check: its registries close when it returns, and these snapshots
	// serve requests.
	return Compile(cfg, Deps{
		Plugins:   plugins.NewRegistry(),
		Upstreams: ups,
		Telemetry: telemetry.New(),
		Sinks:     sinks,
		Tunnels:   proxy.NewTunnels(),
		Logger:    logger,
	})
}

func mustCompile(t testing.TB, yaml, upstream string) *Snapshot {
	t.Helper()
	s, err := compileYAML(t, yaml, upstream)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return s
}

// echoUpstream answers with the path and selected headers it received.
func echoUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path":       r.URL.RequestURI(),
			"request_id": r.Header.Get("X-Request-ID"),
			"real_ip":    r.Header.Get("X-Real-IP"),
		})
	}))
	t.Cleanup(up.Close)
	return up
}

const baseYAML = `
listen: 127.0.0.1:0
admin: { listen: "off" }
services:
  - name: echo
    url: ${UP}
routes:
  - name: orders
    match: { paths: ["/api/orders"], methods: [GET, POST] }
    service: echo
    strip_prefix: true
  - name: exact
    match: { paths: ["=/api/exact"] }
    service: echo
  - name: versioned
    match: { paths: ["~/api/v(?P<ver>[0-9]+)/items"] }
    service: echo
    path_rewrite: { pattern: "^/api/v([0-9]+)/items(.*)$", replacement: "/items$2?v=$1" }
`

func serve(s *Snapshot, method, target string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.10:4000"
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestSnapshotServes(t *testing.T) {
	up := echoUpstream(t)
	s := mustCompile(t, baseYAML, up.URL)
	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantPath   string
		wantType   string
	}{
		{"strip prefix", "GET", "/api/orders/7?x=1", 200, "/7?x=1", "application/json"},
		{"prefix root", "GET", "/api/orders", 200, "/", "application/json"},
		{"segment boundary", "GET", "/api/ordersX", 404, "", "application/problem+json"},
		{"exact", "GET", "/api/exact", 200, "/api/exact", "application/json"},
		{"exact is not a prefix", "GET", "/api/exact/more", 404, "", "application/problem+json"},
		{"method not allowed", "DELETE", "/api/orders/7", 405, "", "application/problem+json"},
		{"normalized before routing", "GET", "/api/public/../orders/7", 200, "/7", "application/json"},
		{"encoded slash rejected", "GET", "/api/orders%2f..%2fadmin", 400, "", "application/problem+json"},
		{"health", "GET", "/health", 200, "", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := serve(s, tt.method, tt.target)
			if w.Code != tt.wantStatus {
				t.Fatalf("got status %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != tt.wantType {
				t.Errorf("got Content-Type %q, want %q", ct, tt.wantType)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, w.Body)
			}
			if tt.wantPath != "" && body["path"] != tt.wantPath {
				t.Errorf("got upstream path %v, want %q", body["path"], tt.wantPath)
			}
			id := w.Header().Get("X-Request-ID")
			if tt.name != "health" && id == "" {
				t.Errorf("got no X-Request-ID on the response")
			}
			if tt.wantType == "application/problem+json" && body["request_id"] != id {
				t.Errorf("got problem request_id %v, want the response's X-Request-ID %q", body["request_id"], id)
			}
		})
	}
}

func TestRegexRewriteUsesCaptures(t *testing.T) {
	up := echoUpstream(t)
	s := mustCompile(t, baseYAML, up.URL)
	w := serve(s, "GET", "/api/v2/items/9")
	if !strings.Contains(w.Body.String(), `"/items/9?v=2"`) {
		t.Errorf("got %s, want upstream path /items/9?v=2", w.Body)
	}
}

func TestMethodNotAllowedListsAllow(t *testing.T) {
	up := echoUpstream(t)
	s := mustCompile(t, baseYAML, up.URL)
	w := serve(s, "DELETE", "/api/orders")
	if got := w.Header().Get("Allow"); got != "GET, HEAD, POST" {
		t.Errorf("got Allow %q, want %q", got, "GET, HEAD, POST")
	}
}

func TestCompileReportsPluginErrorsWithPosition(t *testing.T) {
	yaml := baseYAML + `
plugins:
  request_idd: {}
  cache: { store: disk }
  body_limit: { max: lots }
`
	_, err := compileYAML(t, yaml, "http://127.0.0.1:1")
	if err == nil {
		t.Fatal("got nil error, want plugin errors")
	}
	got := err.Error()
	for _, want := range []string{
		`test.yaml:21:3: plugins.request_idd: unknown plugin "request_idd"; did you mean "request_id"?`,
		`test.yaml:22:12: plugins.cache.store: must be memory or redis`,
		`plugins.body_limit.max: invalid size "lots"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("got errors:\n%s\nwant one containing %q", got, want)
		}
	}
}

func TestMostSpecificPluginWins(t *testing.T) {
	up := echoUpstream(t)
	yaml := baseYAML + `
plugins:
  body_limit: { max: 10 }
`
	yaml = strings.Replace(yaml, "    strip_prefix: true\n", "    strip_prefix: true\n    plugins:\n      body_limit: { max: 1KiB }\n", 1)
	s := mustCompile(t, yaml, up.URL)
	post := func(target string, n int) int {
		r := httptest.NewRequest("POST", target, strings.NewReader(strings.Repeat("x", n)))
		r.RemoteAddr = "192.0.2.10:4000"
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	if got := post("/api/orders", 500); got != 200 {
		t.Errorf("route limit 1KiB, 500 bytes: got %d, want 200", got)
	}
	if got := post("/api/orders", 2000); got != 413 {
		t.Errorf("route limit 1KiB, 2000 bytes: got %d, want 413", got)
	}
	if got := post("/api/exact", 500); got != 413 {
		t.Errorf("global limit 10 bytes, 500 bytes: got %d, want 413", got)
	}
}

func TestImplicitPluginsApply(t *testing.T) {
	up := echoUpstream(t)
	s := mustCompile(t, baseYAML, up.URL)
	var names []string
	for _, r := range s.Routes() {
		if r.Name == "orders" {
			names = r.Plugins
		}
	}
	if strings.Join(names, ",") != "request_id,body_limit" {
		t.Errorf("got plugins %v, want the implicit request_id and body_limit", names)
	}
}

func TestPanicInChainAnswers500(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	s := mustCompile(t, baseYAML, up.URL)
	// Replace one route's handler with one that panics, the way a plugin bug would.
	for _, v := range []string{"/api/exact"} {
		m, _ := s.table.Lookup(httptest.NewRequest("GET", v, nil), v)
		m.Value.handler = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("plugin bug") })
	}
	w := serve(s, "GET", "/api/exact")
	if w.Code != 500 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("got %d %q, want 500 problem JSON", w.Code, w.Header().Get("Content-Type"))
	}
	if strings.Contains(w.Body.String(), "plugin bug") {
		t.Errorf("got panic text in the response: %s", w.Body)
	}
}

// forgeable are the identity headers the auth gate and mtls_auth set
// with their defaults.
var forgeable = []string{"X-Consumer-ID", "X-Consumer-Name", "X-Consumer-Groups", "X-User-ID", "X-Anonymous-Consumer",
	"X-Client-Cert-Subject", "X-Client-Cert-Issuer", "X-Client-Cert-Serial", "X-Client-Cert-Fingerprint",
	"X-Client-Cert-SAN-URI", "X-Client-Cert-SAN-DNS", "Client-Cert", "Client-Cert-Chain"}

// TestIdentityHeadersStrippedWithoutAuth: even a config with no
// authentication at all never forwards client-sent identity headers, nor
// client certificate headers.
func TestIdentityHeadersStrippedWithoutAuth(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range forgeable {
			if v := r.Header.Get(h); v != "" {
				t.Errorf("upstream got forged %s: %q", h, v)
			}
		}
	}))
	defer up.Close()
	s := mustCompile(t, baseYAML, up.URL)
	r := httptest.NewRequest("GET", "/api/exact", nil)
	r.RemoteAddr = "192.0.2.10:4000"
	for _, h := range forgeable {
		r.Header.Set(h, "forged")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("got %d, want 200", w.Code)
	}
}

// TestTerminalsByRouteKind: every route's chain ends in the terminal its
// kind chose (the proxy to its service), and the chains around unmatched
// requests end in fixed problems; each can say what it would do.
func TestTerminalsByRouteKind(t *testing.T) {
	up := echoUpstream(t)
	s := mustCompile(t, baseYAML, up.URL)
	ex := &pipeline.Exchange{UpstreamPath: "/7"}
	for _, path := range []string{"/api/orders/7", "/api/exact", "/api/v2/items"} {
		r := httptest.NewRequest("GET", path, nil)
		m, res := s.table.Lookup(r, path)
		if res != router.Matched {
			t.Fatalf("%s: got %v, want a match", path, res)
		}
		p := m.Value.terminal.Describe(r, ex)
		if p.Kind != "proxy" || p.Service != "echo" || p.Upstream == nil || p.Upstream.Target != "/7" {
			t.Errorf("route %s: got plan %+v, want the proxy to echo", m.Value.name, p)
		}
	}
	r := httptest.NewRequest("GET", "/nowhere", nil)
	if p := (&problemTerminal{status: 404, detail: "no route"}).Describe(r, ex); p.Kind != "respond" || p.Status != 404 {
		t.Errorf("got plan %+v, want a 404 answer", p)
	}
}

// TestCompileAdminPublicPaths: a public admin path must name a GET
// endpoint, the plugins' included; every such error is located.
func TestCompileAdminPublicPaths(t *testing.T) {
	t.Parallel()
	up := echoUpstream(t)
	const routes = `services: [{name: echo, url: "${UP}"}]
routes: [{name: r, match: {paths: ["/r"]}, service: echo}]
`
	_, err := compileYAML(t, "listen: 127.0.0.1:0\nadmin:\n  public_paths: [\"/metrics\", \"/cache/purge\", \"/reload\"]\n"+routes, up.URL)
	want := "test.yaml:3:30: admin.public_paths[1]: POST /cache/purge changes the gateway and always needs a token with the write role\n" +
		"test.yaml:3:46: admin.public_paths[2]: POST /reload changes the gateway and always needs a token with the write role"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	s := mustCompile(t, "listen: 127.0.0.1:0\nadmin: {public_paths: [\"/metrics\"]}\n"+routes, up.URL)
	if s.admin == nil || !s.admin.Open() {
		t.Errorf("a config without tokens: got access %v, want an open admin API", s.admin)
	}
}

// TestMTLSAuthNeedsAListenerWithClientAuth: a route with mtls_auth that
// only listeners without tls.client_auth serve is refused, located at the
// plugin's settings; one that a listener with client_auth serves is not.
func TestMTLSAuthNeedsAListenerWithClientAuth(t *testing.T) {
	const listeners = `listeners:
  - { name: web, listen: "127.0.0.1:0" }
  - name: mtls
    listen: "127.0.0.1:0"
    tls:
      cert_file: /nonexistent/tls.crt
      key_file: /nonexistent/tls.key
      client_auth: { ca_files: [/nonexistent/ca.pem] }
services:
  - { name: app, url: "${UP}" }
routes:
`
	tests := []struct {
		name, routes, want string
	}{
		{"only the plain listener", `  - name: api
    match: { paths: ["/"] }
    service: app
    listeners: [web]
    plugins:
      mtls_auth: {}
`, `test.yaml:17:7: routes[0].plugins.mtls_auth: route "api" takes requests only from listeners without tls.client_auth (web), where no client certificate is ever verified`},
		{"every listener", `  - { name: api, match: { paths: ["/"] }, service: app, plugins: { mtls_auth: {} } }
`, ""},
		{"the mtls listener", `  - { name: api, match: { paths: ["/"] }, service: app, listeners: [mtls], plugins: { mtls_auth: {} } }
`, ""},
		{"global, and a route on the plain listener", `  - { name: api, match: { paths: ["/"] }, service: app, listeners: [mtls] }
  - { name: open, match: { paths: ["/open"] }, service: app, listeners: [web] }
plugins:
  mtls_auth: {}
`, `plugins.mtls_auth: route "open" takes requests only from listeners without tls.client_auth (web)`},
	}
	for _, tt := range tests {
		_, err := compileYAML(t, listeners+tt.routes, "http://127.0.0.1:1")
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: got %v, want none", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}
