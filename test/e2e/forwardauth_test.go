package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// authorizer is a forward_auth authorization service in the test process:
// "Bearer good" is admitted as user-7 with role admin, "Bearer bad" gets
// 401 with a challenge and a JSON body, no Authorization gets a 302 to a
// login page; it counts calls and keeps the X-Forwarded-For it was sent.
type authorizer struct {
	srv   *httptest.Server
	calls atomic.Int64
	xff   atomic.Value // string
}

func newAuthorizer(t *testing.T) *authorizer {
	t.Helper()
	a := &authorizer{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.xff.Store(r.Header.Get("X-Forwarded-For"))
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			w.Header().Set("X-User-ID", "user-7")
			w.Header().Set("X-User-Roles", "admin")
		case "":
			w.Header().Set("Location", "https://login.example/?rd="+r.Header.Get("X-Forwarded-Uri"))
			w.WriteHeader(http.StatusFound)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="sso"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"login required"}`)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// refusedAddr returns a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestForwardAuthEndToEnd runs forward_auth in the built binary against a
// real authorization service: admission with identity headers (forged
// copies stripped), the service's refusals passed on, decisions cached,
// and an unreachable service answered 503 (fail_closed) or let through
// without identity (fail_open).
func TestForwardAuthEndToEnd(t *testing.T) {
	t.Parallel()
	a := newAuthorizer(t)
	up := newUpstream(t, "api", nil)
	down := "http://" + refusedAddr(t) + "/check"
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - name: app
    match: {paths: ["/app"]}
    service: api
    plugins:
      forward_auth:
        url: %q
        response_headers: [X-User-ID, X-User-Roles]
        cache: {ttl: 1m}
  - name: closed
    match: {paths: ["/closed"]}
    service: api
    plugins:
      forward_auth: {url: %q, timeout: 500ms}
  - name: open
    match: {paths: ["/open"]}
    service: api
    plugins:
      forward_auth: {url: %q, timeout: 500ms, on_error: fail_open, response_headers: [X-User-Roles]}
`, up.URL(), a.srv.URL+"/check", down, down))
	c := newClient(t)

	// Admitted, twice: one call, identity headers from the service only.
	for _, id := range []string{"fa-1", "fa-2"} {
		resp, body := get(t, c, g.URL("/app/orders"), "X-Request-ID", id, "Authorization", "Bearer good",
			"X-User-Roles", "forged", "X-Forwarded-For", "203.0.113.9")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %d, want 200; body %s", id, resp.StatusCode, body)
		}
	}
	if got := upstreamHeader(t, up, "fa-1", "X-User-ID"); got != "user-7" {
		t.Errorf("upstream X-User-ID: got %q, want user-7", got)
	}
	if s, _ := up.byID("fa-2"); strings.Join(s.Header.Values("X-User-Roles"), "|") != "admin" {
		t.Errorf("upstream X-User-Roles (cached decision): got %q, want admin", s.Header.Values("X-User-Roles"))
	}
	if n := a.calls.Load(); n != 1 {
		t.Errorf("calls for one credential used twice: got %d, want 1", n)
	}
	if xff, _ := a.xff.Load().(string); xff != "127.0.0.1" {
		t.Errorf("service X-Forwarded-For: got %q, want the gateway's client address 127.0.0.1", xff)
	}

	// Refused: the service's own answers reach the client.
	resp, body := get(t, c, g.URL("/app/orders"), "X-Request-ID", "fa-bad", "Authorization", "Bearer bad")
	if resp.StatusCode != http.StatusUnauthorized || string(body) != `{"error":"login required"}` ||
		resp.Header.Get("WWW-Authenticate") != `Bearer realm="sso"` {
		t.Errorf("bad token: got %d %q WWW-Authenticate %q, want the service's 401", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = get(t, c, g.URL("/app/orders?page=2"), "X-Request-ID", "fa-none")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://login.example/?rd=/app/orders?page=2" {
		t.Errorf("no credential: got %d Location %q, want the service's 302 to its login page", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Outage.
	resp, body = get(t, c, g.URL("/closed"), "X-Request-ID", "fa-closed", "Authorization", "Bearer good")
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Errorf("503 with the service down: no Retry-After")
	}
	resp, body = get(t, c, g.URL("/open"), "X-Request-ID", "fa-open", "Authorization", "Bearer good", "X-User-Roles", "forged")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("fail_open with the service down: got %d, want 200; body %s", resp.StatusCode, body)
	}
	if s, _ := up.byID("fa-open"); len(s.Header.Values("X-User-Roles")) != 0 || s.Header.Get("X-Consumer-ID") != "" {
		t.Errorf("fail_open: got identity headers upstream: %v", s.Header)
	}
	checkNotForwarded(t, up, "fa-bad", "fa-none", "fa-closed")

	// The metrics count every decision by result.
	resp, body = get(t, c, g.AdminURL("/metrics"))
	page := string(body)
	for _, series := range []string{
		`portico_forward_auth_decisions_total{result="admitted",route="app"} 1`,
		`portico_forward_auth_decisions_total{result="cached_admitted",route="app"} 1`,
		`portico_forward_auth_decisions_total{result="refused",route="app"} 2`,
		`portico_forward_auth_decisions_total{result="error",route="closed"} 1`,
		`portico_forward_auth_decisions_total{result="error",route="open"} 1`,
	} {
		if !strings.Contains(page, series+"\n") {
			t.Errorf("/metrics (%d): got no line %q", resp.StatusCode, series)
		}
	}
}

// TestForwardAuthConfigErrors: `portico validate` reports forward_auth
// mistakes at their place.
func TestForwardAuthConfigErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "fa.yaml")
	cfg := `listen: 127.0.0.1:0
services:
  - {name: api, url: "http://127.0.0.1:9"}
routes:
  - name: app
    match: {paths: ["/app"]}
    service: api
    plugins:
      forward_auth:
        url: ftp://auth.internal/check
        response_headers: [Authorization]
        on_error: ignore
`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "validate", "-c", file)
	out := stdout + stderr
	if code != 1 {
		t.Errorf("exit code: got %d, want 1; output:\n%s", code, out)
	}
	for _, want := range []string{
		file + ":10:9: routes[0].plugins.forward_auth.url: must be an http:// or https:// URL",
		file + ":11:28: routes[0].plugins.forward_auth.response_headers[0]: cannot be Authorization",
		file + ":12:9: routes[0].plugins.forward_auth.on_error: must be fail_closed or fail_open",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got output:\n%s\nwant a line starting %q", out, want)
		}
	}
}
