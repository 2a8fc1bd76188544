package h1

import (
	"net/http"
	"strings"
)

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
