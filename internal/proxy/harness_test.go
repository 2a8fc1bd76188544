package proxy

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/eventtest"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

// testGateway is a real gateway-side http.Server on 127.0.0.1:0 whose
// edge puts a pipeline.Exchange in the context, as the gateway does, and
// then calls the proxy handler.
type testGateway struct {
	*httptest.Server
	client *http.Client

	mu       sync.Mutex
	exs      []*pipeline.Exchange
	recorded eventtest.Changes // an Exchange was recorded
}

// edgeFunc adjusts the Exchange the test edge creates.
type edgeFunc func(ex *pipeline.Exchange, r *http.Request)

func startGateway(t *testing.T, h http.Handler, edit edgeFunc) *testGateway {
	t.Helper()
	g := &testGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &pipeline.Exchange{Start: time.Now(), UpstreamPath: r.URL.EscapedPath()}
		if ip, err := netip.ParseAddr(peerIP(r.RemoteAddr)); err == nil {
			ex.ClientIP = ip
		}
		if edit != nil {
			edit(ex, r)
		}
		defer func() {
			g.mu.Lock()
			g.exs = append(g.exs, ex)
			g.mu.Unlock()
			g.recorded.Changed()
		}()
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	tr := &http.Transport{DisableCompression: true}
	g.client = &http.Client{Transport: tr}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		g.Close()
	})
	return g
}

// exchange waits for the Exchange of the n-th request (from 1) to be
// recorded and returns it.
func (g *testGateway) exchange(t *testing.T, n int) *pipeline.Exchange {
	t.Helper()
	var ex *pipeline.Exchange
	g.recorded.Await(t, waitTimeout, "the exchange of request "+strconv.Itoa(n), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.exs) >= n {
			ex = g.exs[n-1]
			return true
		}
		return false
	})
	return ex
}

// newProxy returns a Handler for a one-target service, with its registry
// closed when the test ends.
func newProxy(t *testing.T, upstreamURL string, mod func(*Options)) (*Handler, *upstream.Target) {
	t.Helper()
	reg := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = reg.Close() })
	svc, err := reg.Service(config.Service{Name: "svc", URL: upstreamURL})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Service: svc}
	if mod != nil {
		mod(&o)
	}
	return New(o), svc.Targets()[0]
}

// rawUpstream serves each accepted connection with serve, for responses
// net/http would not write.
func rawUpstream(t *testing.T, serve func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
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
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
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

// rawRoundTrip sends raw request bytes to addr and reads one response.
func rawRoundTrip(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitTimeout bounds every wait of these tests for an event.
const waitTimeout = 10 * time.Second

// checkGoroutines fails the test when the goroutine count does not come
// back to base. It is the one poll of these tests: a goroutine that
// exits signals nothing that could be waited on.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := runtime.NumGoroutine()
		if n <= base {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("got %d goroutines, want at most %d:\n%s", n, base, buf)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// connCounter counts the TCP connections an httptest.Server accepted.
type connCounter struct {
	mu           sync.Mutex
	opened, live int
	conns        eventtest.Changes // a connection opened or closed
}

func (cc *connCounter) hook(_ net.Conn, s http.ConnState) {
	cc.mu.Lock()
	switch s {
	case http.StateNew:
		cc.opened++
		cc.live++
	case http.StateClosed, http.StateHijacked:
		cc.live--
	}
	cc.mu.Unlock()
	cc.conns.Changed()
}

// awaitAllClosed waits until the server has closed every connection.
func (cc *connCounter) awaitAllClosed(t *testing.T) {
	t.Helper()
	cc.conns.Await(t, waitTimeout, "the upstream closing its connections", func() bool {
		_, live := cc.counts()
		return live == 0
	})
}

func (cc *connCounter) counts() (opened, live int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.opened, cc.live
}

// countedUpstream starts an httptest upstream whose connections are
// counted.
func countedUpstream(t *testing.T, h http.Handler, configure ...func(*http.Server)) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.hook
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}
