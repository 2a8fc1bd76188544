package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// routingServices are the upstreams of TestRouting, one per service.
var routingServices = []string{
	"exact", "orders", "v2", "items", "users", "docs", "regexA", "regexB",
	"hostExact", "hostWild", "methods", "hdr", "qry", "plain",
}

const routingRoutes = `routes:
  - name: exact
    match: {paths: ["=/api/orders/special"]}
    service: exact
  - name: orders
    match: {paths: ["/api/orders"]}
    service: orders
    strip_prefix: true
  - name: orders-v2
    match: {paths: ["/api/orders/v2"]}
    service: v2
  - name: items
    match: {paths: ["~/api/orders/[0-9]+/items"]}
    service: items
  - name: users
    match: {paths: ["~/users/[0-9]+$"]}
    service: users
    path_rewrite: {pattern: "^/users/([0-9]+)$", replacement: "/v1/people/$1"}
  - name: docs
    match: {paths: ["~/docs/(?P<slug>[a-z]+)$"]}
    service: docs
    path_rewrite: {pattern: "^/docs/(?P<slug>[a-z]+)$", replacement: "/kb/$${slug}"}
  - name: regex-a
    match: {paths: ["~/r/"]}
    service: regexA
  - name: regex-b
    match: {paths: ["~/r/a"]}
    service: regexB
  - name: host-exact
    match: {hosts: [api.example.com], paths: ["/h"]}
    service: hostExact
  - name: host-wild
    match: {hosts: ["*.example.com"], paths: ["/h"]}
    service: hostWild
  - name: methods
    match: {paths: ["/m"], methods: [GET, POST]}
    service: methods
  - name: cond-header
    match: {paths: ["/cond"], headers: {X-Tenant: blue}}
    service: hdr
  - name: cond-query
    match: {paths: ["/cond"], query: {version: "2"}}
    service: qry
  - name: cond-any
    match: {paths: ["/cond"]}
    service: plain
`

