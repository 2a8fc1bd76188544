package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

// The benchmarks put each proxy between a canned upstream and a canned
// client that allocate nothing per request, so allocs/op is the proxy's
// (and, through a listener, net/http's server side). cpu-µs/op is the CPU
// time of the whole process per request, client and upstream included.

// benchBody is a 1 KB JSON document, as in the project benchmark.
var benchBody = func() []byte {
	var b strings.Builder
	b.WriteString(`{"status":"ok","items":[`)
	for i := range 12 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item-` + strconv.Itoa(i) + `","price":12.34}`)
	}
	b.WriteString(`],"pad":"`)
	for b.Len() < 1022 {
		b.WriteString("x")
	}
	b.WriteString(`"}`)
	return []byte(b.String())
}()

// cannedUpstream answers every request with 200 and benchBody, with the
// headers NGINX sends.
func cannedUpstream(b *testing.B) string {
	b.Helper()
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 10:00:00 GMT\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(benchBody)) +
		"\r\nConnection: keep-alive\r\n\r\n" + string(benchBody))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReaderSize(c, 8192)
				for {
					for { // request head; GETs have no body
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// memWriter is an in-memory ResponseWriter.
type memWriter struct {
	h      http.Header
	status int
	n      int
}

func (m *memWriter) Header() http.Header         { return m.h }
func (m *memWriter) WriteHeader(s int)           { m.status = s }
func (m *memWriter) Write(p []byte) (int, error) { m.n += len(p); return len(p), nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runHandler benchmarks h.ServeHTTP with an in-memory ResponseWriter.
func runHandler(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	b.SetParallelism(16)
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		ex := &pipeline.Exchange{UpstreamPath: "/api/items", ClientIP: netip.MustParseAddr("127.0.0.1")}
		req := httptest.NewRequest("GET", "http://gw.example/api/items?page=2", nil)
		req.Header.Set("User-Agent", "wrk")
		req.Header.Set("Accept", "application/json")
		req = req.WithContext(pipeline.NewContext(context.Background(), ex))
		w := &memWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			w.status, w.n = 0, 0
			h.ServeHTTP(w, req)
			if w.status != 200 || w.n != len(benchBody) {
				b.Fatalf("got %d with %d bytes, want 200 with %d", w.status, w.n, len(benchBody))
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// runListener benchmarks h behind a real net/http server, driven by
// keep-alive clients that write canned GETs.
func runListener(b *testing.B, h http.Handler) {
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &pipeline.Exchange{UpstreamPath: r.URL.EscapedPath()}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	defer gw.Close()
	addr := gw.Listener.Addr().String()
	reqBytes := []byte("GET /api/items?page=2 HTTP/1.1\r\nHost: gw.example\r\nUser-Agent: wrk\r\nAccept: application/json\r\n\r\n")
	b.ReportAllocs()
	b.SetParallelism(16)
	start := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 8192)
		for pb.Next() {
			if _, err := c.Write(reqBytes); err != nil {
				b.Error(err)
				return
			}
			n := -1
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Error(err)
					return
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
			}
			if n != len(benchBody) {
				b.Errorf("got Content-Length %d, want %d", n, len(benchBody))
				return
			}
			if _, err := br.Discard(n); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func benchProxy(b *testing.B) http.Handler {
	reg := upstream.NewRegistry(nil)
	b.Cleanup(func() { _ = reg.Close() })
	svc, err := reg.Service(config.Service{Name: "bench", URL: cannedUpstream(b)})
	if err != nil {
		b.Fatal(err)
	}
	return New(Options{Service: svc})
}

// reverseProxyBaseline is httputil.ReverseProxy tuned as in the design
// notes: Rewrite with X-Forwarded-*, a large idle pool, a buffer pool.
func reverseProxyBaseline(b *testing.B) http.Handler {
	u, _ := url.Parse(cannedUpstream(b))
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Real-IP", "127.0.0.1")
		},
		Transport:  tr,
		BufferPool: bufferPool{},
		ErrorLog:   nil,
	}
}

type bufferPool struct{}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *bufPool.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { bufPool.Put(&b) }

func BenchmarkProxyGET(b *testing.B) {
	b.Run("handler", func(b *testing.B) { runHandler(b, benchProxy(b)) })
	b.Run("listener", func(b *testing.B) { runListener(b, benchProxy(b)) })
}

func BenchmarkReverseProxyBaseline(b *testing.B) {
	b.Run("handler", func(b *testing.B) { runHandler(b, reverseProxyBaseline(b)) })
	b.Run("listener", func(b *testing.B) { runListener(b, reverseProxyBaseline(b)) })
}

var _ io.Writer = (*memWriter)(nil)
