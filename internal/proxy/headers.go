package proxy

import (
	"bufio"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// Header hygiene toward the upstream follows httputil.ReverseProxy with
// Rewrite: hop-by-hop headers are dropped, the client's forwarding headers
// are replaced unless the peer is a trusted proxy, and "TE: trailers"
// survives. The headers the client's Connection header names were removed
// by the edge before any plugin ran (internal/edge), so a header a plugin
// sets (X-Consumer-ID) reaches the upstream whatever the client listed.

// checkKey reports whether k is a valid header name and whether it is
// already in canonical form ("Content-Type").
func checkKey(k string) (valid, canonical bool) {
	if k == "" {
		return false, false
	}
	canonical = true
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !httpsyntax.IsTokenByte(c) {
			return false, false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	return true, canonical
}

// validTarget reports whether s may appear in a request line: printable
// ASCII without spaces.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// dropRequestHeader reports whether the client header k (canonical) is not
// copied upstream as it is: hop-by-hop headers, the framing headers the
// proxy writes itself, and the forwarding headers it sets. A trusted peer
// keeps its X-Forwarded-Proto and X-Forwarded-Host.
func dropRequestHeader(k string, trusted bool) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Host", "Content-Length", "X-Forwarded-For", "X-Real-Ip", "Forwarded":
		return true
	case "X-Forwarded-Proto", "X-Forwarded-Host":
		return !trusted
	}
	return false
}

// hopResponseHeader reports whether the upstream response header k
// (canonical) is hop-by-hop. Trailer is handled by the caller.
func hopResponseHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// forEachToken calls fn with each comma-separated, trimmed, non-empty
// token of the values.
func forEachToken(values []string, fn func(tok string)) {
	for _, v := range values {
		for v != "" {
			tok := v
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				v = ""
			}
			if tok = textproto.TrimString(tok); tok != "" {
				fn(tok)
			}
		}
	}
}

// hasToken reports whether the comma-separated values contain token,
// ignoring case.
func hasToken(values []string, token string) bool {
	found := false
	forEachToken(values, func(tok string) {
		if strings.EqualFold(tok, token) {
			found = true
		}
	})
	return found
}

// peerIP returns the IP part of a RemoteAddr ("10.0.0.1:5555",
// "[::1]:5555") without allocating.
func peerIP(remoteAddr string) string {
	host := remoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// headWriter writes an HTTP/1.1 request head to a buffered writer.
type headWriter struct {
	bw *bufio.Writer

	target   string     // escaped path
	query    string     // raw query, without "?"
	host     string     // Host header
	upgrade  string     // protocol to ask for, "" for none
	trusted  bool       // the peer's forwarding headers are believed
	clientIP netip.Addr // for X-Real-IP
	bodyLen  int64      // 0 no body, > 0 Content-Length, < 0 chunked

	// dropped counts header fields left out because their name or value
	// could not be written safely (set by a plugin, never by a client: the
	// server rejects such requests).
	dropped int
}

func (hw *headWriter) field(k, v string) {
	bw := hw.bw
	_, _ = bw.WriteString(k)
	_, _ = bw.WriteString(": ")
	_, _ = bw.WriteString(v)
	_, _ = bw.WriteString("\r\n")
}

// write writes the request line and the header block of r.
func (hw *headWriter) write(r *http.Request) {
	bw, trusted := hw.bw, hw.trusted
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(hw.target)
	if hw.query != "" {
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(hw.query)
	}
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(hw.host)
	_, _ = bw.WriteString("\r\n")

	for k, vv := range r.Header {
		valid, canonical := checkKey(k)
		if !valid {
			hw.dropped += len(vv)
			continue
		}
		ck := k
		if !canonical {
			ck = textproto.CanonicalMIMEHeaderKey(k)
		}
		if dropRequestHeader(ck, trusted) {
			continue
		}
		for _, v := range vv {
			if !httpsyntax.IsFieldValue(v) {
				hw.dropped++
				continue
			}
			hw.field(k, v)
		}
	}
	if te := r.Header["Te"]; len(te) > 0 && hasToken(te, "trailers") {
		_, _ = bw.WriteString("Te: trailers\r\n")
	}

	// Forwarding headers.
	peer := peerIP(r.RemoteAddr)
	_, _ = bw.WriteString("X-Forwarded-For: ")
	if trusted {
		for _, v := range r.Header["X-Forwarded-For"] {
			if v = textproto.TrimString(v); v != "" && httpsyntax.IsFieldValue(v) {
				_, _ = bw.WriteString(v)
				_, _ = bw.WriteString(", ")
			}
		}
	}
	_, _ = bw.WriteString(peer)
	_, _ = bw.WriteString("\r\n")
	if !trusted || len(r.Header["X-Forwarded-Proto"]) == 0 {
		if r.TLS != nil {
			_, _ = bw.WriteString("X-Forwarded-Proto: https\r\n")
		} else {
			_, _ = bw.WriteString("X-Forwarded-Proto: http\r\n")
		}
	}
	if (!trusted || len(r.Header["X-Forwarded-Host"]) == 0) && r.Host != "" && httpsyntax.IsFieldValue(r.Host) {
		hw.field("X-Forwarded-Host", r.Host)
	}
	_, _ = bw.WriteString("X-Real-IP: ")
	if hw.clientIP.IsValid() {
		_, _ = bw.Write(hw.clientIP.AppendTo(bw.AvailableBuffer()))
	} else {
		_, _ = bw.WriteString(peer)
	}
	_, _ = bw.WriteString("\r\n")

	if hw.upgrade != "" {
		_, _ = bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		_, _ = bw.WriteString(hw.upgrade)
		_, _ = bw.WriteString("\r\n")
	}
	switch {
	case hw.bodyLen > 0:
		_, _ = bw.WriteString("Content-Length: ")
		_, _ = bw.Write(strconv.AppendInt(bw.AvailableBuffer(), hw.bodyLen, 10))
		_, _ = bw.WriteString("\r\n")
	case hw.bodyLen < 0:
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		// As net/http: some servers answer 411 to a body-less POST
		// without a length.
		_, _ = bw.WriteString("Content-Length: 0\r\n")
	}
	_, _ = bw.WriteString("\r\n")
}
