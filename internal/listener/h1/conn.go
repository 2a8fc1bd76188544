package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/problem"
	"golang.org/x/net/http2"
)

// Connection states, as net/http's ConnState, for Shutdown.
const (
	stateNew = iota
	stateActive
	stateIdle
)

// bgReadDelay is how long a request runs before its connection is watched
// for the client going away. Requests that finish sooner pay nothing.
const bgReadDelay = 25 * time.Millisecond

// maxPostHandlerReadBytes bounds the unread request body the server
// discards to keep a connection alive (net/http's figure).
const maxPostHandlerReadBytes = 256 << 10

// rstAvoidanceDelay is how long a connection closed with an unread
// request body stays open so the client can read the response first.
const rstAvoidanceDelay = 500 * time.Millisecond

// aLongTimeAgo is a read deadline in the past: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

var (
	readerPool sync.Pool
	writerPool sync.Pool
)

const bufSize = 4 << 10

func getReader(r io.Reader) *bufio.Reader {
	if v := readerPool.Get(); v != nil {
		br := v.(*bufio.Reader)
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, bufSize)
}

func getWriter(w io.Writer) *bufio.Writer {
	if v := writerPool.Get(); v != nil {
		bw := v.(*bufio.Writer)
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, bufSize)
}

// conn is one client connection and everything reused across its
// requests.
type conn struct {
	srv        *Server
	rwc        net.Conn
	remoteAddr string
	baseCtx    context.Context
	cr         connReader
	bufr       *bufio.Reader
	bufw       *bufio.Writer
	res        response
	state      atomic.Uint64 // state | unix seconds << 8

	// clearDeadline is set while the header read deadline is still armed
	// after the request was parsed (it is cleared lazily: a request
	// without a body never reads the connection again).
	clearDeadline bool

	// Background read: the timer fires bgReadDelay into a request, and a
	// goroutine then reads one byte from the connection to notice the
	// client closing it. Guarded by mu.
	mu        sync.Mutex
	cond      sync.Cond
	timer     *time.Timer
	timerSet  bool      // the timer is pending (it outlives requests)
	started   time.Time // when the current request's head began
	armed     bool      // a request is running; the timer may start a read
	due       bool      // the delay passed; start the read once the body is done
	bgReading bool
	aborting  bool
	broken    bool // the background read found the connection closed
	cancel    context.CancelFunc
	body      *body // current request's body, nil when it has none
	hijacked  bool
	linger    bool // close gracefully: the request body was left unread

	tlsState *tls.ConnectionState // set for TLS connections after the handshake
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, remoteAddr: rwc.RemoteAddr().String()}
	c.baseCtx = context.WithValue(context.Background(), http.LocalAddrContextKey, rwc.LocalAddr())
	c.cond.L = &c.mu
	c.cr.c = c
	c.res.c = c
	c.setState(stateNew)
	return c
}

func (c *conn) setState(st uint64) { c.setStateAt(st, time.Now()) }

// setStateAt is setState with the caller's clock reading.
func (c *conn) setStateAt(st uint64, now time.Time) {
	c.state.Store(st | uint64(now.Unix())<<8)
}

func (c *conn) getState() (uint64, int64) {
	v := c.state.Load()
	return v & 0xff, int64(v >> 8)
}

