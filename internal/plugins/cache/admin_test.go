package cache

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/admin"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// adminFor serves the plugin's admin endpoints through the admin API, as
// the gateway mounts them, against shared; routes are the config's routes.
func adminFor(t *testing.T, shared *pipeline.Shared, routes ...string) *httptest.Server {
	t.Helper()
	env := pipeline.AdminEnv{Shared: shared, HasRoute: func(name string) bool {
		for _, r := range routes {
			if r == name {
				return true
			}
		}
		return false
	}}
	var eps []admin.Endpoint
	for _, e := range Registration().Admin {
		eps = append(eps, admin.Endpoint{Method: e.Method, Path: e.Path,
			Serve: func(r *http.Request) (any, error) { return e.Serve(r, env) }})
	}
	srv := httptest.NewServer(admin.New(admin.Options{Endpoints: eps}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAdminPurge(t *testing.T) {
	o := newOrigin(t, answer(200, "p", "Cache-Control", "max-age=60"))
	g := startGateway(t, o, "", gwOptions{route: "products"})
	srv := adminFor(t, g.shared, "products")
	for _, p := range []string{"/api/products?category=books", "/api/products/1", "/api/products/2"} {
		g.get(t, p)
	}
	tests := []struct {
		name, method, body string
		status             int
		want               string
	}{
		{"one url", "POST", `{"route":"products","url":"/api/products?category=books"}`, 200, `"purged": 1`},
		{"prefix", "POST", `{"route":"products","prefix":"/api/products"}`, 200, `"purged": 2`},
		{"route", "POST", `{"route":"products"}`, 200, `"purged": 0`},
		{"no route", "POST", `{"url":"/x"}`, 400, "route is required"},
		{"both", "POST", `{"route":"p","url":"/x","prefix":"/x"}`, 400, "not both"},
		{"relative url", "POST", `{"route":"p","url":"x"}`, 400, "starting with"},
		{"unknown field", "POST", `{"route":"p","path":"/x"}`, 400, "must be JSON"},
		{"not json", "POST", `purge everything`, 400, "must be JSON"},
		{"unknown route", "POST", `{"route":"ghost"}`, 404, "no route named ghost"},
		{"GET", "GET", ``, 405, ""},
	}
	// A gateway whose store is a Redis nobody listens on: its purge cannot
	// complete, and the operator is told.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + ln.Addr().String()
	_ = ln.Close()
	down := startGateway(t, o, "store: redis", gwOptions{route: "down",
		store: &config.Store{Redis: &config.Redis{URL: config.Secret(dead), Timeout: config.Duration(200e6)}}})
	downSrv := adminFor(t, down.shared, "down")
	for _, tt := range tests {
		status, body := purgeAt(t, srv, tt.method, tt.body)
		if status != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: got %d %s, want %d containing %q", tt.name, status, body, tt.status, tt.want)
		}
	}
	if status, body := purgeAt(t, downSrv, "POST", `{"route":"down"}`); status != 502 || !strings.Contains(body, "purge did not complete") {
		t.Errorf("store down: got %d %s, want 502 containing %q", status, body, "purge did not complete")
	}
}

func purgeAt(t *testing.T, srv *httptest.Server, method, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+"/cache/purge", strings.NewReader(body))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
