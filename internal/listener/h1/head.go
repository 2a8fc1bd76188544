package h1

import (
	"net/http"
	"strconv"
	"strings"
)

// commit decides the framing and writes the response head into the
// connection's buffer. final says the handler has returned, so the body
// held in w.buf is all of it. peek is the start of the body, for
// sniffing the Content-Type.
func (w *response) commit(final bool, peek []byte) {
	w.committed = true
	w.disableWriteContinue()
	c := w.c
	h := w.snap
	if h == nil {
		h = w.header
	}
	code := w.status
	bodyOK := bodyAllowed(code)

	trailers := false
	for _, v := range h["Trailer"] {
		trailers = true
		w.declareTrailers(v)
	}
	if !trailers {
		for k := range h {
			if strings.HasPrefix(k, http.TrailerPrefix) {
				trailers = true
				break
			}
		}
	}
	te := first(h, "Transfer-Encoding")
	hasTE := te != ""

	var setCL, setConn, setType string
	if final && !trailers && !hasTE && bodyOK && w.contentLength == -1 && (!w.isHEAD || len(w.buf) > 0) {
		w.contentLength = int64(len(w.buf))
		setCL = strconv.Itoa(len(w.buf))
	}
	hasCL := w.contentLength != -1
	dropCL := false
	if hasCL && hasTE && te != "identity" {
		c.srv.logf("h1: WriteHeader called with both Transfer-Encoding of %q and a Content-Length of %d", te, w.contentLength)
		dropCL, hasCL, setCL = true, false, ""
		w.contentLength = -1
	}

	closeAfter := w.closeAfter
	wants10KeepAlive := !w.is11 && headerHasToken(w.req.Header, "Connection", "keep-alive")
	if wants10KeepAlive && (w.isHEAD || hasCL || !bodyOK) {
		if _, ok := h["Connection"]; !ok {
			setConn = "keep-alive"
		}
	} else if !w.is11 || w.req.Close {
		closeAfter = true
	}
	if first(h, "Connection") == "close" || c.srv.inShutdown.Load() {
		closeAfter = true
	}
	if b := w.reqBody; b != nil && !closeAfter {
		switch {
		case w.expect && !b.eof.Load():
			// 100 Continue was not sent: the client may or may not send
			// the body; do not read the next request from this stream.
			closeAfter = true
		case final || !w.fullDuplex && w.drainOnCommit():
			if !b.drain() {
				closeAfter = true
				setConn = "close"
			}
		}
	}

	dropType := false
	if bodyOK {
		_, haveType := h["Content-Type"]
		if !haveType && !hasTE && len(peek) > 0 && first(h, "Content-Encoding") == "" {
			setType = http.DetectContentType(peek)
		}
	} else {
		dropCL, hasCL, setCL = true, false, ""
		dropType = code == http.StatusNotModified
	}

	switch {
	case w.isHEAD || !bodyOK:
		w.discard = true
	case hasCL:
	case w.is11:
		if hasTE && te == "identity" {
			closeAfter = true
		} else {
			w.chunked = true
			dropCL = true
		}
	default:
		closeAfter = true
	}

	dropConn := false
	if closeAfter && (c.srv.inShutdown.Load() || !headerHasToken(h, "Connection", "close")) && code != http.StatusSwitchingProtocols {
		dropConn = true
		setConn = ""
		if w.is11 {
			setConn = "close"
		}
	}
	w.closeAfter = closeAfter

	bw := c.bufw
	w.writeStatusLine(code)
	for k, vv := range h {
		switch k {
		case "Transfer-Encoding":
			continue
		case "Content-Length":
			if dropCL {
				continue
			}
		case "Content-Type":
			if dropType {
				continue
			}
		case "Connection":
			if dropConn || setConn != "" {
				continue
			}
		default:
			if strings.HasPrefix(k, http.TrailerPrefix) {
				continue
			}
		}
		writeField(bw, k, vv)
	}
	if setCL != "" {
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.WriteString(setCL)
		_, _ = bw.WriteString("\r\n")
	}
	if setType != "" {
		_, _ = bw.WriteString("Content-Type: ")
		_, _ = bw.WriteString(setType)
		_, _ = bw.WriteString("\r\n")
	}
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if setConn != "" {
		_, _ = bw.WriteString("Connection: ")
		_, _ = bw.WriteString(setConn)
		_, _ = bw.WriteString("\r\n")
	}
	if _, ok := h["Date"]; !ok {
		_, _ = bw.WriteString("Date: ")
		_, _ = bw.Write(c.srv.dateValue())
		_, _ = bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	w.noteErr(err)
}

// drainOnCommit reports whether the head is being written because the
// body outgrew the buffer or was flushed (not early from WriteHeader): as
// net/http, the unread request body is then discarded, so that clients
// that send the whole request before reading do not deadlock.
func (w *response) drainOnCommit() bool { return !w.early }

// declareTrailers records the trailer names listed in a Trailer header.
func (w *response) declareTrailers(v string) {
	for v != "" {
		var k string
		if i := strings.IndexByte(v, ','); i >= 0 {
			k, v = v[:i], v[i+1:]
		} else {
			k, v = v, ""
		}
		k = http.CanonicalHeaderKey(strings.TrimSpace(k))
		switch k {
		case "", "Transfer-Encoding", "Trailer", "Content-Length", "Host", "Connection":
			continue
		}
		w.trailers = append(w.trailers, k)
	}
}

// first returns the first value of h[key], or "".
func first(h http.Header, key string) string {
	if vv := h[key]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}
