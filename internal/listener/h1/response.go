package h1

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// bufferBeforeCommit is how much body the response holds before it must
// send its head: a body that fits, written before the handler returns,
// gets a Content-Length (net/http's figure).
const bufferBeforeCommit = 2048

// response is the http.ResponseWriter of one request; one per connection,
// reset for each request. Besides http.Flusher and http.Hijacker it has the
// methods http.ResponseController looks for (FlushError, SetReadDeadline,
// SetWriteDeadline, EnableFullDuplex).
type response struct {
	c       *conn
	req     *http.Request
	reqBody *body

	header http.Header // the handler's
	// snap is the head as it was at WriteHeader, taken only when the
	// handler asks for the header map again before the head is written
	// (so trailer values set later are not sent as headers).
	snap http.Header

	status      int
	wroteHeader bool // the handler's final status is set
	committed   bool // the head is in the connection's buffer
	handlerDone bool
	isHEAD      bool
	is11        bool
	expect      bool // the client sent Expect: 100-continue
	fullDuplex  bool
	discard     bool // no body goes on the wire (HEAD, 204, 304)
	chunked     bool
	closeAfter  bool
	early       bool // the head was written from WriteHeader

	contentLength int64 // -1 when unknown
	written       int64
	err           error // the first write error

	buf      []byte // body held before the head is written
	trailers []string
	scratch  [32]byte

	canWriteContinue atomic.Bool
	continueMu       sync.Mutex
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

var errHijackAfterReturn = errors.New("h1: Hijack after the handler returned")

func (w *response) reset(req *http.Request) {
	// The header map is the connection's: a handler may not use the
	// ResponseWriter after it returns, so the map is emptied and reused.
	h := w.header
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	*w = response{
		c:             w.c,
		req:           req,
		header:        h,
		contentLength: -1,
		isHEAD:        req.Method == http.MethodHead,
		is11:          req.ProtoAtLeast(1, 1),
		buf:           w.buf[:0],
		trailers:      w.trailers[:0],
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, bufferBeforeCommit)
	}
}

// Header returns the response header map.
func (w *response) Header() http.Header {
	if w.wroteHeader && !w.committed && w.snap == nil {
		w.snap = w.header.Clone()
	}
	return w.header
}

// WriteHeader sends 1xx heads at once and records the final status.
func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 101 || code > 199 {
		w.disableWriteContinue()
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		if !w.is11 {
			return // HTTP/1.0 clients get no interim responses
		}
		bw := w.c.bufw
		w.writeStatusLine(code)
		for k, vv := range w.header {
			if k != "Content-Length" && k != "Transfer-Encoding" {
				writeField(bw, k, vv)
			}
		}
		_, _ = bw.WriteString("\r\n")
		w.noteErr(bw.Flush())
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if v, err := strconv.ParseInt(textproto.TrimString(cl[0]), 10, 64); err == nil && v >= 0 {
			w.contentLength = v
		} else {
			w.c.srv.logf("h1: invalid Content-Length %q", cl[0])
			delete(w.header, "Content-Length")
		}
	}
	// A head that needs no body bytes to complete is written now, which
	// also spares the snapshot of the header map.
	if w.contentLength >= 0 && len(w.header["Content-Type"]) > 0 || !bodyAllowed(code) {
		w.early = true
		w.commit(false, nil)
	}
}

// Write buffers small bodies to learn their length, then streams.
func (w *response) Write(p []byte) (int, error) {
	if err := w.beforeWrite(len(p)); err != nil {
		return 0, err
	}
	if !w.committed {
		if len(w.buf)+len(p) <= bufferBeforeCommit {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commitBuffered(false, p)
	}
	return w.writeBody(p, "")
}

// WriteString is Write for strings, without a copy.
func (w *response) WriteString(s string) (int, error) {
	if err := w.beforeWrite(len(s)); err != nil {
		return 0, err
	}
	if !w.committed {
		if len(w.buf)+len(s) <= bufferBeforeCommit {
			w.buf = append(w.buf, s...)
			return len(s), nil
		}
		var peek []byte
		if len(w.buf) == 0 {
			peek = []byte(s[:min(len(s), 512)])
		}
		w.commitBuffered(false, peek)
	}
	return w.writeBody(nil, s)
}

func (w *response) beforeWrite(n int) error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if n == 0 {
		return nil
	}
	if !bodyAllowed(w.status) {
		return http.ErrBodyNotAllowed
	}
	w.written += int64(n)
	if w.contentLength != -1 && w.written > w.contentLength {
		return http.ErrContentLength
	}
	return nil
}

// writeBody writes p (or s) after the head, as a chunk when chunked.
func (w *response) writeBody(p []byte, s string) (int, error) {
	n := len(p) + len(s)
	if w.discard || n == 0 {
		return n, nil
	}
	if w.err != nil {
		return 0, w.err
	}
	bw := w.c.bufw
	if w.chunked {
		_, _ = bw.Write(strconv.AppendInt(w.scratch[:0], int64(n), 16))
		_, _ = bw.WriteString("\r\n")
	}
	var err error
	if p != nil {
		_, err = bw.Write(p)
	} else {
		_, err = bw.WriteString(s)
	}
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.noteErr(err)
		return 0, err
	}
	return n, nil
}

