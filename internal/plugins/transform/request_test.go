package transform

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/plugins/bodylimit"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up, Params: regexp.MustCompile(`^/orders/(?P<id>[^/]+)`)},
		reqPlugin(t, `
headers:
  remove: [X-Debug, X-Removed-Then-Set]
  rename: {X-Old: X-New}
  set:
    X-Service: order-service
    X-Removed-Then-Set: fresh
    X-Trace: "$(request_id)/$(route)/$(service)/$(method)"
    X-Order: "order-$(path.id)"
    X-From-Query: "$(query.q)"
    X-Moved: "$(header.X-Debug)"
    X-Client: "$(client_ip)"
    X-Path: "$(path)"
    X-Literal: "cost $$(not a var) $5"
  add:
    X-Default: d
    X-Kept: replaced-only-if-absent
`))

	tests := []struct {
		name   string
		target string
		kv     []string
		want   map[string]string // "" means absent
	}{
		{"every operation", "/orders/42?q=hello%20world", []string{
			"X-Debug", "secret", "X-Old", "o", "X-Kept", "client", "X-Removed-Then-Set", "stale", "X-Service", "spoofed"},
			map[string]string{
				"X-Debug": "", "X-Old": "", "X-New": "o", "X-Service": "order-service", "X-Removed-Then-Set": "fresh",
				"X-Trace": "req-1/orders/svc/GET", "X-Order": "order-42", "X-From-Query": "hello world",
				"X-Moved": "secret", "X-Client": "127.0.0.1", "X-Path": "/orders/42",
				"X-Literal": "cost $(not a var) $5", "X-Default": "d", "X-Kept": "client",
			}},
		{"add when absent, empty template values are not sent", "/other", nil, map[string]string{
			"X-Kept": "replaced-only-if-absent", "X-Order": "order-", "X-From-Query": "", "X-Moved": ""}},
		{"control characters from variables are dropped", "/orders/1?q=a%0D%0AX-Evil:%201%00b", nil, map[string]string{
			"X-From-Query": "aX-Evil: 1b", "X-Evil": ""}},
	}
	for _, tt := range tests { // in sequence: one upstream records them
		t.Run(tt.name, func(t *testing.T) {
			res := gw.Do(t, "GET", tt.target, "", tt.kv...)
			if res.Status != 200 {
				t.Fatalf("got status %d, want 200", res.Status)
			}
			got := up.Last()
			for k, want := range tt.want {
				if g := got.Header.Get(k); g != want {
					t.Errorf("header %s: got %q, want %q", k, g, want)
				}
				if want != "" && len(got.Header.Values(k)) != 1 {
					t.Errorf("header %s: got %d values, want 1", k, len(got.Header.Values(k)))
				}
			}
		})
	}
}

