package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// TestDescribeIsWhatTheUpstreamReceives sends requests through the proxy
// to a real upstream and asks the same proxy to describe them: the plan's
// upstream request must be what the upstream saw (method, target, Host and
// every header but the per-connection ones), so explain cannot drift from
// the forwarding code.
func TestDescribeIsWhatTheUpstreamReceives(t *testing.T) {
	var mu sync.Mutex
	var seen *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Clone(r.Context())
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, func(o *Options) { o.HostHeader = "orders.internal" })
	var plans []pipeline.Plan
	g := startGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		ex.UpstreamPath = strings.TrimPrefix(ex.UpstreamPath, "/api")
		mu.Lock()
		plans = append(plans, h.Describe(r, ex))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}), nil)

	tests := []struct {
		name, method, target, body string
		header                     http.Header
	}{
		{"plain GET", "GET", "/api/orders?b=2&a=1", "", http.Header{"Accept": {"application/json"}}},
		{"hop-by-hop and forged forwarding", "GET", "/api/orders/7", "", http.Header{
			"Connection": {"X-Secret, keep-alive"}, "X-Secret": {"s"}, "X-Forwarded-For": {"6.6.6.6"},
			"X-Forwarded-Host": {"evil.example"}, "Te": {"trailers, gzip"}, "X-Custom": {"a", "b"}}},
		{"POST with a body", "POST", "/api/orders", `{"items":[]}`, http.Header{"Content-Type": {"application/json"}}},
		{"POST without a body", "POST", "/api/orders", "", nil},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, g.URL+tt.target, strings.NewReader(tt.body))
		if tt.body == "" {
			req.Body = http.NoBody
		}
		for k, vs := range tt.header {
			req.Header[k] = vs
		}
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		plan, got := plans[len(plans)-1], seen
		mu.Unlock()
		if plan.Kind != "proxy" || plan.Service != "svc" || plan.LoadBalancer != "round_robin" ||
			len(plan.Targets) != 1 || !plan.Targets[0].Available || plan.Upstream == nil {
			t.Fatalf("%s: got plan %+v, want the proxy to svc's one available target", tt.name, plan)
		}
		u := plan.Upstream
		if u.Method != got.Method || u.Target != got.RequestURI || u.Host != got.Host {
			t.Errorf("%s: described %s %s Host %s, upstream saw %s %s Host %s",
				tt.name, u.Method, u.Target, u.Host, got.Method, got.RequestURI, got.Host)
		}
		if !sameHeader(u.Header, got.Header) {
			t.Errorf("%s: described header\n%v\nupstream saw\n%v", tt.name, u.Header, got.Header)
		}
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}
