package transform

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/plugintest"
)

// discardWriter is a ResponseWriter that keeps nothing but the header map.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func buildMiddleware(b *testing.B, reg pipeline.Registration, src string) pipeline.Middleware {
	b.Helper()
	c := plugintest.Configure(b, reg, src)
	mw, err := reg.Build(c.Spec, &pipeline.BuildEnv{})
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

// BenchmarkRequestHeaders is the per-request cost of a typical header
// transform: a removal, a rename, static and templated sets, an add.
func BenchmarkRequestHeaders(b *testing.B) {
	mw := buildMiddleware(b, RequestRegistration(), `
headers:
  remove: [X-Debug]
  rename: {X-Old: X-New}
  set: {X-Service: orders, X-Consumer-Id: "$(consumer.id)", X-Trace: "$(request_id)-$(route)"}
  add: {X-Client-IP: "$(client_ip)"}
`)
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/orders/1", nil)
	ex := &pipeline.Exchange{RequestID: "0123456789abcdef", Route: "orders", Service: "svc", UpstreamPath: "/orders/1",
		Consumer: &consumer.Consumer{Name: "app", ID: "app-1"}}
	r = r.WithContext(pipeline.NewContext(r.Context(), ex))
	debug, old := []string{"1"}, []string{"o"}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header["X-Debug"] = debug
		r.Header["X-Old"] = old
		delete(r.Header, "X-New")
		delete(r.Header, "X-Client-Ip")
		h.ServeHTTP(w, r)
	}
}

// BenchmarkResponseHeaders is the per-response cost of header operations
// with X-Response-Time.
func BenchmarkResponseHeaders(b *testing.B) {
	mw := buildMiddleware(b, ResponseRegistration(), `
headers:
  remove: [Server, X-Powered-By]
  set: {X-Response-Time: "$(latency_ms)ms"}
`)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Server"] = []string{"x"}
		w.WriteHeader(200)
		_, _ = w.Write([]byte("ok"))
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(pipeline.NewContext(r.Context(), &pipeline.Exchange{Start: time.Now()}))
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// doc4K returns a JSON document of about 4 KB: a list of products.
func doc4K() []byte {
	var items []map[string]any
	for i := 0; len(items) < 14; i++ {
		items = append(items, map[string]any{"id": i, "name": "product " + strconv.Itoa(i),
			"description": strings.Repeat("words ", 20), "price": json.Number("19.99"),
			"stock": map[string]any{"warehouse": "A", "count": i * 3}, "tags": []string{"x", "y"}})
	}
	out, _ := json.Marshal(map[string]any{"page": 1, "total": 14, "items": items})
	return out
}

// BenchmarkResponseFilter4KB is the cost of allow-list filtering a ~4 KB
// JSON response (decode, filter, encode), through the writer.
func BenchmarkResponseFilter4KB(b *testing.B) {
	doc := doc4K()
	mw := buildMiddleware(b, ResponseRegistration(), `{body: {allow: [page, items.id, items.name, items.price]}}`)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(200)
		_, _ = w.Write(doc)
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(pipeline.NewContext(r.Context(), &pipeline.Exchange{Start: time.Now()}))
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkFilterDeny4KB is the document rewrite alone with a deny-list.
func BenchmarkFilterDeny4KB(b *testing.B) {
	doc := doc4K()
	c := plugintest.Configure(b, ResponseRegistration(), `{body: {deny: [items.description, items.stock]}}`)
	t, err := compileResponse(c.Spec.(*ResponseSpec), c.Path)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out.Reset()
		if !t.filter(doc, &out) {
			b.Fatal("filter failed")
		}
	}
}

// BenchmarkRequestBody4KB is a JSON request body rewrite (remove, set).
func BenchmarkRequestBody4KB(b *testing.B) {
	doc := doc4K()
	mw := buildMiddleware(b, RequestRegistration(), `{body: {remove: [items.description], set: {source: "$(route)"}}}`)
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ex := &pipeline.Exchange{Route: "orders"}
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(doc))
		r.Header["Content-Type"] = []string{"application/json"}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}
}
