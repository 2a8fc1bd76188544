package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/upstream"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestStatusFor(t *testing.T) {
	t.Parallel()
	dialTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 200},
		{"client canceled", fmt.Errorf("x: %w", context.Canceled), 499},
		{"canceled beats timeout", fmt.Errorf("%w: %w", context.Canceled, os.ErrDeadlineExceeded), 499},
		{"client stopped reading", &clientWriteError{err: syscall.EPIPE}, 499},
		{"no target", fmt.Errorf("pick: %w", upstream.ErrNoTarget), 503},
		{"body too large", &clientBodyError{err: &http.MaxBytesError{Limit: 10}}, 413},
		{"client body", &clientBodyError{err: io.ErrUnexpectedEOF}, 400},
		{"bad target", errBadTarget, 500},
		{"dial refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, 502},
		{"connect timeout", fmt.Errorf("dial: %w", dialTimeout), 502},
		{"read deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), 504},
		{"context deadline", context.DeadlineExceeded, 504},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, 504},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, 502},
		{"eof", io.ErrUnexpectedEOF, 502},
		{"malformed", errMalformed, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := StatusFor(tt.err); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

type problemDoc struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func readProblem(t *testing.T, resp *http.Response) problemDoc {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("got Content-Type %q, want %q", ct, problem.ContentType)
	}
	var p problemDoc
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPortURL returns the URL of a port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func TestProxyErrors(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	malformed := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nBad Header Name: x\r\n\r\n")
	})
	badStatus := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 099 Weird\r\n\r\n")
	})
	conflicting := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
	})
	silentClose := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		_, _ = http.ReadRequest(br)
	})
	ms := func(d time.Duration) config.Duration { return config.Duration(d) }
	tests := []struct {
		name       string
		url, path  string
		timeouts   config.Timeouts
		wantStatus int
		wantDetail string
	}{
		{"dead upstream", closedPortURL(t), "/", config.Timeouts{}, 502, "upstream connection failed"},
		{"slow upstream", slow.URL, "/", config.Timeouts{ResponseHeader: ms(100 * time.Millisecond)}, 504, "upstream did not answer in time"},
		{"total timeout", slow.URL, "/", config.Timeouts{Total: ms(100 * time.Millisecond)}, 504, "upstream did not answer in time"},
		{"malformed header", malformed, "/", config.Timeouts{}, 502, "upstream sent an invalid response"},
		{"bad status", badStatus, "/", config.Timeouts{}, 502, "upstream sent an invalid response"},
		{"conflicting lengths", conflicting, "/", config.Timeouts{}, 502, "upstream sent an invalid response"},
		{"closed without answer", silentClose, "/", config.Timeouts{}, 502, "upstream connection failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newProxy(t, tt.url, func(o *Options) { o.Timeouts = tt.timeouts })
			g := startGateway(t, h, nil)
			resp, err := g.client.Get(g.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			p := readProblem(t, resp)
			if p.Status != tt.wantStatus || p.Detail != tt.wantDetail {
				t.Fatalf("got problem %+v, want status %d detail %q", p, tt.wantStatus, tt.wantDetail)
			}
			ex := g.exchange(t, 1)
			if ex.Err == nil || StatusFor(ex.Err) != tt.wantStatus {
				t.Fatalf("got Exchange.Err %v, want one mapping to %d", ex.Err, tt.wantStatus)
			}
		})
	}
}

func TestProxyNoServiceIs503(t *testing.T) {
	t.Parallel()
	g := startGateway(t, New(Options{}), nil)
	resp, err := g.client.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %d Retry-After %q, want 503 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if p := readProblem(t, resp); p.Detail != "no upstream target is available" {
		t.Fatalf("got detail %q", p.Detail)
	}
}

func TestProxyAbortsTruncatedBody(t *testing.T) {
	t.Parallel()
	upURL := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
	})
	h, tg := newProxy(t, upURL, nil)
	g := startGateway(t, h, nil)
	// The head may still sit in the server's buffer when the handler
	// aborts: then the client sees the connection close instead.
	resp, err := g.client.Get(g.URL + "/")
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("got %d %q and no error, want the response cut short", resp.StatusCode, body)
		}
	}
	ex := g.exchange(t, 1)
	if !errors.Is(ex.Err, io.ErrUnexpectedEOF) {
		t.Fatalf("got Exchange.Err %v, want unexpected EOF", ex.Err)
	}
	if tg.Idle() != 0 {
		t.Fatal("a connection with a truncated body went back to the pool")
	}
}

