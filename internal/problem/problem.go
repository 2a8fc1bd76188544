// Package problem writes the responses the gateway makes itself as RFC 9457
// problem details (application/problem+json). It is the only code that
// writes gateway-made error bodies, so every one of them has the same shape:
//
//	{"type":"about:blank","title":"Not Found","status":404,
//	 "detail":"no route matches GET /nope","request_id":"..."}
//
// detail is written for the client and must never carry internal error
// text. Callers set WWW-Authenticate (401) or Retry-After (429, 503) on
// w.Header() before calling Write.
package problem

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/portico-gateway/portico/internal/pipeline"
)

// ContentType is the media type of problem details.
const ContentType = "application/problem+json"

// StatusClientClosedRequest is logged (never written) when the client went
// away before the response was ready, as NGINX does.
const StatusClientClosedRequest = 499

// Write answers r with a problem document. An empty title uses the standard
// status text. For HEAD requests only the headers are written.
func Write(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	if title == "" {
		title = http.StatusText(status)
	}
	reqID := ""
	if ex := pipeline.FromContext(r.Context()); ex != nil {
		reqID = ex.RequestID
	}
	b := Body(status, title, detail, reqID)

	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("Content-Range")
	h.Del("ETag")
	h.Del("Last-Modified")
	h["Content-Type"] = []string{ContentType}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong,
		http.StatusRequestHeaderFieldsTooLarge:
		// These describe one client's request, never the resource: no
		// cache may store them, whatever was set before (CPDoS).
		h["Cache-Control"] = []string{"no-store"}
		h.Del("Surrogate-Control")
		h.Del("Expires")
	default:
		if h.Get("Cache-Control") == "" {
			h["Cache-Control"] = []string{"no-store"}
		}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// Body returns the problem document for status (an empty title uses the
// standard status text), with its trailing newline. Write uses it; so does
// the HTTP/1.1 server for requests it refuses before any handler runs.
func Body(status int, title, detail, requestID string) []byte {
	if title == "" {
		title = http.StatusText(status)
	}
	b := make([]byte, 0, 128+len(title)+len(detail)+len(requestID))
	b = append(b, `{"type":"about:blank","title":`...)
	b = appendJSONString(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if detail != "" {
		b = append(b, `,"detail":`...)
		b = appendJSONString(b, detail)
	}
	if requestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendJSONString(b, requestID)
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping quotes, backslashes,
// control characters and the HTML-sensitive <, > and &. Invalid UTF-8 is
// replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
