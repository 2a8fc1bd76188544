package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

var helloBody = []byte("hello, world\n")

func hello(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	_, _ = w.Write(helloBody)
}

// BenchmarkServer compares h1 with net/http serving the same trivial
// handler over loopback keep-alive connections, one per parallel client.
// The client reads responses without allocating, so allocs/op are the
// server's.
func BenchmarkServer(b *testing.B) {
	b.Run("h1", func(b *testing.B) {
		_, addr := start(b, http.HandlerFunc(hello))
		benchClients(b, addr)
	})
	b.Run("std", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(hello), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		benchClients(b, ln.Addr().String())
	})
}

func benchClients(b *testing.B, addr string) {
	req := []byte(get("/bench"))
	b.ReportAllocs()
	b.SetParallelism(32) // 64 connections on 2 CPUs, as wrk -c64
	cpu0 := cpuTime()
	b.ResetTimer()
	defer func() {
		// Process CPU per request (server and client together): steadier
		// than ns/op on a shared machine.
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if err := readHello(br); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var clPrefix = []byte("Content-Length: ")

// readHello reads one response head and its Content-Length body.
func readHello(br *bufio.Reader) error {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) == 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, clPrefix); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n != len(helloBody) {
		return errors.New("unexpected response length")
	}
	_, err := br.Discard(n)
	return err
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