// serve reads and answers requests in order until the connection closes,
// fails, is hijacked or the server shuts down.
func (c *conn) serve() {
	s := c.srv
	c.bufr = getReader(&c.cr)
	if s.WriteTimeout > 0 {
		c.bufw = getWriter(timedWriter{c})
	} else {
		c.bufw = getWriter(c.rwc)
	}
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			s.logf("h1: panic serving %s: %v\n%s", c.remoteAddr, v, debug.Stack())
		}
		if c.timer != nil {
			c.timer.Stop()
		}
		if c.hijacked {
			return
		}
		if c.linger {
			c.closeWriteAndWait()
		}
		_ = c.rwc.Close()
		s.trackConn(c, false)
		c.bufr.Reset(nil)
		readerPool.Put(c.bufr)
		c.bufw.Reset(nil)
		writerPool.Put(c.bufw)
	}()
	if d := s.ReadHeaderTimeout; d > 0 {
		_ = c.rwc.SetReadDeadline(time.Now().Add(d))
	}
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if !c.handshake(tc) {
			return
		}
		if c.tlsState.NegotiatedProtocol == "acme-tls/1" {
			return // an ACME TLS-ALPN-01 validation ends with the handshake (RFC 8737)
		}
		if c.tlsState.NegotiatedProtocol == http2.NextProtoTLS && s.h2 != nil {
			c.serveH2(tc)
			return
		}
	}
	var now time.Time
	for first := true; ; first = false {
		c.cr.limit(s.maxHeaderBytes() + 4096)
		if !first {
			if s.inShutdown.Load() {
				return
			}
			if c.bufr.Buffered() == 0 {
				idle := time.Now()
				c.setStateAt(stateIdle, idle)
				if d := s.IdleTimeout; d > 0 {
					_ = c.rwc.SetReadDeadline(idle.Add(d))
				} else if c.clearDeadline {
					// No idle limit, but the header deadline is still set.
					_ = c.rwc.SetReadDeadline(time.Time{})
				}
				if _, err := c.bufr.Peek(1); err != nil {
					return
				}
			}
			now = time.Now()
			c.setStateAt(stateActive, now)
			if d := s.ReadHeaderTimeout; d > 0 {
				_ = c.rwc.SetReadDeadline(now.Add(d))
			} else if s.IdleTimeout > 0 {
				_ = c.rwc.SetReadDeadline(time.Time{})
			}
		} else {
			b, err := c.bufr.Peek(1)
			if err != nil {
				return
			}
			if b[0] == 'P' && s.H2C && s.h2 != nil && c.tlsState == nil && isPreface(c.bufr) {
				c.cr.unlimit()
				c.serveH2(&prefacedConn{Conn: c.rwc, r: c.bufr})
				return
			}
			now = time.Now()
			c.setStateAt(stateActive, now)
		}
		c.clearDeadline = s.ReadHeaderTimeout > 0
		if !c.serveOne(now) {
			return
		}
	}
}

// serveOne reads, checks and answers one request whose head began at
// start; it reports whether the connection may carry another.
func (c *conn) serveOne(start time.Time) bool {
	lineDone := false
	req, err := readRequest(c.bufr, &lineDone)
	hitLimit := c.cr.hitLimit
	c.cr.unlimit()
	if err != nil {
		var re *requestError
		switch {
		case hitLimit && !lineDone:
			c.writeError(http.StatusRequestURITooLong, "")
			c.linger = true // the client may still be sending its head
		case hitLimit:
			c.writeError(http.StatusRequestHeaderFieldsTooLarge, "")
			c.linger = true
		case errors.As(err, &re):
			c.writeError(re.status, re.reason)
			c.linger = true // unread bytes may follow: let the answer arrive first
		case isCommonNetReadError(err):
		default:
			c.writeError(http.StatusBadRequest, "")
		}
		return false
	}

	ctx, cancel := context.WithCancel(c.baseCtx)
	req = req.WithContext(ctx)
	req.RemoteAddr = c.remoteAddr
	req.TLS = c.tlsState

	w := &c.res
	w.reset(req)
	var b *body
	if req.Body != nil && req.Body != http.NoBody {
		if c.clearDeadline {
			_ = c.rwc.SetReadDeadline(time.Time{})
			c.clearDeadline = false
		}
		b = &body{rc: req.Body, c: c}
		req.Body = b
		w.reqBody = b
	}
	if expect := req.Header["Expect"]; len(expect) > 0 {
		if hasToken(expect[0], "100-continue") {
			if req.ProtoAtLeast(1, 1) && req.ContentLength != 0 && b != nil {
				w.expect = true
				w.canWriteContinue.Store(true)
			}
		} else if expect[0] != "" {
			cancel()
			c.writeError(http.StatusExpectationFailed, "")
			return false
		}
	}

	// The timer is left running between requests: when it fires during a
	// later request it waits out that request's own delay, which spares
	// a timer reset and stop per request.
	c.mu.Lock()
	c.armed, c.due, c.broken = true, false, false
	c.cancel, c.body = cancel, b
	c.started = start
	if !c.timerSet {
		c.timerSet = true
		if d := bgReadDelay - time.Since(start); c.timer == nil {
			c.timer = time.AfterFunc(max(d, 0), c.delayPassed)
		} else {
			c.timer.Reset(max(d, 0))
		}
	}
	c.mu.Unlock()

	ok := c.runHandler(w, req)
	c.stopBackgroundRead()
	cancel()
	if c.hijacked {
		return false
	}
	if !ok {
		return false
	}
	w.finish()
	if b != nil {
		b.finished.Store(true)
	}
	c.mu.Lock()
	broken := c.broken
	c.cancel, c.body = nil, nil
	c.mu.Unlock()
	flushErr := c.bufw.Flush()
	if b != nil && !b.eof.Load() {
		// Closing with the request body unread: let the client read the
		// response before the close resets the connection.
		c.linger = true
	}
	return flushErr == nil && !w.closeAfter && !broken
}

