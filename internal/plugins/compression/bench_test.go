package compression

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// discardWriter is a ResponseWriter that counts and drops the body.
type discardWriter struct {
	h http.Header
	n int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// benchHandler answers with body as typ, with its Content-Length.
func benchHandler(body []byte, typ string) http.Handler {
	ct, cl := []string{typ}, []string{strconv.Itoa(len(body))}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"], h["Content-Length"] = ct, cl
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// runBench serves req through h b.N times into a discarding writer.
func runBench(b *testing.B, h http.Handler, req *http.Request, size int) {
	b.Helper()
	w := &discardWriter{h: make(http.Header)}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkCompress is the cost of compressing one JSON response, per
// coding (default levels) and size; bytes/s are of the uncompressed body.
func BenchmarkCompress(b *testing.B) {
	for _, coding := range []string{"gzip", "br", "zstd"} {
		for _, size := range []int{1 << 10, 16 << 10, 128 << 10} {
			b.Run(coding+"/"+strconv.Itoa(size>>10)+"KB", func(b *testing.B) {
				body := jsonBody(size)[:size]
				mw, err := build(newSpec(), nil)
				if err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest("GET", "/", nil)
				req.Header.Set("Accept-Encoding", coding)
				runBench(b, mw(benchHandler(body, "application/json")), req, size)
			})
		}
	}
}

// BenchmarkNotCompressed is the wrapper's overhead on responses it leaves
// alone, against the same handler without the plugin.
func BenchmarkNotCompressed(b *testing.B) {
	body := jsonBody(16 << 10)[:16<<10]
	tests := []struct {
		name, typ, accept string
		plugin            bool
	}{
		{"without_plugin", "application/json", "gzip, br, zstd", false},
		{"image", "image/png", "gzip, br, zstd", true},
		{"client_accepts_none", "application/json", "", true},
		{"small_body", "application/json", "gzip, br, zstd", true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			data := body
			if tt.name == "small_body" {
				data = body[:200]
			}
			h := benchHandler(data, tt.typ)
			if tt.plugin {
				mw, err := build(newSpec(), nil)
				if err != nil {
					b.Fatal(err)
				}
				h = mw(h)
			}
			req := httptest.NewRequest("GET", "/", nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			runBench(b, h, req, len(data))
		})
	}
}

// BenchmarkNegotiate is the cost of reading a typical browser
// Accept-Encoding.
func BenchmarkNegotiate(b *testing.B) {
	c := newCompressor(newSpec())
	accept := []string{"gzip, deflate, br, zstd;q=0.9, *;q=0.1"}
	b.ReportAllocs()
	for range b.N {
		if c.negotiate(accept) != encBrotli {
			b.Fatal("wrong coding")
		}
	}
}