// TestRouting sends requests through a gateway with routes of every kind
// and checks which upstream received each one, with which path and query.
func TestRouting(t *testing.T) {
	t.Parallel()
	ups := map[string]*upstream{}
	var cfg strings.Builder
	cfg.WriteString(base + "services:\n")
	for _, name := range routingServices {
		ups[name] = newUpstream(t, name, nil)
		fmt.Fprintf(&cfg, "  - {name: %s, url: %q}\n", name, ups[name].URL())
	}
	cfg.WriteString(routingRoutes)
	g := startGateway(t, cfg.String())
	c := newClient(t)

	tests := []struct {
		name      string
		method    string
		target    string   // path and query
		hdr       []string // name, value pairs; "Host" sets the Host header
		status    int
		upstream  string // "" when no upstream may receive it
		wantPath  string
		wantQuery string
		allow     []string // methods the Allow header must list on 405
	}{
		{name: "exact beats prefix", target: "/api/orders/special", status: 200, upstream: "exact", wantPath: "/api/orders/special"},
		{name: "exact is only exact", target: "/api/orders/special/x", status: 200, upstream: "orders", wantPath: "/special/x"},
		{name: "prefix strips to slash", target: "/api/orders", status: 200, upstream: "orders", wantPath: "/"},
		{name: "prefix with trailing slash", target: "/api/orders/", status: 200, upstream: "orders", wantPath: "/"},
		{name: "strip_prefix", target: "/api/orders/7", status: 200, upstream: "orders", wantPath: "/7"},
		{name: "segment boundary", target: "/api/ordersX", status: 404},
		{name: "segment boundary below", target: "/api/ordersX/7", status: 404},
		{name: "longest prefix", target: "/api/orders/v2/x", status: 200, upstream: "v2", wantPath: "/api/orders/v2/x"},
		{name: "longest prefix exact length", target: "/api/orders/v2", status: 200, upstream: "v2", wantPath: "/api/orders/v2"},
		{name: "prefix beats regex", target: "/api/orders/7/items", status: 200, upstream: "orders", wantPath: "/7/items"},
		{name: "encoded unreserved char is decoded", target: "/api/ord%65rs/7", status: 200, upstream: "orders", wantPath: "/7"},
		{name: "query string preserved", target: "/api/orders/7?a=1&b=two%20x&c", status: 200, upstream: "orders", wantPath: "/7", wantQuery: "a=1&b=two%20x&c"},
		{name: "regex with numbered rewrite", target: "/users/42", status: 200, upstream: "users", wantPath: "/v1/people/42"},
		{name: "regex anchored at end", target: "/users/42/x", status: 404},
		{name: "regex not matching", target: "/users/abc", status: 404},
		{name: "regex with named rewrite", target: "/docs/intro?lang=en", status: 200, upstream: "docs", wantPath: "/kb/intro", wantQuery: "lang=en"},
		{name: "regexes in config order", target: "/r/a", status: 200, upstream: "regexA", wantPath: "/r/a"},
		{name: "host exact", target: "/h", hdr: []string{"Host", "api.example.com"}, status: 200, upstream: "hostExact", wantPath: "/h"},
		{name: "host exact ignores case and port", target: "/h", hdr: []string{"Host", "API.Example.COM:8443"}, status: 200, upstream: "hostExact", wantPath: "/h"},
		{name: "host wildcard", target: "/h", hdr: []string{"Host", "shop.example.com"}, status: 200, upstream: "hostWild", wantPath: "/h"},
		{name: "host wildcard is one label", target: "/h", hdr: []string{"Host", "a.b.example.com"}, status: 404},
		{name: "host wildcard needs a label", target: "/h", hdr: []string{"Host", "example.com"}, status: 404},
		{name: "host unknown", target: "/h", hdr: []string{"Host", "other.test"}, status: 404},
		{name: "method allowed", method: "POST", target: "/m", status: 200, upstream: "methods", wantPath: "/m"},
		{name: "GET allows HEAD", method: "HEAD", target: "/m", status: 200, upstream: "methods", wantPath: "/m"},
		{name: "method not allowed", method: "DELETE", target: "/m", status: 405, allow: []string{"GET", "POST"}},
		{name: "header condition", target: "/cond", hdr: []string{"X-Tenant", "blue"}, status: 200, upstream: "hdr", wantPath: "/cond"},
		{name: "header condition other value", target: "/cond", hdr: []string{"X-Tenant", "red"}, status: 200, upstream: "plain", wantPath: "/cond"},
		{name: "query condition", target: "/cond?version=2", status: 200, upstream: "qry", wantPath: "/cond", wantQuery: "version=2"},
		{name: "query condition other value", target: "/cond?version=3", status: 200, upstream: "plain", wantPath: "/cond", wantQuery: "version=3"},
		{name: "no conditions", target: "/cond", status: 200, upstream: "plain", wantPath: "/cond"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("routing-%d", i)
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, body := do(t, c, method, g.URL(tt.target), nil, append([]string{"X-Request-ID", id}, tt.hdr...)...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s %s: status got %d, want %d; body %s", method, tt.target, resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("X-Request-ID"); got != id {
				t.Errorf("X-Request-ID response header: got %q, want %q", got, id)
			}
			var got []string
			for name, u := range ups {
				if _, ok := u.byID(id); ok {
					got = append(got, name)
				}
			}
			if tt.upstream == "" {
				if len(got) != 0 {
					t.Fatalf("upstreams %v received the request, want none", got)
				}
				if method != http.MethodHead {
					checkProblem(t, resp, body, tt.status)
				}
				if tt.status == http.StatusMethodNotAllowed {
					allow := resp.Header.Get("Allow")
					for _, m := range tt.allow {
						if !strings.Contains(allow, m) {
							t.Errorf("Allow: got %q, want it to list %s", allow, m)
						}
					}
				}
				return
			}
			if len(got) != 1 || got[0] != tt.upstream {
				t.Fatalf("received by %v, want [%s]", got, tt.upstream)
			}
			s, _ := ups[tt.upstream].byID(id)
			if s.Path != tt.wantPath {
				t.Errorf("upstream path: got %q, want %q", s.Path, tt.wantPath)
			}
			if s.RawQuery != tt.wantQuery {
				t.Errorf("upstream query: got %q, want %q", s.RawQuery, tt.wantQuery)
			}
			if s.Method != method {
				t.Errorf("upstream method: got %s, want %s", s.Method, method)
			}
		})
	}
}

