package edge

import (
	"net/http"
	"slices"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
)

func TestHeadersClean(t *testing.T) {
	identity := []string{"X-Consumer-ID", "x-user-id"}
	tests := []struct {
		name        string
		underscores string
		trusted     bool
		in          http.Header
		want        []string // header names left, sorted
	}{
		{"identity always removed", config.UnderscoresProtected, true,
			http.Header{"X-Consumer-Id": {"a"}, "X-User-Id": {"b"}, "Accept": {"*/*"}}, []string{"Accept"}},
		{"forwarding and overrides from an untrusted peer", config.UnderscoresProtected, false,
			http.Header{"X-Forwarded-Host": {"evil"}, "X-Original-Url": {"/admin"}, "X-Http-Method-Override": {"DELETE"},
				"True-Client-Ip": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}, "Cf-Connecting-Ip": {"1.2.3.4"},
				"X-Forwarded-Prefix": {"/x"}, "X-Custom-Proxy": {"p"}, "Accept": {"*/*"}},
			[]string{"Accept"}},
		{"forwarding and overrides from a trusted proxy", config.UnderscoresProtected, true,
			http.Header{"X-Forwarded-Host": {"api.example"}, "X-Original-Url": {"/a"}, "X-Custom-Proxy": {"p"}},
			[]string{"X-Custom-Proxy", "X-Forwarded-Host", "X-Original-Url"}},
		{"underscore twins of protected names", config.UnderscoresProtected, true,
			http.Header{"X_consumer_id": {"a"}, "X_Forwarded_Host": {"h"}, "X_user-id": {"u"}, "X_custom_thing": {"ok"}},
			[]string{"X_custom_thing"}},
		{"every underscore dropped", config.UnderscoresDrop, true,
			http.Header{"X_custom_thing": {"x"}, "X-Ok": {"y"}}, []string{"X-Ok"}},
		{"underscores allowed", config.UnderscoresAllow, false,
			http.Header{"X_consumer_id": {"a"}, "X_custom_thing": {"x"}}, []string{"X_consumer_id", "X_custom_thing"}},
		{"connection lists the client's own headers", config.UnderscoresProtected, true,
			http.Header{"Connection": {"keep-alive, X-A", "upgrade, te"}, "X-A": {"1"}, "Upgrade": {"websocket"},
				"Te": {"trailers"}, "Keep-Alive": {"5"}},
			[]string{"Connection", "Keep-Alive", "Te", "Upgrade"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewHeaders(identity, []string{"x-custom-proxy"}, tt.underscores)
			h.clean(tt.in, tt.trusted)
			var got []string
			for k := range tt.in {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkHeadersClean(b *testing.B) {
	h := NewHeaders([]string{"X-Consumer-ID", "X-Consumer-Name", "X-Consumer-Groups", "X-User-ID", "X-Anonymous-Consumer"},
		nil, config.UnderscoresProtected)
	src := http.Header{"Accept": {"*/*"}, "User-Agent": {"wrk"}, "Accept-Encoding": {"gzip"}, "X-Api-Key": {"k"},
		"Content-Type": {"application/json"}, "X-Request-Id": {"r"}}
	hdr := make(http.Header, len(src))
	b.ReportAllocs()
	for b.Loop() {
		for k, v := range src {
			hdr[k] = v
		}
		h.clean(hdr, false)
	}
}
