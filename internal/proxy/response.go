package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// This file is the response side of the HTTP/1.1 client: framing, the
// body copy with its flushing rule, chunked decoding and trailers.

// bodyMode is how a response body is delimited.
type bodyMode uint8

const (
	bodyNone    bodyMode = iota // HEAD, 1xx, 204, 304
	bodyLength                  // Content-Length
	bodyChunked                 // Transfer-Encoding: chunked
	bodyClose                   // until the upstream closes
)

// respFraming inspects the response head: it marks hop-by-hop fields,
// decides how the body is delimited and whether the connection can be
// reused, and whether the body is a stream to flush as it comes.
func (c *call) respFraming() (mode bodyMode, length int64, err error) {
	hd := &c.hd
	var conn, te string
	keepAlive, sse := false, false
	length = -1
	for i := range hd.fields {
		f := &hd.fields[i]
		switch k := hd.key(f); k {
		case "Connection":
			f.drop = true
			v := hd.value(f)
			if conn != "" {
				conn += ","
			}
			conn += v
		case "Transfer-Encoding":
			f.drop = true
			if te != "" {
				return 0, 0, errMalformed // only a single "chunked" is understood
			}
			te = hd.value(f)
		case "Content-Length":
			n, ok := parseLength(hd.value(f))
			if !ok || length >= 0 && n != length {
				return 0, 0, errMalformed
			}
			length = n
		case "Content-Type":
			v := hd.value(f)
			sse = len(v) >= 17 && strings.EqualFold(v[:17], "text/event-stream")
		default:
			if hopResponseHeader(k) {
				f.drop = true
			}
		}
	}
	if conn != "" {
		forEachToken([]string{conn}, func(tok string) {
			switch {
			case strings.EqualFold(tok, "close"):
				c.mustClose = true
			case strings.EqualFold(tok, "keep-alive"):
				keepAlive = true
			}
		})
		hd.dropNamed(conn)
	}
	if hd.minor == 0 && !keepAlive {
		c.mustClose = true
	}
	s := hd.status
	switch {
	case c.r.Method == http.MethodHead || s < 200 || s == http.StatusNoContent || s == http.StatusNotModified:
		mode = bodyNone
	case te != "":
		if !strings.EqualFold(textprotoTrim(te), "chunked") {
			return 0, 0, errMalformed
		}
		mode = bodyChunked
		if length >= 0 {
			// Both framings: chunked wins, and a connection that
			// carried an ambiguous message is not trusted again.
			c.mustClose = true
		}
		length = -1
	case length >= 0:
		mode = bodyLength
	default:
		mode = bodyClose
		c.mustClose = true
	}
	for i := range hd.fields {
		f := &hd.fields[i]
		switch hd.key(f) {
		case "Content-Length":
			// A chunked body has no length; a 204 carries none.
			f.drop = f.drop || mode == bodyChunked || s == http.StatusNoContent
		case "Trailer":
			// Announced trailers only come with a chunked body.
			f.drop = f.drop || mode != bodyChunked
		}
	}
	c.flush = mode == bodyChunked || mode == bodyClose || sse
	return mode, length, nil
}

// relay sends the response head and streams the body to the client.
func (c *call) relay() error {
	mode, length, err := c.respFraming()
	if err != nil {
		c.closeConn()
		return fmt.Errorf("read response from %s: %w", c.t.Addr, err)
	}
	c.hd.addTo(c.w.Header())
	c.w.WriteHeader(c.hd.status)
	c.wroteHeader = true
	switch mode {
	case bodyLength:
		err = c.copyN(length)
	case bodyChunked:
		err = c.copyChunked()
	case bodyClose:
		err = c.copyN(-1)
	}
	c.ex.UpstreamDuration = time.Since(c.sent)
	if err != nil {
		c.closeConn()
		return err
	}
	if c.upgrade != "" {
		c.mustClose = true // a dedicated connection
	}
	c.finishConn(!c.mustClose && c.br.Buffered() == 0)
	return nil
}

