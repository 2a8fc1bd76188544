package compression

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// zstdWindow is the zstd encoder's window: large enough for API payloads,
// small enough that a pooled encoder stays around 2 MiB.
const zstdWindow = 1 << 20

// brotliWindowBits sets the br window to 1 MiB (the library's default is
// 4 MiB), for the same reason.
const brotliWindowBits = 20

// encoder is a streaming compressor that can be reused.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// encPool pools the encoders of one coding at one level.
type encPool struct {
	e     encoding
	level int
	pool  sync.Pool
	// err is why the library refuses to make such an encoder (nil: it
	// does), found once when the pool is created.
	err error
}

var (
	poolsMu sync.Mutex
	pools   = make(map[[2]int]*encPool)
)

// poolFor returns the process-wide pool for coding e at level; pools are
// shared by every route and survive config reloads.
func poolFor(e encoding, level int) *encPool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	k := [2]int{int(e), level}
	p := pools[k]
	if p == nil {
		p = &encPool{e: e, level: level}
		// One encoder made now: a setting the library refuses fails the
		// config, not a request.
		enc, err := p.newEncoder(io.Discard)
		if err == nil {
			p.pool.Put(enc)
		}
		p.err = err
		pools[k] = p
	}
	return p
}

// newEncoder makes a new encoder writing to w.
func (p *encPool) newEncoder(w io.Writer) (encoder, error) {
	switch p.e {
	case encGzip:
		return gzip.NewWriterLevel(w, p.level)
	case encBrotli:
		return brotli.NewWriterOptions(w, brotli.WriterOptions{Quality: p.level, LGWin: brotliWindowBits}), nil
	case encZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevel(p.level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(zstdWindow))
	}
	return nil, fmt.Errorf("unknown encoding %d", p.e)
}

// get returns an encoder writing to w, reused when the pool has one.
func (p *encPool) get(w io.Writer) (encoder, error) {
	if v := p.pool.Get(); v != nil {
		enc := v.(encoder)
		enc.Reset(w)
		return enc, nil
	}
	return p.newEncoder(w)
}

// put returns a closed encoder to the pool, dropping its writer.
func (p *encPool) put(enc encoder) {
	enc.Reset(io.Discard)
	p.pool.Put(enc)
}

// Response writer states.
const (
	stUndecided uint8 = iota // nothing written yet
	stPass                   // untouched: everything goes straight through
	stBuffer                 // eligible, length unknown: buffering up to min_size
	stCompress               // encoding
)

// responseWriter wraps the client's ResponseWriter for one request.
type responseWriter struct {
	w      http.ResponseWriter
	c      *compressor
	accept []string // the request's Accept-Encoding, read when eligible
	enc    encoding // negotiated coding, encIdentity when none
	state  uint8
	status int
	buf    *[]byte // stBuffer: the body so far
	cw     encoder // stCompress: the encoder
}

var (
	writerPool sync.Pool // *responseWriter
	bufPool    sync.Pool // *[]byte
)

func getWriter(c *compressor, w http.ResponseWriter, accept []string) *responseWriter {
	rw, _ := writerPool.Get().(*responseWriter)
	if rw == nil {
		rw = new(responseWriter)
	}
	*rw = responseWriter{w: w, c: c, accept: accept, enc: encIdentity}
	return rw
}

func putWriter(rw *responseWriter) {
	*rw = responseWriter{}
	writerPool.Put(rw)
}

var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ http.Hijacker       = (*responseWriter)(nil)
)

// Header returns the response header of the underlying writer.
func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

// Unwrap returns the underlying writer, for http.ResponseController.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// Hijack hands over the connection of the underlying writer.
func (rw *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rw.w).Hijack()
}

// WriteHeader decides, from the status and the response header, whether
// the body is compressed.
func (rw *responseWriter) WriteHeader(code int) {
	switch {
	case rw.state == stPass:
		rw.w.WriteHeader(code) // as without the plugin (net/http reports extras)
		return
	case rw.state != stUndecided:
		return
	case code < 200:
		rw.w.WriteHeader(code)
		if code == http.StatusSwitchingProtocols {
			rw.state = stPass
		}
		return
	}
	h := rw.w.Header()
	if !rw.c.eligible(code, h) {
		rw.pass(code)
		return
	}
	// Negotiated only now: responses that are never compressed skip it.
	rw.enc = rw.c.negotiate(rw.accept)
	if rw.enc == encIdentity {
		// Another client may get this body encoded: caches must know.
		addVary(h)
		rw.pass(code)
		return
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			if n == 0 || n < int64(rw.c.minSize) {
				rw.pass(code)
			} else {
				rw.startCompress(code)
			}
			return
		}
	}
	if rw.c.minSize == 0 {
		rw.startCompress(code)
		return
	}
	rw.status = code
	rw.state = stBuffer
}

func (rw *responseWriter) pass(code int) {
	rw.state = stPass
	rw.w.WriteHeader(code)
}

