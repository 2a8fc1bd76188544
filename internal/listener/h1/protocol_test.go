package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
}

func TestExpectContinue(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	c := dial(t, addr)
	c.send("POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response: got %q (%v), want 100 Continue", line, err)
	}
	if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after 100 Continue: got %q, want an empty line", blank)
	}
	c.send("hello")
	if res := c.read("POST"); res.StatusCode != 200 || res.body != "POST /up hello" {
		t.Fatalf("got %d %q, want 200 %q", res.StatusCode, res.body, "POST /up hello")
	}
	// The connection stays usable.
	c.send(get("/next"))
	if res := c.read("GET"); res.body != "GET /next " {
		t.Fatalf("next request: got %q, want %q", res.body, "GET /next ")
	}
}

func TestExpectContinueNotReadClosesConnection(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	c := dial(t, addr)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	res := c.read("POST")
	if res.StatusCode != http.StatusForbidden || !res.Close {
		t.Fatalf("got %d close=%t, want 403 with Connection: close", res.StatusCode, res.Close)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{"missing Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
		{"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"invalid header name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", 400},
		{"control byte in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"HTTP/2 request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"unsupported Expect", "GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", 417},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"final coding not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"unsupported transfer coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
	}
	var served atomic.Int32
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			c.send(tt.request)
			res := c.read("GET")
			if res.StatusCode != tt.status {
				t.Errorf("got %d %q, want %d", res.StatusCode, res.body, tt.status)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store", got)
			}
			if !c.closed() {
				t.Error("connection: got open, want closed")
			}
		})
	}
	if n := served.Load(); n != 0 {
		t.Errorf("handler calls: got %d, want 0", n)
	}
}

func TestAbsoluteFormAndHTTP10WithoutHost(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+" "+r.URL.Path)
	}))
	c := dial(t, addr)
	c.send("GET http://api.example/p HTTP/1.1\r\nHost: ignored.example\r\n\r\n")
	if res := c.read("GET"); res.body != "api.example /p" {
		t.Errorf("absolute form: got %q, want %q", res.body, "api.example /p")
	}
	c.send("GET /q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if res := c.read("GET"); res.StatusCode != 200 || res.body != " /q" {
		t.Errorf("HTTP/1.0 without Host: got %d %q, want 200 %q", res.StatusCode, res.body, " /q")
	}
}

func TestHeaderTooLarge(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo), func(s *Server) { s.MaxHeaderBytes = 1024 })
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 8000) + "\r\n\r\n")
	res := c.read("GET")
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("got %d, want 431", res.StatusCode)
	}
	// One client's oversized header must not become everyone's error in a
	// cache in front of the gateway (CPDoS).
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	if !c.closed() {
		t.Error("connection: got open, want closed")
	}
	// Just under the limit (plus net/http's 4 KB slack) is served.
	c = dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 900) + "\r\n\r\n")
	if res := c.read("GET"); res.StatusCode != 200 {
		t.Fatalf("under the limit: got %d, want 200", res.StatusCode)
	}
}

func TestPipelining(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo))
	c := dial(t, addr)
	var all strings.Builder
	for i := range 5 {
		fmt.Fprintf(&all, "POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n%d", i, i)
	}
	all.WriteString(get("/last"))
	c.send(all.String())
	for i := range 5 {
		want := fmt.Sprintf("POST /%d %d", i, i)
		if res := c.read("POST"); res.body != want {
			t.Fatalf("response %d: got %q, want %q", i, res.body, want)
		}
	}
	if res := c.read("GET"); res.body != "GET /last " {
		t.Fatalf("last: got %q, want %q", res.body, "GET /last ")
	}
}

func TestLargeUnreadBodyClosesConnection(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "early")
	}))
	c := dial(t, addr)
	n := maxPostHandlerReadBytes + 10000
	c.send(fmt.Sprintf("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", n))
	go func() { _, _ = c.c.Write(make([]byte, n)) }()
	res := c.read("POST")
	if res.body != "early" || !res.Close {
		t.Fatalf("got %q close=%t, want %q with Connection: close", res.body, res.Close, "early")
	}
}

func TestInterimResponses(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "page")
	}))
	c := dial(t, addr)
	c.send(get("/"))
	res := c.read("GET") // 103
	if res.StatusCode != http.StatusEarlyHints || res.Header.Get("Link") == "" {
		t.Fatalf("interim: got %d Link=%q, want 103 with Link", res.StatusCode, res.Header.Get("Link"))
	}
	res = c.read("GET")
	if res.StatusCode != 200 || res.body != "page" || res.Header.Get("Link") != "" {
		t.Fatalf("final: got %d %q Link=%q, want 200 page without Link", res.StatusCode, res.body, res.Header.Get("Link"))
	}
}

func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first;")
		if err := http.NewResponseController(w).Flush(); err != nil {
			panic(err)
		}
		<-release
		_, _ = io.WriteString(w, "second")
	}))
	c := dial(t, addr)
	c.send(get("/"))
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TransferEncoding) == 0 {
		t.Fatal("flushed response: got no chunked encoding")
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first;" {
		t.Fatalf("before release: got %q (%v), want %q", buf, err, "first;")
	}
	close(release)
	rest, _ := io.ReadAll(res.Body)
	if string(rest) != "second" {
		t.Fatalf("after release: got %q, want %q", rest, "second")
	}
}