// write sends body bytes to the client.
func (c *call) write(p []byte) error {
	if _, err := c.w.Write(p); err != nil {
		return &clientWriteError{err: err}
	}
	c.pending = c.flush
	return nil
}

// beforeRead runs before a read that may block on the upstream: it
// flushes what the client has not seen yet (streams), and lifts the
// response-header deadline (the body may take as long as Total allows).
func (c *call) beforeRead() {
	if c.pending {
		c.pending = false
		if err := http.NewResponseController(c.w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			// The client is gone; the next write reports it.
			c.flush = false
		}
	}
	if c.readDeadlineSet {
		c.readDeadlineSet = false
		c.setDeadline(c.deadline, false)
	}
}

// copyN copies n bytes of body (n < 0: until the upstream closes) to the
// client. Bytes already in the reader's buffer are written from there;
// when it is empty and much is left, reads go straight into the copy
// buffer.
func (c *call) copyN(n int64) error {
	br := c.br
	for n != 0 {
		if br.Buffered() == 0 {
			c.beforeRead()
			if n < 0 || n >= ioBufSize {
				p := c.buffer()
				if n > 0 && n < int64(len(p)) {
					p = p[:n]
				}
				m, err := br.Read(p)
				if m > 0 {
					if werr := c.write(p[:m]); werr != nil {
						return werr
					}
					if n > 0 {
						n -= int64(m)
					}
				}
				if err != nil {
					if err == io.EOF && n < 0 {
						return nil
					}
					return c.bodyReadError(err)
				}
				continue
			}
			if _, err := br.Peek(1); err != nil {
				return c.bodyReadError(err)
			}
		}
		m := br.Buffered()
		if n >= 0 && int64(m) > n {
			m = int(n)
		}
		p, _ := br.Peek(m)
		if err := c.write(p); err != nil {
			return err
		}
		_, _ = br.Discard(m)
		if n > 0 {
			n -= int64(m)
		}
	}
	return nil
}

func (c *call) bodyReadError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read response body from %s: %w", c.t.Addr, err)
}

// chunkLine reads one line of chunked framing, flushing first when the
// line is not complete in the buffer.
func (c *call) chunkLine() ([]byte, error) {
	if c.pending || c.readDeadlineSet {
		if b, _ := c.br.Peek(c.br.Buffered()); bytes.IndexByte(b, '\n') < 0 {
			c.beforeRead()
		}
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			err = errMalformed
		}
		return nil, c.bodyReadError(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// copyChunked decodes a chunked body to the client, then passes its
// trailers on.
func (c *call) copyChunked() error {
	for {
		line, err := c.chunkLine()
		if err != nil {
			return err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return c.bodyReadError(errMalformed)
		}
		if size == 0 {
			return c.copyTrailers()
		}
		if err := c.copyN(size); err != nil {
			return err
		}
		if line, err = c.chunkLine(); err != nil {
			return err
		}
		if len(line) != 0 {
			return c.bodyReadError(errMalformed)
		}
	}
}

// copyTrailers reads the trailer section and hands its fields to the
// server as trailers (http.TrailerPrefix), so they reach the client after
// the body whether or not the upstream announced them.
func (c *call) copyTrailers() error {
	if b, _ := c.br.Peek(c.br.Buffered()); bytes.IndexByte(b, '\n') < 0 {
		c.beforeRead()
	}
	hd := &c.hd
	hd.reset()
	if err := hd.readFields(c.br); err != nil {
		return c.bodyReadError(err)
	}
	h := c.w.Header()
	for i := range hd.fields {
		f := &hd.fields[i]
		k := hd.key(f)
		if hopResponseHeader(k) || k == "Content-Length" || k == "Trailer" {
			continue
		}
		h[http.TrailerPrefix+k] = append(h[http.TrailerPrefix+k], hd.value(f))
	}
	return nil
}

// parseLength parses a Content-Length value: decimal digits only.
func parseLength(s string) (int64, bool) {
	s = textprotoTrim(s)
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line, ignoring chunk extensions.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func textprotoTrim(s string) string { return strings.Trim(s, " \t") }
