package iprestriction

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// benchEntries returns n disjoint deny entries, half IPv4 /24s and half
// IPv6 /48s, none of which holds 192.0.2.1 or 2001:db8:ffff::1.
func benchEntries(n int) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24).String())
		} else {
			out = append(out, "2001:db8:"+strconv.FormatInt(int64(i), 16)+"::/48")
		}
	}
	return out
}

func BenchmarkAllowed(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		p := mustPolicy(b, nil, benchEntries(n))
		for _, addr := range []string{"192.0.2.1", "10.0.4.9", "2001:db8:ffff::1", "::ffff:192.0.2.1"} {
			a := netip.MustParseAddr(addr)
			b.Run(strconv.Itoa(n)+"/"+addr, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					p.allowed(a)
				}
			})
		}
	}
}

// BenchmarkMiddleware measures the plugin's cost for a request that
// passes: one context lookup and one search per list.
func BenchmarkMiddleware(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			mw, err := build(&Spec{Deny: benchEntries(n)}, &pipeline.BuildEnv{})
			if err != nil {
				b.Fatal(err)
			}
			h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r = r.WithContext(pipeline.NewContext(r.Context(), &pipeline.Exchange{ClientIP: netip.MustParseAddr("192.0.2.1")}))
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}
