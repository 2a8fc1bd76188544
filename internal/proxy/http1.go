package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/upstream"
)

// This file is the synchronous HTTP/1.1 client (NewHTTP1), the Client of
// every HTTP/1.1 service. The handler goroutine does
// the whole exchange itself: it takes an idle connection from the target's
// pool (or dials), writes the request through a pooled bufio.Writer, reads
// the response head with a pooled bufio.Reader straight into the client's
// header map, streams the body with the reader's own buffer (or a pooled
// 32 KiB one for large bodies), and puts the connection back when the
// exchange ended cleanly. There is no goroutine per connection and no
// channel hand-off per request, which is where http.Transport spends most
// of its time.

const (
	ioBufSize   = 4 << 10  // bufio.Reader and Writer per call
	copyBufSize = 32 << 10 // body copies that bypass the reader's buffer
)

// aLongTimeAgo is a deadline in the past: setting it unblocks any pending
// read or write on a connection at once.
var aLongTimeAgo = time.Unix(1, 0)

// errBadSwitch marks a 101 answer to a request that asked for no upgrade,
// or for another protocol.
var errBadSwitch = errors.New("upstream switched to a protocol the client did not ask for")

// errTunnel marks a 2xx answer to CONNECT: the upstream opened a tunnel,
// and the gateway never relays one (RFC 9110 section 9.3.6: what follows
// a 2xx to CONNECT is tunnel data, not a response body).
var errTunnel = errors.New("upstream opened a tunnel for CONNECT")

// HTTP1Options configure the HTTP/1.1 client.
type HTTP1Options struct {
	// Connect bounds the dial (default DefaultConnectTimeout).
	Connect time.Duration
	// ResponseHeader bounds the wait from sending the request to the
	// response head (default DefaultResponseHeaderTimeout).
	ResponseHeader time.Duration
	// Logger receives the rare events that concern operators (header
	// fields dropped as unsafe). Nil discards.
	Logger *slog.Logger
	// Tunnels tracks upgraded (WebSocket) connections so the gateway can
	// close them on shutdown. Nil means they are not tracked.
	Tunnels *Tunnels
}

// http1Client is the synchronous HTTP/1.1 client.
type http1Client struct {
	connect    time.Duration
	respHeader time.Duration
	logger     *slog.Logger
	tunnels    *Tunnels
}

var _ Client = (*http1Client)(nil)

// NewHTTP1 returns the HTTP/1.1 client.
func NewHTTP1(o HTTP1Options) Client {
	cl := &http1Client{connect: o.Connect, respHeader: o.ResponseHeader, logger: o.Logger, tunnels: o.Tunnels}
	if cl.connect <= 0 {
		cl.connect = DefaultConnectTimeout
	}
	if cl.respHeader <= 0 {
		cl.respHeader = DefaultResponseHeaderTimeout
	}
	if cl.logger == nil {
		cl.logger = slog.New(slog.DiscardHandler)
	}
	return cl
}

// Begin takes a pooled call for one attempt.
func (cl *http1Client) Begin(a Attempt) Call {
	c := callPool.Get().(*call)
	c.cl, c.w, c.r, c.ex, c.t = cl, a.W, a.R, a.Ex, a.Target
	c.host, c.upgrade, c.deadline = a.Host, a.Upgrade, a.Deadline
	return c
}

// Describe writes the request head the call would write, with the body's
// framing but not the body, and reads it back as the upstream would.
func (cl *http1Client) Describe(a Attempt) pipeline.UpstreamRequest {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	r := a.R
	bodyLen := int64(0)
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		bodyLen = r.ContentLength
		if bodyLen < 0 {
			bodyLen = -1
		}
	}
	hw := headWriter{bw: bw, target: upstreamTarget(a.Ex), query: r.URL.RawQuery, host: a.Host,
		upgrade: a.Upgrade, trusted: a.Ex.PeerTrusted, clientIP: a.Ex.ClientIP, bodyLen: bodyLen}
	hw.write(r)
	_ = bw.Flush()
	out := pipeline.UpstreamRequest{Protocol: "HTTP/1.1"}
	req, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		return out
	}
	out.Method, out.Target, out.Host, out.Header = req.Method, req.RequestURI, req.Host, req.Header
	return out
}

