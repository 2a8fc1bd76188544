package httpcache

import (
	"net/http"
	"time"
)

// NotModified evaluates a client's conditional GET or HEAD against a
// stored response's header (RFC 9110 §13.1.2, §13.1.3): If-None-Match
// with weak comparison, or, without it, If-Modified-Since against
// Last-Modified, or against Date when the response has no Last-Modified
// (RFC 9111 §4.3.2). It reports whether 304 Not Modified is the answer.
func NotModified(req, resp http.Header) bool {
	if inm := req["If-None-Match"]; len(inm) > 0 {
		etag := ""
		if vs := resp["Etag"]; len(vs) > 0 {
			etag = vs[0]
		}
		return etagListMatches(inm, etag)
	}
	ims, ok := parseDate(req, "If-Modified-Since")
	if !ok {
		return false
	}
	lm, ok := parseDate(resp, "Last-Modified")
	if !ok && len(resp["Last-Modified"]) == 0 {
		lm, ok = parseDate(resp, "Date")
	}
	return ok && !lm.After(ims)
}

// etagListMatches reports whether the If-None-Match lines list etag (weak
// comparison), or are "*" (any current representation).
func etagListMatches(lines []string, etag string) bool {
	want, ok := opaqueTag(etag)
	for _, s := range lines {
		for len(s) > 0 {
			i := 0
			for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
				i++
			}
			s = s[i:]
			if s == "" {
				break
			}
			if s[0] == '*' {
				return etag != ""
			}
			if len(s) > 2 && s[0] == 'W' && s[1] == '/' {
				s = s[2:]
			}
			if s[0] != '"' {
				s = skipToComma(s)
				continue
			}
			end := 1
			for end < len(s) && s[end] != '"' {
				end++
			}
			if end >= len(s) {
				return false
			}
			if ok && s[1:end] == want {
				return true
			}
			s = s[end+1:]
		}
	}
	return false
}

// opaqueTag strips the weakness indicator and quotes off an entity tag.
func opaqueTag(etag string) (string, bool) {
	if len(etag) > 2 && etag[0] == 'W' && etag[1] == '/' {
		etag = etag[2:]
	}
	if len(etag) < 2 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		return "", false
	}
	return etag[1 : len(etag)-1], true
}

// notUpdated are the stored fields a 304 does not replace (RFC 9111
// §3.2, §4.3.4): those that describe the stored body itself (its length,
// content coding, range and digest, and the entity tag that identifies
// it), and fields that are never stored. Every other field of the 304,
// Content-Type included, replaces the stored one.
var notUpdated = map[string]bool{
	"Content-Length": true, "Content-Encoding": true, "Content-Md5": true,
	"Content-Range": true, "Etag": true, "Transfer-Encoding": true, "Set-Cookie": true,
	"Trailer": true, "Cache-Status": true,
}

// Refreshed returns a copy of e freshened by a 304 Not Modified whose
// header is h, received for a request sent at reqTime at respTime (RFC
// 9111 §4.3.4): the 304's fields replace the stored ones of the same name.
// The body is shared with e (entries are never modified once stored).
func Refreshed(e *Entry, h http.Header, reqTime, respTime time.Time) *Entry {
	n := *e
	n.Header = e.Header.Clone()
	for k, vs := range h {
		if notUpdated[k] {
			continue
		}
		n.Header[k] = vs
	}
	if _, ok := h["Date"]; !ok {
		n.Header["Date"] = []string{respTime.UTC().Format(http.TimeFormat)}
	}
	if _, ok := h["Age"]; !ok {
		delete(n.Header, "Age")
	}
	n.RequestTime, n.ResponseTime = reqTime, respTime
	return &n
}

// Validators sets on h (an outgoing request's header) the conditions that
// revalidate a stored response: If-None-Match with its ETag and
// If-Modified-Since with its Last-Modified. It reports whether there was
// any.
func Validators(h, stored http.Header) bool {
	ok := false
	if vs := stored["Etag"]; len(vs) > 0 {
		h["If-None-Match"] = []string{vs[0]}
		ok = true
	}
	if vs := stored["Last-Modified"]; len(vs) > 0 {
		h["If-Modified-Since"] = []string{vs[0]}
		ok = true
	}
	return ok
}

// StripConditionals removes a client's If-None-Match and
// If-Modified-Since from h, so the upstream answers with a full response
// the cache can store (the client's condition is then evaluated against
// it).
func StripConditionals(h http.Header) {
	delete(h, "If-None-Match")
	delete(h, "If-Modified-Since")
}

// Bypasses reports whether a GET or HEAD with header h is passed to the
// upstream untouched: a range request, or one with preconditions a cache
// does not evaluate (If-Match, If-Unmodified-Since, If-Range).
func Bypasses(h http.Header) bool {
	return len(h["Range"]) > 0 || len(h["If-Match"]) > 0 || len(h["If-Unmodified-Since"]) > 0 || len(h["If-Range"]) > 0
}
