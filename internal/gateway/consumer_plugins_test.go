package gateway

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
	"github.com/portico-gateway/portico/internal/plugins/ratelimit"
)

const consumerBase = `
services:
  - { name: s, targets: [{ url: "http://127.0.0.1:1" }] }
routes:
  - { name: r, match: { paths: ["/"] }, service: s }
consumers:
`

func TestDecodeConsumers(t *testing.T) {
	tests := []struct {
		name      string
		consumers string
		want      map[string]int64 // consumer → its first limit
		errs      []string
	}{
		{
			name:      "none",
			consumers: "  - { name: a }\n",
		},
		{
			name: "rate_limit on two of three",
			consumers: `  - { name: a, plugins: { rate_limit: { limits: [{ limit: 10, window: 1m }] } } }
  - { name: b }
  - name: c
    plugins:
      rate_limit: { limits: [{ limit: 20, window: 1s }], key: credential }
`,
			want: map[string]int64{"a": 10, "c": 20},
		},
		{
			name: "other plugins refused",
			consumers: `  - name: a
    plugins:
      ip_rate_limit: { limits: [{ limit: 10, window: 1s }] }
      rate_limit: { limits: [{ limit: 10, window: 1m }] }
  - name: b
    plugins:
      rate_limt: {}
      jwt_auth: {}
`,
			errs: []string{
				`test.yaml:9:7: consumers[0].plugins.ip_rate_limit: plugin "ip_rate_limit" cannot be set on a consumer: only rate_limit can; set ip_rate_limit on a route, a service or in the global plugins`,
				`consumers[1].plugins.rate_limt: unknown plugin "rate_limt"; did you mean "rate_limit"? (only rate_limit may be set on a consumer)`,
				`consumers[1].plugins.jwt_auth: unknown plugin "jwt_auth"; only rate_limit may be set on a consumer`,
			},
		},
		{
			name: "invalid rate_limit located",
			consumers: `  - name: a
    plugins:
      rate_limit: { limits: [{ limit: 0, window: 1m }] }
`,
			errs: []string{"consumers[0].plugins.rate_limit.limits[0].limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(consumerBase+tt.consumers), "test.yaml", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("parse: %s", err)
			}
			all, err := plugins.NewRegistry().DecodeConsumers(cfg)
			got := all[ratelimit.Name]
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatalf("got no error, want %q", tt.errs)
				}
				msg := cfg.Report(err).Error()
				for _, want := range tt.errs {
					if !strings.Contains(msg, want) {
						t.Errorf("got error\n%s\nwant it to contain\n%s", msg, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got %s, want no error", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d consumers with rate_limit, want %d", len(got), len(tt.want))
			}
			for name, limit := range tt.want {
				c, ok := got[name]
				if !ok {
					t.Fatalf("got no rate_limit for %s, want one", name)
				}
				sp, ok := c.Spec.(*ratelimit.Spec)
				if !ok || c.Reg.Name != ratelimit.Name || c.Scope != pipeline.ScopeConsumer {
					t.Fatalf("%s: got %s at scope %s, want rate_limit at scope consumer", name, c.Reg.Name, c.Scope)
				}
				if sp.Limits[0].Limit != limit {
					t.Errorf("%s: got limit %d, want %d", name, sp.Limits[0].Limit, limit)
				}
				if want := "consumers[" + map[string]string{"a": "0", "c": "2"}[name] + "].plugins.rate_limit"; c.Path.String() != want {
					t.Errorf("%s: got path %s, want %s", name, c.Path, want)
				}
			}
		})
	}
}

// TestConsumerRateLimitCompiled runs a compiled snapshot: gold's own limit
// is one budget across both routes, including the route without
// rate_limit; silver keeps the route's limit.
func TestConsumerRateLimitCompiled(t *testing.T) {
	up := echoUpstream(t)
	s := mustCompile(t, `
listen: 127.0.0.1:0
admin: { listen: "off" }
services:
  - { name: echo, url: "${UP}" }
plugins:
  key_auth: {}
routes:
  - name: limited
    match: { paths: ["/limited"] }
    service: echo
    plugins:
      rate_limit: { limits: [{ limit: 4, window: 1m }] }
  - name: open
    match: { paths: ["/open"] }
    service: echo
consumers:
  - name: gold
    credentials: { api_keys: ["gold-key-0123456789"] }
    plugins:
      rate_limit: { limits: [{ limit: 2, window: 1m }] }
  - name: silver
    credentials: { api_keys: ["silver-key-0123456789"] }
`, up.URL)
	send := func(path, key string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = "192.0.2.10:4000"
		r.Header.Set("X-API-Key", key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	var got []string
	for _, path := range []string{"/limited", "/open", "/limited", "/open"} {
		got = append(got, strconv.Itoa(send(path, "gold-key-0123456789")))
	}
	if g := strings.Join(got, " "); g != "200 200 429 429" {
		t.Errorf("gold on limited, open, limited, open: got %s, want 200 200 429 429 (one budget of 2)", g)
	}
	got = got[:0]
	for range 5 {
		got = append(got, strconv.Itoa(send("/limited", "silver-key-0123456789")))
	}
	for range 5 {
		got = append(got, strconv.Itoa(send("/open", "silver-key-0123456789")))
	}
	if g := strings.Join(got, " "); g != "200 200 200 200 429 200 200 200 200 200" {
		t.Errorf("silver: got %s, want the route's 4 on limited and no limit on open", g)
	}
}
