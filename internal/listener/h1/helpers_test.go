package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// start serves h on a fresh loopback listener until the test ends.
func start(t testing.TB, h http.Handler, opts ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, ln, h, opts...), ln.Addr().String()
}

// startWatched is start with the server's background reads signalled on
// the returned bgReads.
func startWatched(t testing.TB, h http.Handler) (*bgReads, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &bgReads{Listener: ln, started: make(chan struct{}, 16), got: make(chan struct{}, 16)}
	serve(t, w, h)
	return w, ln.Addr().String()
}

// serve runs a Server for h on ln until the test ends.
func serve(t testing.TB, ln net.Listener, h http.Handler, opts ...func(*Server)) *Server {
	t.Helper()
	s := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	for _, o := range opts {
		o(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: got %v, want http.ErrServerClosed", err)
		}
	})
	return s
}

// bgReads wraps a listener so that a test can wait for the background
// read of its connections (conn.backgroundRead, the only one-byte read
// the server makes) instead of polling the connection's state.
type bgReads struct {
	net.Listener
	started chan struct{} // a one-byte read began
	got     chan struct{} // a one-byte read returned its byte
}

func (l *bgReads) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &bgReadConn{Conn: c, l: l}, nil
}

type bgReadConn struct {
	net.Conn
	l *bgReads
}

func (c *bgReadConn) Read(p []byte) (int, error) {
	if len(p) != 1 {
		return c.Conn.Read(p)
	}
	notify(c.l.started)
	n, err := c.Conn.Read(p)
	if n == 1 {
		notify(c.l.got)
	}
	return n, err
}

// CloseWrite keeps the TCP half-close the server uses when it lingers.
func (c *bgReadConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// notify records an event without ever blocking the server.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// await waits for an event on ch, failing the test after waitTimeout.
func await(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	select {
	case <-ch:
	case <-timeout.C:
		t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
	}
}

// waitTimeout bounds every wait of these tests for an event.
const waitTimeout = 5 * time.Second

// rawClient speaks raw bytes on one connection.
type rawClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// response is a read response with its whole body.
type readResponse struct {
	*http.Response
	body string
}

func (rc *rawClient) read(method string) readResponse {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("read response: %s", err.Error())
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("read body: %s", err.Error())
	}
	return readResponse{Response: res, body: string(b)}
}

// closed reports whether the server closed the connection (EOF or reset
// before the deadline).
func (rc *rawClient) closed() bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.test\r\n\r\n"
}

var big = strings.Repeat("x", 5000)