// timedWriter writes to the connection with a deadline WriteTimeout
// ahead of each write, so a client that stops reading the response is let
// go once no byte could be written for that long.
type timedWriter struct{ c *conn }

func (w timedWriter) Write(p []byte) (int, error) {
	_ = w.c.rwc.SetWriteDeadline(time.Now().Add(w.c.srv.WriteTimeout))
	return w.c.rwc.Write(p)
}

// handshake completes the TLS handshake within the header deadline and
// keeps the connection's state for its requests.
func (c *conn) handshake(tc *tls.Conn) bool {
	ctx, cancel := context.WithCancel(c.baseCtx)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		if c.srv.ErrorLog != nil && !isCommonNetReadError(err) {
			c.srv.logf("h1: TLS handshake error from %s: %v", c.remoteAddr, err)
		}
		return false
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	return true
}

// serveH2 serves the connection as HTTP/2 until it ends; it counts as
// active all along, so Shutdown waits for its streams (after GOAWAY).
func (c *conn) serveH2(nc net.Conn) {
	c.setState(stateActive)
	_ = c.rwc.SetDeadline(time.Time{})
	c.srv.h2.serve(c.baseCtx, nc)
}

// closeWriteAndWait half-closes the connection, so the client reads the
// answer and then end of stream at once, and reads (discarding) until the
// client closes its side or rstAvoidanceDelay passes: a close with unread
// bytes pending would reset the connection and could destroy the answer
// before the client read it.
func (c *conn) closeWriteAndWait() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.rwc.SetReadDeadline(time.Now().Add(rstAvoidanceDelay))
	var buf [512]byte
	for {
		if _, err := c.rwc.Read(buf[:]); err != nil {
			return
		}
	}
}

// runHandler calls the handler; a panic aborts the connection (logged
// unless it is http.ErrAbortHandler) and it returns false.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				c.srv.logf("h1: panic serving %s: %v\n%s", c.remoteAddr, v, debug.Stack())
			}
			ok = false
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

// writeError answers a request that cannot be served with problem JSON,
// like every answer the gateway makes itself, and leaves the connection to
// be closed, as net/http does. The answer describes this one request, so
// it says no-store: a cache in front of the gateway must not serve it to
// other clients (CPDoS).
func (c *conn) writeError(code int, why string) {
	body := problem.Body(code, "", why, "")
	_ = c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c.rwc, "HTTP/1.1 "+itoa3(code)+" "+http.StatusText(code)+
		"\r\nContent-Type: "+problem.ContentType+"\r\nContent-Length: "+strconv.Itoa(len(body))+
		"\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"+string(body))
}

