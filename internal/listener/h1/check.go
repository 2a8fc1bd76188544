package h1

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// checkRequest applies the checks net/http's server adds after parsing:
// HTTP/1.x only, exactly one valid Host for HTTP/1.1, and header names and
// values free of forbidden bytes. It returns the status and reason to
// refuse the request with, or 0.
func checkRequest(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	// http.ReadRequest has removed the Host header and refused several;
	// req.Host is the authority from the request target or that header.
	if req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect {
		return http.StatusBadRequest, "missing required Host header"
	}
	if !validHost(req.Host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpsyntax.IsToken(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpsyntax.IsFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	return 0, ""
}

// checkHostField applies net/http's checks of the Host header field to a
// request whose target is not in origin-form, from the recorded bytes of
// its head: an HTTP/1.1 request needs one (RFC 9112 section 3.2, CONNECT
// aside, as net/http), and its value must be valid even though the
// target's authority replaces it. ReadRequest has already refused two.
func checkHostField(req *http.Request, head []byte) (int, string) {
	n, v := hostFields(head)
	if n == 0 && req.ProtoAtLeast(1, 1) && req.Method != http.MethodConnect {
		return http.StatusBadRequest, "missing required Host header"
	}
	if n == 1 && !validHost(v) {
		return http.StatusBadRequest, "malformed Host header"
	}
	return 0, ""
}

// hostFields returns how many Host field lines the request head at the
// start of b has, and the value of the last one, with folded lines joined
// as textproto joins them.
func hostFields(b []byte) (n int, v string) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return 0, ""
	}
	b = b[i+1:] // past the request line
	inHost := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
			return n, v
		case line[0] == ' ' || line[0] == '\t':
			if inHost {
				v += " " + strings.Trim(string(line), " \t")
			}
			continue
		}
		inHost = len(line) > 4 && line[4] == ':' && strings.EqualFold(string(line[:4]), "Host")
		if inHost {
			n++
			v = strings.Trim(string(line[5:]), " \t")
		}
	}
	return n, v
}

// hostByte marks the bytes accepted in a Host header: those of a
// uri-host and port, leniently (as net/http accepts).
var hostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!$%&()*+,-.:;=[]_~'" {
		t[c] = true
	}
	return t
}()

func validHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if !hostByte[s[i]] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token,
// compared case-insensitively.
func hasToken(v, token string) bool {
	for v != "" {
		var part string
		if i := strings.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, ""
		}
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// headerHasToken reports whether any value of h[key] lists token.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h[key] {
		if hasToken(v, token) {
			return true
		}
	}
	return false
}