func (w *response) noteErr(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// commitBuffered writes the head and the body held so far.
// p is the data about to be written, for sniffing when nothing is held.
func (w *response) commitBuffered(final bool, p []byte) {
	if len(w.buf) > 0 {
		p = w.buf
	}
	w.commit(final, p)
	_, _ = w.writeBody(w.buf, "")
	w.buf = w.buf[:0]
}

// FlushError sends the head and everything written so far.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commitBuffered(false, nil)
	}
	if w.err != nil {
		return w.err
	}
	err := w.c.bufw.Flush()
	w.noteErr(err)
	return err
}

// Flush is FlushError for http.Flusher.
func (w *response) Flush() { _ = w.FlushError() }

// Hijack hands the connection to the handler, with the bytes already
// read past the request head in the returned reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.handlerDone {
		return nil, nil, errHijackAfterReturn
	}
	if w.wroteHeader && !w.committed {
		w.commitBuffered(false, nil)
	}
	if err := c.bufw.Flush(); err != nil {
		return nil, nil, err
	}
	c.timer.Stop()
	c.stopBackgroundRead()
	c.mu.Lock()
	c.hijacked = true
	c.mu.Unlock()
	_ = c.rwc.SetDeadline(time.Time{})
	c.srv.trackConn(c, false)
	if c.cr.hasByte {
		_, _ = c.bufr.Peek(c.bufr.Buffered() + 1)
	}
	return c.rwc, bufio.NewReadWriter(c.bufr, bufio.NewWriter(c.rwc)), nil
}

// SetReadDeadline sets the connection's read deadline (for
// http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error {
	c := w.c
	c.mu.Lock()
	c.clearDeadline = false
	c.mu.Unlock()
	return c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline (for
// http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex lets the handler read the request body after the
// response has started: the body is then not drained when the head is
// written.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

func (w *response) writeContinue() {
	if !w.canWriteContinue.Load() {
		return
	}
	w.continueMu.Lock()
	if w.canWriteContinue.Load() {
		bw := w.c.bufw
		_, _ = bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		_ = bw.Flush()
		w.canWriteContinue.Store(false)
	}
	w.continueMu.Unlock()
}

func (w *response) disableWriteContinue() {
	if w.canWriteContinue.Load() {
		w.continueMu.Lock()
		w.canWriteContinue.Store(false)
		w.continueMu.Unlock()
	}
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commitBuffered(true, nil)
	} else if b := w.reqBody; b != nil && !w.closeAfter {
		if w.expect && !b.eof.Load() || !b.drain() {
			w.closeAfter = true
		}
	}
	bw := w.c.bufw
	switch {
	case w.chunked:
		_, _ = bw.WriteString("0\r\n")
		w.writeTrailers()
		_, _ = bw.WriteString("\r\n")
	case w.contentLength != -1 && !w.discard && w.written != w.contentLength:
		// The client would wait for the missing bytes.
		w.closeAfter = true
	}
	if w.err != nil {
		w.closeAfter = true
	}
}

func (w *response) writeTrailers() {
	bw := w.c.bufw
	for _, k := range w.trailers {
		if vv := w.header[k]; len(vv) > 0 {
			writeField(bw, k, vv)
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && name != "" {
			writeField(bw, name, vv)
		}
	}
}

func (w *response) writeStatusLine(code int) {
	bw := w.c.bufw
	if w.is11 {
		_, _ = bw.WriteString("HTTP/1.1 ")
	} else {
		_, _ = bw.WriteString("HTTP/1.0 ")
	}
	_, _ = bw.Write(strconv.AppendInt(w.scratch[:0], int64(code), 10))
	_ = bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		_, _ = bw.WriteString(text)
	} else {
		_, _ = bw.WriteString("status code ")
		_, _ = bw.Write(strconv.AppendInt(w.scratch[:0], int64(code), 10))
	}
	_, _ = bw.WriteString("\r\n")
}

// bodyAllowed reports whether a response with this status may have a body.
func bodyAllowed(code int) bool {
	return (code < 100 || code > 199) && code != http.StatusNoContent && code != http.StatusNotModified
}

// lineBreaks turns line breaks in header values into spaces.
var lineBreaks = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

// writeField writes one header field per value, with line breaks in
// values turned into spaces; fields with invalid names are dropped.
func writeField(bw *bufio.Writer, k string, vv []string) {
	if !httpsyntax.IsToken(k) {
		return
	}
	for _, v := range vv {
		if strings.ContainsAny(v, "\r\n") {
			v = lineBreaks.Replace(v)
		}
		if v != "" && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = textproto.TrimString(v)
		}
		_, _ = bw.WriteString(k)
		_, _ = bw.WriteString(": ")
		_, _ = bw.WriteString(v)
		_, _ = bw.WriteString("\r\n")
	}
}
