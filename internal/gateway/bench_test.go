package gateway

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/listener/h1"
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

// BenchmarkWholePath measures the plain proxy path as it runs in
// production: keep-alive clients over loopback sockets, the h1 server, a
// compiled snapshot (edge, routing, the default plugins) and the proxy to
// a canned upstream. The clients read responses without allocating, so
// allocs/op are the gateway's; cpu-µs/op is the CPU time of the whole
// process (clients and upstream included) per request.
func BenchmarkWholePath(b *testing.B) {
	s := benchSnapshot(b, baseYAML)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := h1.For(&http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second})
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	req := []byte("GET /api/orders/7?page=2 HTTP/1.1\r\nHost: gw.example\r\nUser-Agent: wrk\r\nAccept: application/json\r\n\r\n")
	clPrefix := []byte("Content-Length: ")
	b.ReportAllocs()
	b.SetParallelism(32) // 64 connections on 2 CPUs, as wrk -c64
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 8192)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			n := -1
			status := true
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					b.Error(err)
					return
				}
				if status {
					if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
						b.Errorf("got status line %q, want 200", line)
						return
					}
					status = false
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := bytes.CutPrefix(line, clPrefix); ok {
					n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
				}
			}
			if n < 0 {
				b.Error("response without Content-Length")
				return
			}
			if _, err := br.Discard(n); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
