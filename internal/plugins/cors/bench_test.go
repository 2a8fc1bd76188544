package cors

import (
	"net/http"
	"testing"
)

// benchWriter is a ResponseWriter that keeps one header map, cleared per
// request, so the benchmark measures the plugin and not the recorder.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }

// benchNext stands for the rest of the chain: it answers with two
// headers, one of them a CORS header the plugin must replace.
func benchNext() http.Handler {
	ct, acao, body := []string{"application/json"}, []string{"*"}, []byte("{}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = ct
		h["Access-Control-Allow-Origin"] = acao
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

func benchHandler(b *testing.B, settings string) http.Handler {
	b.Helper()
	mw, err := build(configure(b, settings).Spec, nil)
	if err != nil {
		b.Fatal(err)
	}
	return mw(benchNext())
}

// BenchmarkWithoutPlugin is the cost of the benchmark itself, to subtract.
func BenchmarkWithoutPlugin(b *testing.B) {
	r, _ := http.NewRequest(http.MethodGet, "http://gw/api", nil)
	r.Header.Set("Origin", "https://app.example.com")
	benchServe(b, benchNext(), r)
}

func benchServe(b *testing.B, h http.Handler, r *http.Request) {
	b.Helper()
	w := &benchWriter{h: make(http.Header, 8)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkActualRequestExactOrigin(b *testing.B) {
	h := benchHandler(b, `{allow_origins: ["https://app.example.com", "https://admin.example.com"], allow_credentials: true, expose_headers: [X-Total]}`)
	r, _ := http.NewRequest(http.MethodGet, "http://gw/api", nil)
	r.Header.Set("Origin", "https://app.example.com")
	benchServe(b, h, r)
}

func BenchmarkActualRequestWildcardOrigin(b *testing.B) {
	h := benchHandler(b, `{allow_origins: ["https://*.example.com"], expose_headers: [X-Total]}`)
	r, _ := http.NewRequest(http.MethodGet, "http://gw/api", nil)
	r.Header.Set("Origin", "https://tenant-42.example.com")
	benchServe(b, h, r)
}

func BenchmarkActualRequestNoOrigin(b *testing.B) {
	h := benchHandler(b, `{allow_origins: ["https://app.example.com"]}`)
	r, _ := http.NewRequest(http.MethodGet, "http://gw/api", nil)
	benchServe(b, h, r)
}

func BenchmarkPreflight(b *testing.B) {
	h := benchHandler(b, `{allow_origins: ["https://app.example.com"], allow_credentials: true}`)
	r, _ := http.NewRequest(http.MethodOptions, "http://gw/api", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "PUT")
	r.Header.Set("Access-Control-Request-Headers", "content-type,authorization,x-request-id")
	benchServe(b, h, r)
}