func isCommonNetReadError(err error) bool {
	if err == io.EOF {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "read"
}

// delayPassed runs bgReadDelay into a request: it starts watching the
// connection once the request body has been read.
func (c *conn) delayPassed() {
	c.mu.Lock()
	if !c.armed {
		c.timerSet = false
		c.mu.Unlock()
		return
	}
	if d := bgReadDelay - time.Since(c.started); d > 0 {
		c.timer.Reset(d) // set during an earlier request
		c.mu.Unlock()
		return
	}
	c.timerSet = false
	c.due = true
	start := c.canReadLocked()
	c.mu.Unlock()
	if start {
		c.backgroundRead()
	}
}

// bodyDone is called when the request body reached its end.
func (c *conn) bodyDone() {
	c.mu.Lock()
	start := c.due && c.canReadLocked()
	c.mu.Unlock()
	if start {
		go c.backgroundRead()
	}
}

// canReadLocked reports whether a background read may start now, and if
// so marks it started.
func (c *conn) canReadLocked() bool {
	if !c.armed || c.bgReading || c.hijacked || c.cr.hasByte || (c.body != nil && !c.body.eof.Load()) {
		return false
	}
	c.bgReading = true
	if c.clearDeadline {
		_ = c.rwc.SetReadDeadline(time.Time{})
		c.clearDeadline = false
	}
	return true
}

// backgroundRead reads one byte to notice the client going away; a byte
// that arrives (a pipelined request) is kept for the next read.
func (c *conn) backgroundRead() {
	var p [1]byte
	n, err := c.rwc.Read(p[:])
	c.mu.Lock()
	if n == 1 {
		c.cr.hasByte, c.cr.b = true, p[0]
	} else if err != nil && !c.aborting {
		c.broken = true
		if c.cancel != nil {
			c.cancel()
		}
	}
	c.bgReading = false
	c.cond.Broadcast()
	c.mu.Unlock()
}

// stopBackgroundRead disarms the watch and waits for a running read to
// end.
func (c *conn) stopBackgroundRead() {
	c.mu.Lock()
	c.armed, c.due = false, false
	aborted := false
	for c.bgReading {
		if !c.aborting {
			c.aborting, aborted = true, true
			_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		}
		c.cond.Wait()
	}
	c.aborting = false
	c.mu.Unlock()
	if aborted {
		_ = c.rwc.SetReadDeadline(time.Time{})
	}
}

// connReader reads the connection for the bufio.Reader: it hands out the
// byte a background read took first, and enforces the header size limit.
type connReader struct {
	c        *conn
	hasByte  bool
	b        byte
	limited  bool
	remain   int64
	hitLimit bool
}

func (cr *connReader) limit(n int64) { cr.limited, cr.remain, cr.hitLimit = true, n, false }
func (cr *connReader) unlimit()      { cr.limited = false }

func (cr *connReader) Read(p []byte) (int, error) {
	if cr.limited {
		if cr.remain <= 0 {
			cr.hitLimit = true
			return 0, io.EOF
		}
		if int64(len(p)) > cr.remain {
			p = p[:cr.remain]
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if cr.hasByte {
		p[0] = cr.b
		cr.hasByte = false
		cr.remain--
		return 1, nil
	}
	n, err := cr.c.rwc.Read(p)
	cr.remain -= int64(n)
	return n, err
}

// body wraps a request body: it sends 100 Continue on the first read when
// the client asked for it, notes the end of the body, and never drains on
// Close (the server drains a bounded amount after the handler).
type body struct {
	rc       io.ReadCloser
	c        *conn
	eof      atomic.Bool
	closed   atomic.Bool
	finished atomic.Bool
	failed   atomic.Bool // a read error other than EOF: the stream is unusable
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed.Load() || b.finished.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.eof.Load() {
		return 0, io.EOF
	}
	b.c.res.writeContinue()
	n, err := b.rc.Read(p)
	b.note(err)
	return n, err
}

func (b *body) note(err error) {
	if err == io.EOF {
		if !b.eof.Swap(true) {
			b.c.bodyDone()
		}
	} else if err != nil {
		b.failed.Store(true)
	}
}

// Close marks the body closed; the server reads what remains.
func (b *body) Close() error {
	b.closed.Store(true)
	return nil
}

// drain reads what remains of the body, at most maxPostHandlerReadBytes,
// and reports whether the next request can then be read.
func (b *body) drain() bool {
	if b.eof.Load() {
		return true
	}
	if b.failed.Load() {
		return false
	}
	_, err := io.CopyN(io.Discard, b.rc, maxPostHandlerReadBytes+1)
	if err == io.EOF {
		b.eof.Store(true)
		return true
	}
	return false
}

func itoa3(code int) string {
	if code < 100 || code > 999 {
		code = 500
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}