// call is the state of one request to an upstream. Calls are pooled with
// their buffers.
type call struct {
	cl *http1Client
	w  http.ResponseWriter
	r  *http.Request
	ex *pipeline.Exchange
	t  *upstream.Target

	host string // the Host header

	uc  *upstream.Conn
	br  *bufio.Reader
	bw  *bufio.Writer
	hd  head
	buf *[copyBufSize]byte

	upgrade  string    // protocol asked for ("" for none)
	body     io.Reader // request body to send, nil for none
	bodyLen  int64     // > 0 Content-Length, < 0 chunked
	bodyRead bool      // the body was read from: replay needs GetBody
	deadline time.Time // the Total deadline, zero when unbounded
	sent     time.Time // when the request was first written

	// Client cancellation: abortFn (built once per pooled call) unblocks
	// the connection in active; stop unregisters it.
	abortFn  func()
	stop     func() bool
	active   atomic.Pointer[upstream.Conn]
	canceled atomic.Bool // set by abortFn before it sets the past deadline
	aborted  bool        // abortFn ran or may be running: the call is not reused

	readDeadlineSet bool // the response-header read deadline is still on the conn
	mustClose       bool // the connection cannot be reused
	wroteHeader     bool // the response status went to the client
	hijacked        bool // the client connection was taken over (upgrade)
	flush           bool // flush to the client before blocking on the upstream
	pending         bool // bytes written to the client since the last flush
}

var _ Call = (*call)(nil)

var callPool = sync.Pool{New: func() any {
	c := &call{
		br: bufio.NewReaderSize(nil, ioBufSize),
		bw: bufio.NewWriterSize(nil, ioBufSize),
	}
	c.abortFn = c.abort
	return c
}}

var copyBufPool = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// Status is the final response's status.
func (c *call) Status() int { return c.hd.status }

// Progress says how far the call got.
func (c *call) Progress() Progress {
	return Progress{Sent: c.sent, BodyRead: c.bodyRead, WroteHeader: c.wroteHeader, Hijacked: c.hijacked}
}

// Relay relays the response, or tunnels after a 101.
func (c *call) Relay() error {
	if c.hd.status == http.StatusSwitchingProtocols {
		return c.tunnel()
	}
	return c.relay()
}

// Release returns the call to the pool. A call whose abort function may
// still be running is left to the garbage collector instead.
func (c *call) Release() {
	c.stopAbort()
	if c.uc != nil {
		_ = c.uc.Close()
		c.uc = nil
	}
	if c.buf != nil {
		copyBufPool.Put(c.buf)
		c.buf = nil
	}
	if c.aborted {
		// abort may still be running on another goroutine and reading
		// c.canceled and c.active: leave the call untouched and let the
		// garbage collector have it (resetting it here was a data race).
		return
	}
	c.br.Reset(nil)
	c.bw.Reset(nil)
	c.hd.reset()
	*c = call{br: c.br, bw: c.bw, hd: c.hd, abortFn: c.abortFn}
	callPool.Put(c)
}

// abort runs when the client's context is done: it unblocks whatever the
// handler is doing on the upstream connection.
func (c *call) abort() {
	c.canceled.Store(true)
	if uc := c.active.Load(); uc != nil {
		_ = uc.SetDeadline(aLongTimeAgo)
	}
}

// setDeadline sets the connection's read deadline (both deadlines when
// both is true) without undoing a concurrent abort: abort raises canceled
// before it sets its past deadline, so if ours overwrote it, we see the
// flag and put the past deadline back.
func (c *call) setDeadline(d time.Time, both bool) {
	if both {
		_ = c.uc.SetDeadline(d)
	} else {
		_ = c.uc.SetReadDeadline(d)
	}
	if c.canceled.Load() {
		_ = c.uc.SetDeadline(aLongTimeAgo)
	}
}

// stopAbort unregisters abort and reports whether it never ran; when it
// did, the connection has a past deadline and must not be reused.
func (c *call) stopAbort() bool {
	if c.stop == nil {
		return !c.aborted
	}
	if !c.stop() {
		c.aborted = true
	}
	c.stop = nil
	c.active.Store(nil)
	return !c.aborted
}

