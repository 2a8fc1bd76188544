package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ordersPayload is what the orders service answers for GET /orders: more
// than any mobile screen shows.
const ordersPayload = `{"count":2,"orders":[` +
	`{"id":1,"status":"paid","total":2599,"currency":"EUR","customer":"alice","internal_note":"vip","items":[{"sku":"A-1","cost":1200}]},` +
	`{"id":2,"status":"new","total":999,"currency":"EUR","customer":"bob","internal_note":"","items":[{"sku":"B-2","cost":400}]}]}`

// TestBFFExample runs examples/bff.yaml against real services: the mobile
// response is strictly smaller and holds only the allowed fields, the web
// response is the service's own, and both reach the same service.
func TestBFFExample(t *testing.T) {
	t.Parallel()
	orders := newUpstream(t, "orders", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Powered-By", "orders/1.0")
		fmt.Fprint(w, ordersPayload)
	})
	catalog := newUpstream(t, "catalog", nil)
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "examples", "bff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"http://127.0.0.1:3001", orders.URL(),
		"http://127.0.0.1:3002", catalog.URL(),
		`listen: ":8080"`, "listen: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}",
	).Replace(string(src))
	g := startGateway(t, cfg)
	c := newClient(t)

	webResp, web := get(t, c, g.URL("/api/web/orders"))
	mobileResp, mobile := get(t, c, g.URL("/api/mobile/orders"))
	if webResp.StatusCode != 200 || mobileResp.StatusCode != 200 {
		t.Fatalf("web %d, mobile %d; want 200 both", webResp.StatusCode, mobileResp.StatusCode)
	}
	if string(web) != ordersPayload {
		t.Fatalf("web response changed:\n got %s\nwant %s", web, ordersPayload)
	}
	if len(mobile) >= len(web) {
		t.Fatalf("mobile response is %d bytes, web %d: want strictly smaller", len(mobile), len(web))
	}
	var got map[string]any
	if err := json.Unmarshal(mobile, &got); err != nil {
		t.Fatalf("mobile response is not JSON: %s", mobile)
	}
	want := map[string]any{"count": 2.0, "orders": []any{
		map[string]any{"id": 1.0, "status": "paid", "total": 2599.0, "currency": "EUR"},
		map[string]any{"id": 2.0, "status": "new", "total": 999.0, "currency": "EUR"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mobile response holds other fields:\n got %v\nwant %v", got, want)
	}
	for _, resp := range []*http.Response{webResp, mobileResp} {
		if v := resp.Header.Get("X-Powered-By"); v != "" {
			t.Fatalf("X-Powered-By %q reached the client", v)
		}
	}
	kinds := map[string]bool{}
	for _, s := range orders.requests() {
		if s.Path != "/orders" {
			t.Fatalf("orders service got path %q, want /orders", s.Path)
		}
		kinds[s.Header.Get("X-Client-Kind")] = true
	}
	if !kinds["web"] || !kinds["mobile"] {
		t.Fatalf("X-Client-Kind seen by the service: %v, want web and mobile", kinds)
	}

	// The admin route needs the back-office key and logs an audit line.
	if resp, _ := get(t, c, g.URL("/api/admin/orders")); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin without key: got %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, c, g.URL("/api/admin/orders"), "X-API-Key", "backoffice-key-123"); resp.StatusCode != 200 {
		t.Fatalf("admin with key: got %d, want 200", resp.StatusCode)
	}
	if !g.stderr.waitFor(2e9, nil, func(s string) bool {
		return strings.Contains(s, `"route":"admin-orders"`) && strings.Contains(s, `"consumer":"backoffice"`)
	}) {
		t.Fatalf("no audit line for the admin call:\n%s", tail(g.stderr.String(), 10))
	}
}

// TestCORSPreflightOnMethodRoute: a route that lists its methods (without
// OPTIONS) still gets its preflight answered by its own cors plugin, not a
// 405, and the preflight never reaches the service.
func TestCORSPreflightOnMethodRoute(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "api", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: api, url: %q}
routes:
  - name: api
    match: {paths: ["/api"], methods: [GET, POST]}
    service: api
    plugins:
      cors: {allow_origins: ["http://localhost:3000"], allow_credentials: true}
`, up.URL()))
	c := newClient(t)
	resp, _ := do(t, c, "OPTIONS", g.URL("/api/items"), nil,
		"Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: got %d, want 204", resp.StatusCode)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Fatalf("Access-Control-Allow-Origin = %q", got)
	}
	// A method the route does not take is still 405 for the preflight.
	resp, _ = do(t, c, "OPTIONS", g.URL("/api/items"), nil,
		"Origin", "http://localhost:3000", "Access-Control-Request-Method", "DELETE")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("preflight for DELETE: got %d, want 405", resp.StatusCode)
	}
	// Plain OPTIONS (no preflight) keeps the 405.
	resp, _ = do(t, c, "OPTIONS", g.URL("/api/items"), nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("OPTIONS without preflight headers: got %d, want 405", resp.StatusCode)
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("the service got %d requests, want 0", n)
	}
}