// startCompress sends the head of an encoded response and takes an
// encoder. Without one (it cannot be made) the body goes out as it is.
func (rw *responseWriter) startCompress(code int) {
	pool := rw.c.pools[rw.enc]
	enc, err := pool.get(rw.w)
	if err != nil {
		rw.pass(code)
		return
	}
	h := rw.w.Header()
	h["Content-Encoding"] = encodingValues[rw.enc]
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	if et := h["Etag"]; len(et) == 1 && strings.HasPrefix(et[0], `"`) {
		h["Etag"] = []string{"W/" + et[0]}
	}
	addVary(h)
	rw.w.WriteHeader(code)
	rw.cw = enc
	rw.state = stCompress
}

// encodingValues are the Content-Encoding header values, shared and
// never modified.
var encodingValues = [numEncodings][]string{
	encGzip: {"gzip"}, encBrotli: {"br"}, encZstd: {"zstd"},
}

// Write writes body bytes, encoded or not as decided.
func (rw *responseWriter) Write(p []byte) (int, error) {
	if rw.state == stUndecided {
		rw.WriteHeader(http.StatusOK)
	}
	switch rw.state {
	case stCompress:
		return rw.cw.Write(p)
	case stBuffer:
		if b := rw.buffered(); len(b)+len(p) < rw.c.minSize {
			*rw.buf = append(b, p...)
			return len(p), nil
		}
		if err := rw.flushBuffer(); err != nil {
			return 0, err
		}
		if rw.state == stCompress {
			return rw.cw.Write(p)
		}
	}
	return rw.w.Write(p)
}

// buffered returns the bytes held in stBuffer, taking a buffer from the
// pool on first use.
func (rw *responseWriter) buffered() []byte {
	if rw.buf == nil {
		b, _ := bufPool.Get().(*[]byte)
		if b == nil {
			b = new([]byte)
		}
		*b = (*b)[:0]
		rw.buf = b
	}
	return *rw.buf
}

// flushBuffer ends stBuffer by compressing: it starts the encoder and
// feeds it what was held back.
func (rw *responseWriter) flushBuffer() error {
	rw.startCompress(rw.status)
	var err error
	if rw.buf != nil {
		if b := *rw.buf; len(b) > 0 {
			if rw.state == stCompress {
				_, err = rw.cw.Write(b)
			} else {
				_, err = rw.w.Write(b)
			}
		}
		rw.releaseBuf()
	}
	return err
}

func (rw *responseWriter) releaseBuf() {
	if rw.buf != nil {
		if cap(*rw.buf) <= MaxMinSize {
			bufPool.Put(rw.buf)
		}
		rw.buf = nil
	}
}

// Flush sends everything written so far to the client: the encoder's
// pending output, then the connection's buffer. A body of unknown length
// still under min_size is held back (the decision needs min_size bytes or
// the end); set min_size: 0 for streams whose first bytes must not wait.
func (rw *responseWriter) Flush() { _ = rw.FlushError() }

// FlushError is Flush reporting the error (used by http.ResponseController).
func (rw *responseWriter) FlushError() error {
	if rw.state == stUndecided {
		rw.WriteHeader(http.StatusOK)
	}
	switch rw.state {
	case stBuffer:
		return nil
	case stCompress:
		if err := rw.cw.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(rw.w).Flush()
}

// finish ends the response after the handler returned: a body still
// buffered goes out as it is, and an encoder is closed (so the stream
// ends with its trailer) and returned to its pool.
func (rw *responseWriter) finish() {
	switch rw.state {
	case stBuffer:
		rw.state = stPass
		rw.w.WriteHeader(rw.status)
		if b := rw.buffered(); len(b) > 0 {
			_, _ = rw.w.Write(b)
		}
		rw.releaseBuf()
	case stCompress:
		// An error here means the client is gone; nothing to report.
		if err := rw.cw.Close(); err == nil {
			rw.c.pools[rw.enc].put(rw.cw)
		}
		rw.cw = nil
	}
}

// eligible reports whether a response with this status and header may be
// compressed at all, whatever the client accepts.
func (c *compressor) eligible(code int, h http.Header) bool {
	switch code {
	case http.StatusNoContent, http.StatusNotModified, http.StatusPartialContent:
		return false
	}
	if len(h["Content-Range"]) > 0 || len(h["Content-Encoding"]) > 0 {
		return false
	}
	if hasToken(h["Cache-Control"], "no-transform") {
		return false
	}
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	mt := mediaType(ct[0])
	if mt == "text/event-stream" {
		return false
	}
	return c.types.match(mt)
}

// addVary adds Accept-Encoding to the Vary header unless it is there (or
// Vary is "*").
func addVary(h http.Header) {
	vary := h["Vary"]
	if hasToken(vary, "accept-encoding") || hasToken(vary, "*") {
		return
	}
	h["Vary"] = append(vary[:len(vary):len(vary)], "Accept-Encoding")
}

// hasToken reports whether the comma-separated field values hold tok
// (case-insensitively), ignoring any "=value" part.
func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			t, _, _ = strings.Cut(t, "=")
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}