func (c *call) buffer() []byte {
	if c.buf == nil {
		c.buf = copyBufPool.Get().(*[copyBufSize]byte)
	}
	return c.buf[:]
}

// connect takes an idle connection (unless fresh) or dials one, and
// prepares it for an exchange.
func (c *call) connect(fresh bool) error {
	var uc *upstream.Conn
	if !fresh && c.upgrade == "" {
		uc = c.t.Get()
	}
	if uc == nil {
		var err error
		if uc, err = c.t.Dial(c.r.Context(), c.cl.connect); err != nil {
			return fmt.Errorf("dial upstream %s: %w", c.t.Addr, err)
		}
	}
	c.uc = uc
	c.br.Reset(uc)
	c.bw.Reset(uc)
	c.readDeadlineSet = false
	c.active.Store(uc)
	if !c.deadline.IsZero() || c.canceled.Load() {
		c.setDeadline(c.deadline, true)
	}
	if c.stop == nil {
		c.stop = context.AfterFunc(c.r.Context(), c.abortFn)
	}
	return nil
}

// closeConn closes the current connection.
func (c *call) closeConn() {
	if c.uc != nil {
		_ = c.uc.Close()
		c.uc = nil
	}
}

// finishConn puts the connection back in the pool when reusable, and
// closes it otherwise.
func (c *call) finishConn(reusable bool) {
	uc := c.uc
	c.uc = nil
	if !c.stopAbort() || !reusable {
		_ = uc.Close()
		return
	}
	if !c.deadline.IsZero() {
		_ = uc.SetDeadline(time.Time{})
	}
	c.t.Put(uc)
}

// replayable reports whether the request can be sent again on a new
// connection after the current one turned out to be closed.
func (c *call) replayable() bool {
	return c.uc.Reused() && c.r.Context().Err() == nil &&
		(c.body == nil || !c.bodyRead || c.r.GetBody != nil)
}

// rewind prepares the body for a second attempt.
func (c *call) rewind() error {
	if c.body == nil || !c.bodyRead {
		return nil
	}
	b, err := c.r.GetBody()
	if err != nil {
		return fmt.Errorf("rewind request body: %w", err)
	}
	c.body, c.bodyRead = b, false
	return nil
}

// staleRead reports whether a head read error means the reused
// connection was closed by the upstream before it saw the request.
func (c *call) staleRead(err error) bool {
	return !c.hd.gotByte && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err))
}

// Exchange sends the request and reads the response head, retrying once
// on a fresh connection when a reused one turns out to be closed.
func (c *call) Exchange() error {
	r := c.r
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		c.body, c.bodyLen = r.Body, r.ContentLength
		if c.bodyLen < 0 {
			c.bodyLen = -1
		}
	}
	for attempt := 0; ; attempt++ {
		if err := c.connect(attempt > 0); err != nil {
			return err
		}
		start := time.Now()
		if attempt == 0 {
			c.sent = start
		}
		werr := c.writeRequest()
		if _, ok := werr.(*clientBodyError); ok {
			c.closeConn()
			return werr
		}
		if werr != nil && attempt == 0 && c.replayable() {
			c.logRetry(werr)
			c.closeConn()
			if err := c.rewind(); err != nil {
				return werr
			}
			continue
		}
		if c.body != nil {
			start = time.Now() // the response-header wait starts after the upload
		}
		// After a failed write the upstream may still have answered (a
		// 413 before reading the body, say): read what it sent.
		herr := c.readHead(start)
		if herr == nil {
			if werr != nil {
				c.mustClose = true
			}
			return nil
		}
		if werr == nil && attempt == 0 && c.replayable() && c.staleRead(herr) {
			c.logRetry(herr)
			c.closeConn()
			if err := c.rewind(); err != nil {
				return herr
			}
			continue
		}
		c.closeConn()
		if werr != nil {
			return werr
		}
		return fmt.Errorf("read response from %s: %w", c.t.Addr, herr)
	}
}

// logRetry notes, at debug level, that a pooled connection turned out to
// be closed and the request goes out again on a new one.
func (c *call) logRetry(err error) {
	l, ctx := c.cl.logger, c.r.Context()
	if l.Enabled(ctx, slog.LevelDebug) {
		l.LogAttrs(ctx, slog.LevelDebug, "upstream connection closed while idle; retrying on a new one",
			slog.String("request_id", c.ex.RequestID), slog.String("upstream", c.t.Addr),
			slog.String("error", err.Error()))
	}
}