func TestHijack(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		// Echo lines, starting with the bytes read past the request head.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		}
	}))
	c := dial(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v (%v), want 101", res, err)
	}
	for _, want := range []string{"early", "late"} {
		if want == "late" {
			c.send("late\n")
		}
		if line, _ := c.br.ReadString('\n'); line != "echo: "+want+"\n" {
			t.Fatalf("got %q, want %q", line, "echo: "+want+"\n")
		}
	}
}

func TestHijackAfterSlowStart(t *testing.T) {
	// The background read of a slow request must hand its byte over.
	release := make(chan struct{})
	reads, addr := startWatched(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("got " + line)
		_ = brw.Flush()
	}))
	c := dial(t, addr)
	c.send(get("/"))
	await(t, "the background read", reads.started)
	c.send("x-line\n")
	await(t, "the byte read", reads.got)
	close(release)
	if line, _ := c.br.ReadString('\n'); line != "got x-line\n" {
		t.Fatalf("got %q, want %q", line, "got x-line\n")
	}
}

func TestPanics(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic(http.ErrAbortHandler)
	}))
	c := dial(t, addr)
	c.send(get("/"))
	if _, err := http.ReadResponse(c.br, nil); err == nil {
		t.Fatal("aborted handler: got a response, want the connection closed")
	}
}

func TestClientDisconnectCancelsContext(t *testing.T) {
	canceled := make(chan error, 1)
	started := make(chan struct{})
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			canceled <- context.Cause(r.Context())
		case <-time.After(10 * time.Second):
			canceled <- errors.New("not canceled")
		}
	}))
	c := dial(t, addr)
	c.send(get("/slow"))
	<-started
	_ = c.c.Close()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestContextCanceledAfterHandler(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ctxs <- r.Context() }))
	c := dial(t, addr)
	c.send(get("/"))
	c.read("GET")
	if err := (<-ctxs).Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after the handler: got %v, want context.Canceled", err)
	}
}

func TestSlowRequestWithPipelinedNext(t *testing.T) {
	// A request that outlives the delay, with the next one already sent:
	// the byte the background read takes must reach the next request,
	// and the slow request must not be canceled.
	release := make(chan struct{})
	reads, addr := startWatched(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
			if err := r.Context().Err(); err != nil {
				http.Error(w, err.Error(), http.StatusTeapot)
				return
			}
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	c := dial(t, addr)
	c.send(get("/slow"))
	await(t, "the background read", reads.started)
	c.send(get("/next"))
	await(t, "the byte read", reads.got)
	close(release)
	for _, want := range []string{"/slow", "/next"} {
		if res := c.read("GET"); res.body != want {
			t.Fatalf("got %d %q, want %q", res.StatusCode, res.body, want)
		}
	}
}

func TestSlowLoris(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo), func(s *Server) { s.ReadHeaderTimeout = 200 * time.Millisecond })
	c := dial(t, addr)
	begin := time.Now()
	c.send("GET / HTTP/1.1\r\nHost: a\r\n")
	for range 3 {
		_, _ = io.WriteString(c.c, "X-A: b\r\n")
		<-time.After(50 * time.Millisecond)
	}
	if !c.closed() {
		t.Fatal("slow client: got the connection open, want it closed")
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("closed after %s, want about 200ms", d)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(echo), func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	c := dial(t, addr)
	c.send(get("/"))
	c.read("GET")
	if !c.closed() {
		t.Fatal("idle connection: got open, want closed")
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	}))
	idle := dial(t, addr)
	idle.send(get("/"))
	idle.read("GET")
	busy := dial(t, addr)
	busy.send(get("/slow"))
	<-started

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Fatal("idle connection: got open during shutdown, want closed")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	res := busy.read("GET")
	if res.body != "done" || !res.Close {
		t.Fatalf("in-flight request: got %q close=%t, want done with Connection: close", res.body, res.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	if !busy.closed() {
		t.Fatal("connection after its last request: got open, want closed")
	}
}

func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}))
	c := dial(t, addr)
	c.send(get("/"))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestStandardClient(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			panic(err)
		}
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			panic(err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			panic(err)
		}
		echo(w, r)
	}))
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	for i := range 20 {
		body := strings.Repeat("z", i*500)
		res, err := cl.Post("http://"+addr+"/p", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if want := "POST /p " + body; string(b) != want {
			t.Fatalf("request %d: got %d bytes, want %d", i, len(b), len(want))
		}
	}
}

// TestBodyReadAfterReturn checks that a body kept past the handler does
// not read the next request.
func TestBodyReadAfterReturn(t *testing.T) {
	kept := make(chan io.Reader, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keep" {
			kept <- r.Body
		}
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	c := dial(t, addr)
	c.send("POST /keep HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nk")
	c.read("POST")
	body := <-kept
	c.send(get("/next"))
	if _, err := body.Read(make([]byte, 10)); !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Fatalf("stale read: got %v, want http.ErrBodyReadAfterClose", err)
	}
	if res := c.read("GET"); res.body != "/next" {
		t.Fatalf("got %q, want /next", res.body)
	}
}