// TestNoRouteIsProblemJSON checks the gateway's own 404: problem JSON whose
// request_id is the X-Request-ID header, a kept safe incoming id, and a
// replaced unsafe one.
func TestNoRouteIsProblemJSON(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - {name: api, match: {paths: ["/api"]}, service: api}
`, up.URL()))
	c := newClient(t)

	resp, body := get(t, c, g.URL("/nope"))
	p := checkProblem(t, resp, body, http.StatusNotFound)
	if id, _ := p["request_id"].(string); len(id) < 16 {
		t.Errorf("generated request id: got %q, want a long random id", id)
	}

	resp, body = get(t, c, g.URL("/nope"), "X-Request-ID", "client-id-123")
	p = checkProblem(t, resp, body, http.StatusNotFound)
	if p["request_id"] != "client-id-123" {
		t.Errorf("safe incoming id: got %v, want client-id-123 kept", p["request_id"])
	}

	resp, body = get(t, c, g.URL("/nope"), "X-Request-ID", "bad id <script>")
	p = checkProblem(t, resp, body, http.StatusNotFound)
	if p["request_id"] == "bad id <script>" {
		t.Errorf("unsafe incoming id was kept: %v", p["request_id"])
	}

	// The id reaches the upstream, generated or kept.
	resp, _ = get(t, c, g.URL("/api/x"), "X-Request-ID", "to-upstream-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: got %d, want 200", resp.StatusCode)
	}
	if _, ok := up.byID("to-upstream-1"); !ok {
		t.Errorf("upstream did not receive X-Request-ID to-upstream-1")
	}
	resp, _ = get(t, c, g.URL("/api/y"))
	gen := resp.Header.Get("X-Request-ID")
	if gen == "" {
		t.Fatalf("X-Request-ID response header: got none, want a generated id")
	}
	if _, ok := up.byID(gen); !ok {
		t.Errorf("upstream did not receive the generated X-Request-ID %q", gen)
	}
}

// TestPathNormalizationAttacks sends paths that try to leave the
// /api/public prefix. Each must be refused with 400 or routed by its
// normalized path, and the upstream then receives that normalized path.
// Requests are written on a raw TCP connection so no client cleans them.
func TestPathNormalizationAttacks(t *testing.T) {
	t.Parallel()
	public := newUpstream(t, "public", nil)
	admin := newUpstream(t, "admin", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: public, url: %q}
  - {name: admin, url: %q}
routes:
  - {name: public, match: {paths: ["/api/public"]}, service: public}
  - {name: admin, match: {paths: ["/admin"]}, service: admin}
`, public.URL(), admin.URL()))

	ups := map[string]*upstream{"public": public, "admin": admin}
	tests := []struct {
		name     string
		target   string
		only400  bool   // encoded separators and similar must be refused
		upstream string // by normalized path: "public", "admin" or "" (404)
		wantPath string
	}{
		// /api/public/../admin is /api/admin: no route.
		{name: "dot dot", target: "/api/public/../admin", upstream: ""},
		{name: "encoded dot dot", target: "/api/public/%2e%2e/admin", upstream: ""},
		{name: "two dot dots", target: "/api/public/../../admin", upstream: "admin", wantPath: "/admin"},
		{name: "two encoded dot dots", target: "/api/public/%2e%2e/%2e%2e/admin", upstream: "admin", wantPath: "/admin"},
		{name: "two encoded upper dot dots", target: "/api/public/%2E%2E/%2E%2E/admin", upstream: "admin", wantPath: "/admin"},
		{name: "two mixed encoded dot dots", target: "/api/public/.%2e/%2e./admin", upstream: "admin", wantPath: "/admin"},
		{name: "dot dot above root", target: "/api/public/../../../../admin", upstream: "admin", wantPath: "/admin"},
		{name: "dot dot back into prefix", target: "/admin/../api/public/x", upstream: "public", wantPath: "/api/public/x"},
		{name: "dot dot out and back", target: "/api/public/../public/x", upstream: "public", wantPath: "/api/public/x"},
		{name: "encoded slash", target: "/api/public%2f..%2fadmin", only400: true},
		{name: "encoded upper slash", target: "/api/public%2F..%2Fadmin", only400: true},
		{name: "encoded slash after dot dot", target: "/api/public/..%2fadmin", only400: true},
		{name: "encoded backslash", target: "/api/public/..%5cadmin", only400: true},
		{name: "raw backslash", target: "/api/public/..\\admin", only400: true},
		{name: "dot dot with parameter", target: "/api/public/..;/admin", only400: true},
		{name: "encoded NUL", target: "/api/public/%00/../admin", only400: true},
		{name: "double slashes", target: "//api//public", upstream: "public", wantPath: "/api/public"},
		{name: "dot segment", target: "/api/public/./x", upstream: "public", wantPath: "/api/public/x"},
		{name: "prefix after dot dot stays inside", target: "/api/public/a/../b", upstream: "public", wantPath: "/api/public/b"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("path-%d", i)
			resp, body := rawRequest(t, g.addr, "GET "+tt.target+" HTTP/1.1\r\nHost: gw.test\r\nX-Request-ID: "+id+"\r\nConnection: close\r\n\r\n")
			var got []string
			for name, u := range ups {
				if _, ok := u.byID(id); ok {
					got = append(got, name)
				}
			}
			if resp.StatusCode == http.StatusBadRequest {
				if len(got) != 0 {
					t.Fatalf("400, but upstreams %v received the request", got)
				}
				return
			}
			if tt.only400 {
				t.Fatalf("GET %s: status got %d (received by %v), want 400", tt.target, resp.StatusCode, got)
			}
			if tt.upstream == "" {
				if resp.StatusCode != http.StatusNotFound || len(got) != 0 {
					t.Fatalf("GET %s: got status %d, received by %v; want 404 (or 400), received by none; body %s",
						tt.target, resp.StatusCode, got, body)
				}
				return
			}
			if resp.StatusCode != http.StatusOK || len(got) != 1 || got[0] != tt.upstream {
				t.Fatalf("GET %s: got status %d, received by %v; want 200 from %s (or 400); body %s",
					tt.target, resp.StatusCode, got, tt.upstream, body)
			}
			s, _ := ups[tt.upstream].byID(id)
			if s.URI != tt.wantPath {
				t.Errorf("upstream request target: got %q, want the normalized %q", s.URI, tt.wantPath)
			}
		})
	}
	t.Cleanup(func() {
		for _, s := range public.requests() {
			if s.URI != "/api/public" && !strings.HasPrefix(s.URI, "/api/public/") {
				t.Errorf("public upstream received %q, outside its prefix", s.URI)
			}
		}
	})
}