func TestProxyDropsUnsafeHeaderValues(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(up.Close)
	h, _ := newProxy(t, up.URL, nil)
	// A plugin (say, claims to headers) that copies untrusted text.
	g := startGateway(t, h, func(ex *pipeline.Exchange, r *http.Request) {
		r.Header.Set("X-Claim", "a\r\nX-Injected: 1")
		r.Header["Bad Name"] = []string{"x"}
		r.Header["x-lower"] = []string{"kept"}
	})
	resp, err := g.client.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	hdr := <-got
	if _, ok := hdr["X-Injected"]; ok {
		t.Fatal("a header value injected a header")
	}
	if _, ok := hdr["X-Claim"]; ok {
		t.Fatal("an unsafe header value was forwarded")
	}
	if hdr.Get("X-Lower") != "kept" {
		t.Fatalf("got X-Lower %q, want kept", hdr.Get("X-Lower"))
	}
}

// Not parallel: it checks for leaked goroutines.
func TestProxyClientCancelStopsUpstream(t *testing.T) {
	started := make(chan struct{})
	canceled := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: x\n\n")
			w.(http.Flusher).Flush()
		}
		close(started)
		<-r.Context().Done()
		close(canceled)
	}))
	defer up.Close()
	base := runtime.NumGoroutine()

	for _, path := range []string{"/wait", "/stream"} {
		started = make(chan struct{})
		canceled = make(chan struct{})
		reg := upstream.NewRegistry(nil)
		svc, _ := reg.Service(config.Service{Name: "s", URL: up.URL})
		g := startGateway(t, New(Options{Service: svc}), nil)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", g.URL+path, nil)
		done := make(chan error, 1)
		go func() {
			resp, err := g.client.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		<-started
		cancel()
		select {
		case <-canceled:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the upstream request was not canceled", path)
		}
		if err := <-done; err == nil {
			t.Fatalf("%s: client got no error after canceling", path)
		}
		ex := g.exchange(t, 1)
		if got := StatusFor(ex.Err); got != problem.StatusClientClosedRequest {
			t.Fatalf("%s: got status %d for %v, want 499", path, got, ex.Err)
		}
		if svc.Targets()[0].Idle() != 0 {
			t.Fatalf("%s: a canceled connection went back to the pool", path)
		}
		g.client.Transport.(*http.Transport).CloseIdleConnections()
		g.Close()
		_ = reg.Close()
	}
	up.CloseClientConnections()
	checkGoroutines(t, base)
}

func TestProxyStaleKeepAliveConnection(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	up, cc := countedUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(body)
	}), func(s *http.Server) {
		// Like Node, the upstream closes idle keep-alive connections quickly.
		s.IdleTimeout = 50 * time.Millisecond
	})
	// The pool's clock stands still unless the test moves it: connections
	// age in the pool only by what the test says.
	reg := upstream.NewRegistry(nil)
	t.Cleanup(func() { _ = reg.Close() })
	var idle atomic.Int64
	start := time.Now()
	reg.SetClock(func() time.Time { return start.Add(time.Duration(idle.Load())) })
	svc, err := reg.Service(config.Service{Name: "svc", URL: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, New(Options{Service: svc}), nil)

	do := func(method, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, g.URL+"/", strings.NewReader(body))
		if body == "" {
			req.Body = nil
		}
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != body {
			t.Fatalf("%s: got %d %q, want 200 %q", method, resp.StatusCode, got, body)
		}
	}
	do("GET", "")
	cc.awaitAllClosed(t)
	// The pooled connection is dead and was idle under a second: the GET
	// fails on it and is replayed on a new connection.
	do("GET", "")
	cc.awaitAllClosed(t)
	// Idle for over a second: the pool's peek sees the close, so the POST,
	// whose body cannot be replayed, never goes to the dead connection.
	idle.Add(int64(1100 * time.Millisecond))
	do("POST", "payload")
	if got := hits.Load(); got != 3 {
		t.Fatalf("upstream saw %d requests, want 3", got)
	}
	if opened, _ := cc.counts(); opened != 3 {
		t.Fatalf("got %d upstream connections, want 3", opened)
	}
}