// writeRequest writes the request head and body, then flushes.
func (c *call) writeRequest() error {
	ex, r := c.ex, c.r
	target := upstreamTarget(ex)
	if !validTarget(target) || !validTarget(r.URL.RawQuery) {
		return errBadTarget
	}
	hw := headWriter{
		bw: c.bw, target: target, query: r.URL.RawQuery, host: c.host, upgrade: c.upgrade,
		trusted: ex.PeerTrusted, clientIP: ex.ClientIP, bodyLen: c.bodyLen,
	}
	hw.write(r)
	if hw.dropped > 0 {
		c.cl.logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy dropped request header fields with invalid names or values",
			slog.String("request_id", ex.RequestID), slog.String("route", ex.Route), slog.Int("count", hw.dropped))
	}
	if c.body != nil {
		c.bodyRead = true
		var err error
		if c.bodyLen > 0 {
			err = c.writeBodyLength()
		} else {
			err = c.writeBodyChunked()
		}
		if err != nil {
			return err
		}
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write request to %s: %w", c.t.Addr, err)
	}
	return nil
}

// writeBodyLength copies exactly bodyLen bytes of request body. A short
// body fits in the writer's buffer next to the head and goes out in the
// same write.
func (c *call) writeBodyLength() error {
	n := c.bodyLen
	if n <= int64(c.bw.Available()) {
		p := c.bw.AvailableBuffer()[:n]
		if _, err := io.ReadFull(c.body, p); err != nil {
			return &clientBodyError{err: err}
		}
		_, _ = c.bw.Write(p)
		return nil
	}
	buf := c.buffer()
	for n > 0 {
		p := buf
		if int64(len(p)) > n {
			p = p[:n]
		}
		m, err := c.body.Read(p)
		if m > 0 {
			if _, werr := c.bw.Write(p[:m]); werr != nil {
				return fmt.Errorf("write request body to %s: %w", c.t.Addr, werr)
			}
			n -= int64(m)
		}
		if err == io.EOF && n > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return &clientBodyError{err: err}
		}
	}
	return nil
}

// writeBodyChunked copies the request body with chunked encoding,
// flushing each chunk so streaming uploads stream.
func (c *call) writeBodyChunked() error {
	buf := c.buffer()
	for {
		m, err := c.body.Read(buf)
		if m > 0 {
			bw := c.bw
			_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(m), 16))
			_, _ = bw.WriteString("\r\n")
			_, _ = bw.Write(buf[:m])
			_, _ = bw.WriteString("\r\n")
			if werr := bw.Flush(); werr != nil {
				return fmt.Errorf("write request body to %s: %w", c.t.Addr, werr)
			}
		}
		if err == io.EOF {
			_, _ = c.bw.WriteString("0\r\n\r\n")
			return nil
		}
		if err != nil {
			return &clientBodyError{err: err}
		}
	}
}

// readHead reads the final response head under the response-header
// deadline, counted from start (when the request went out), skipping
// informational (1xx) responses.
func (c *call) readHead(start time.Time) error {
	d := start.Add(c.cl.respHeader)
	if !c.deadline.IsZero() && c.deadline.Before(d) {
		d = c.deadline
	}
	c.setDeadline(d, false)
	c.readDeadlineSet = true
	for n := 0; ; n++ {
		if err := c.hd.readResponse(c.br); err != nil {
			return err
		}
		s := c.hd.status
		if s >= 200 || s == http.StatusSwitchingProtocols {
			if s == http.StatusSwitchingProtocols && c.upgrade == "" {
				return errBadSwitch
			}
			if s < 300 && c.r.Method == http.MethodConnect {
				return errTunnel
			}
			return nil
		}
		if n == max1xx {
			return errMalformed
		}
	}
}

// upstreamTarget is the escaped path the upstream receives.
func upstreamTarget(ex *pipeline.Exchange) string {
	if ex.UpstreamPath == "" {
		return "/"
	}
	return ex.UpstreamPath
}
