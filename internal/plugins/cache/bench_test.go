package cache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
)

// benchWriter is a reusable ResponseWriter that discards the body.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *benchWriter) Flush()                      {}

func benchHandler(b *testing.B, settings string) (http.Handler, *http.Request) {
	b.Helper()
	body := []byte(strings.Repeat("x", 1024))
	upstream := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"v1"`)
		_, _ = w.Write(body)
	})
	c := authtest.Configure(b, Registration(), settings)
	shared := pipeline.NewShared()
	b.Cleanup(func() { shared.Begin(); shared.Retire() })
	mw, err := c.Reg.Build(c.Spec, &pipeline.BuildEnv{Route: "products", Shared: shared})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(upstream)
	req := httptest.NewRequest(http.MethodGet, "http://shop.example/api/products?category=books&page=2", nil)
	ex := &pipeline.Exchange{Start: time.Now(), Route: "products", UpstreamPath: "/api/products"}
	req = req.WithContext(pipeline.NewContext(context.Background(), ex))
	w := &benchWriter{h: make(http.Header)}
	h.ServeHTTP(w, req)
	clear(w.h)
	h.ServeHTTP(w, req)
	if !strings.Contains(w.h.Get("Cache-Status"), "hit") {
		b.Fatalf("got Cache-Status %q, want a hit", w.h.Get("Cache-Status"))
	}
	return h, req
}

// BenchmarkHit is the cost of serving a 1 KiB stored response through the
// plugin (key, lookup, freshness, headers, body), without the network.
func BenchmarkHit(b *testing.B) {
	h, req := benchHandler(b, "")
	w := &benchWriter{h: make(http.Header, 16)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	if w.status != 200 {
		b.Fatalf("got %d, want 200", w.status)
	}
}

func BenchmarkHitParallel(b *testing.B) {
	h, req := benchHandler(b, "")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: make(http.Header, 16)}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}
