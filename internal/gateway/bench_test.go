package gateway

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// cannedUpstream is a minimal keep-alive HTTP/1.1 server that answers every
// request with the same 1 KB JSON body and allocates almost nothing, so
// benchmarks measure the gateway rather than the upstream.
func cannedUpstream(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := `{"status":"ok","pad":"` + strings.Repeat("x", 1000) + `"}`
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read one request head (benchmarks send no bodies).
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(bytes.TrimRight(line, "\r\n")) == 0 {
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
	return "http://" + ln.Addr().String()
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchSnapshot(b *testing.B, yaml string) *Snapshot {
	b.Helper()
	return mustCompile(b, yaml, cannedUpstream(b))
}

// benchProxied sends GET /api/orders/7 through s from parallel goroutines.
func benchProxied(b *testing.B, s *Snapshot) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r, _ := http.NewRequest("GET", "http://gw/api/orders/7", nil)
		r.RemoteAddr = "192.0.2.10:4000"
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			delete(r.Header, "X-Request-Id")
			s.ServeHTTP(w, r)
		}
	})
}

// BenchmarkChainProxy measures one proxied request through the whole
// snapshot: path normalization, routing, the default plugins, the proxy and
// a real loopback upstream connection.
func BenchmarkChainProxy(b *testing.B) { benchProxied(b, benchSnapshot(b, baseYAML)) }

// BenchmarkChainProxyAccessLog adds the access log plugin.
func BenchmarkChainProxyAccessLog(b *testing.B) {
	benchProxied(b, benchSnapshot(b, baseYAML+"plugins:\n  access_log: { output: "+b.TempDir()+"/access.log }\n"))
}

// BenchmarkChainNotFound measures a request that matches no route.
func BenchmarkChainNotFound(b *testing.B) {
	s := benchSnapshot(b, baseYAML)
	b.ReportAllocs()
	r, _ := http.NewRequest("GET", "http://gw/nope/nothing", nil)
	r.RemoteAddr = "192.0.2.10:4000"
	w := &discardWriter{h: make(http.Header)}
	for b.Loop() {
		clear(w.h)
		delete(r.Header, "X-Request-Id")
		s.ServeHTTP(w, r)
	}
}