func TestRequestQuery(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up}, reqPlugin(t, `
query:
  remove: [debug]
  rename: {q: search}
  set: {version: "2", who: "$(header.X-User)"}
  add: {lang: en, page: "1"}
`))
	tests := []struct {
		name, query, user, want string
	}{
		{"untouched params keep order and encoding", "z=1&a=%2F+x&debug=1&q=a%20b&page=3&version=1&version=9",
			"ann lee", "z=1&a=%2F+x&search=a%20b&page=3&version=2&who=ann+lee&lang=en"},
		{"everything added", "", "", "version=2&lang=en&page=1"},
		{"escaped name is matched decoded", "de%62ug=1&x", "&=?", "x&version=2&who=%26%3D%3F&lang=en&page=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			if tt.user != "" {
				kv = []string{"X-User", tt.user}
			}
			target := "/"
			if tt.query != "" {
				target += "?" + tt.query
			}
			gw.Do(t, "GET", target, "", kv...)
			if got := up.Last().RawQuery; got != tt.want {
				t.Errorf("got query %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequestPathAndHost(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up}, reqPlugin(t, `
path: {pattern: "^/api/v1/(?P<res>[a-z]+)/(.*)$", replacement: "/v2/$${res}/items/$2"}
host: "$(header.X-Tenant).internal.example"
`))
	tests := []struct {
		name, target, tenant, wantPath, wantHost string
	}{
		{"rewritten with captures", "/api/v1/orders/7/lines?x=1", "acme", "/v2/orders/items/7/lines", "acme.internal.example"},
		{"escaped path stays escaped", "/api/v1/files/a%2Fb", "acme", "/v2/files/items/a%2Fb", "acme.internal.example"},
		{"no match leaves the path", "/health", "", "/health", ".internal.example"},
		{"a host that is not a host name is not used", "/x", "a b/c", "/x", "HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var kv []string
			if tt.tenant != "" {
				kv = []string{"X-Tenant", tt.tenant}
			}
			if res := gw.Do(t, "GET", tt.target, "", kv...); res.Status != 200 {
				t.Fatalf("got status %d, want 200", res.Status)
			}
			got := up.Last()
			if got.Path != tt.wantPath {
				t.Errorf("got path %q, want %q", got.Path, tt.wantPath)
			}
			wantHost := tt.wantHost
			if wantHost == "HOST" {
				wantHost = strings.TrimPrefix(up.URL, "http://")
			}
			if got.Host != wantHost {
				t.Errorf("got Host %q, want %q", got.Host, wantHost)
			}
		})
	}
}

func TestRequestBody(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	ops := `
  remove: [password, items.internal]
  rename: {user.mail: email, items.sku: code}
  set: {source: gateway, meta: {by: "$(header.X-User)", tags: [a, 1, true, null]}, user.address.country: "NL", count: 12345678901234567890}
  add: {priority: 5, user.name: anonymous}
  max_size: 256`
	pass := startGateway(t, plugintest.Options{Upstream: up}, reqPlugin(t, "body:"+ops))
	reject := startGateway(t, plugintest.Options{Upstream: up}, reqPlugin(t, "body:"+ops+"\n  on_invalid: reject"))

	big := `{"password":"x","pad":"` + strings.Repeat("p", 300) + `"}`
	tests := []struct {
		name     string
		gw       *plugintest.Gateway
		ct       string
		body     string
		chunked  bool
		wantCode int
		want     string // upstream body
	}{
		{"every operation, nested and through arrays", pass, "application/json",
			`{"password":"p","user":{"mail":"a@b","name":"Ann"},"items":[{"sku":"1","internal":true,"n":1.50},{"sku":"2"}],"keep":1e3}`,
			false, 200,
			`{"count":12345678901234567890,"items":[{"code":"1","n":1.50},{"code":"2"}],"keep":1e3,"meta":{"by":"ann","tags":["a",1,true,null]},"priority":5,"source":"gateway","user":{"address":{"country":"NL"},"email":"a@b","name":"Ann"}}`},
		{"+json type and chunked upload", pass, "application/vnd.api+json; charset=utf-8", `{"user":{}}`, true, 200,
			`{"count":12345678901234567890,"meta":{"by":"ann","tags":["a",1,true,null]},"priority":5,"source":"gateway","user":{"address":{"country":"NL"},"name":"anonymous"}}`},
		{"invalid JSON passes unchanged", pass, "application/json", `{"a":`, false, 200, `{"a":`},
		{"trailing garbage is invalid", pass, "application/json", `{"a":1} {`, false, 200, `{"a":1} {`},
		{"invalid JSON rejected", reject, "application/json", `{"a":`, false, 400, ""},
		{"oversize passes unchanged", pass, "application/json", big, false, 200, big},
		{"oversize chunked passes unchanged", pass, "application/json", big, true, 200, big},
		{"non-JSON untouched", pass, "text/plain", `{"password":"p"}`, false, 200, `{"password":"p"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.Count()
			var rd io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				rd = io.MultiReader(rd)
			}
			req, _ := http.NewRequest("POST", tt.gw.URL+"/", rd)
			req.Header.Set("Content-Type", tt.ct)
			req.Header.Set("X-User", "ann")
			res := tt.gw.Send(t, req)
			if res.Status != tt.wantCode {
				t.Fatalf("got status %d, want %d (%s)", res.Status, tt.wantCode, res.Body)
			}
			if tt.wantCode == 400 {
				if up.Count() != before {
					t.Errorf("got the request upstream, want it refused")
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("got Content-Type %q, want application/problem+json", ct)
				}
				return
			}
			got := up.Last()
			if got.Body != tt.want {
				t.Errorf("got body\n%s\nwant\n%s", got.Body, tt.want)
			}
			if tt.chunked && tt.body == big {
				if got.ContentLength != -1 {
					t.Errorf("got Content-Length %d, want the upload to stay chunked", got.ContentLength)
				}
			} else if got.ContentLength != int64(len(got.Body)) {
				t.Errorf("got Content-Length %d, want %d", got.ContentLength, len(got.Body))
			}
		})
	}
}

func TestRequestBodyNumbersSurvive(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up}, reqPlugin(t, `body: {remove: [x]}`))
	in := `{"a":0.1000,"b":-0,"c":1E+400,"d":123456789012345678901234567890,"e":"<&>","x":1}`
	gw.Do(t, "POST", "/", in, "Content-Type", "application/json")
	want := `{"a":0.1000,"b":-0,"c":1E+400,"d":123456789012345678901234567890,"e":"<&>"}`
	if got := up.Last().Body; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestRequestBodyRespectsClientLimit: a body cut short by an outer limit
// reaches the proxy with the same error, so the client gets 413, not a
// truncated upload.
func TestRequestBodyRespectsClientLimit(t *testing.T) {
	t.Parallel()
	up := plugintest.NewUpstream(t, nil)
	gw := startGateway(t, plugintest.Options{Upstream: up}, reqPlugin(t, `body: {remove: [x]}`),
		plugintest.Configure(t, bodylimit.Registration(), "{max: 10}"))
	req, _ := http.NewRequest("POST", gw.URL+"/", io.MultiReader(strings.NewReader(`{"x":"`+strings.Repeat("a", 100)+`"}`)))
	req.Header.Set("Content-Type", "application/json")
	res := gw.Send(t, req)
	if res.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("got status %d, want 413", res.Status)
	}
	if n := up.Count(); n != 0 {
		if b := up.Last().Body; len(b) > 10 {
			t.Errorf("got %d body bytes upstream, want at most 10", len(b))
		}
	}
}
