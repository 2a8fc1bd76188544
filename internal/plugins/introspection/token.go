package introspection

import (
	"net/http"
	"strings"
)

// source says where the token was found.
type source int

const (
	srcNone source = iota
	srcHeader
	srcCookie
	srcQuery
)

// token returns the request's token and where it came from: a Bearer
// Authorization header first, then the cookie, then the query parameter.
// An Authorization header of another scheme (Basic, for basic_auth) is
// not this plugin's credential.
func (h *handler) token(r *http.Request) (string, source) {
	if v := r.Header["Authorization"]; len(v) > 0 {
		if len(v[0]) > 7 && strings.EqualFold(v[0][:7], "bearer ") {
			return strings.TrimLeft(v[0][7:], " "), srcHeader
		}
	}
	if h.cookie != "" {
		if c, err := r.Cookie(h.cookie); err == nil && c.Value != "" {
			return c.Value, srcCookie
		}
	}
	if h.query != "" && r.URL.RawQuery != "" {
		if v := r.URL.Query().Get(h.query); v != "" {
			return v, srcQuery
		}
	}
	return "", srcNone
}

// tokens counts the tokens r carries where this plugin looks: Bearer
// Authorization headers, cookies of the configured name, and query
// parameters of the configured name.
func (h *handler) tokens(r *http.Request) int {
	n := 0
	for _, v := range r.Header["Authorization"] {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			n++
		}
	}
	if h.cookie != "" {
		for _, c := range r.CookiesNamed(h.cookie) {
			if c.Value != "" {
				n++
			}
		}
	}
	if h.query != "" && r.URL.RawQuery != "" {
		n += len(r.URL.Query()[h.query])
	}
	return n
}

// validToken reports whether t is an RFC 6750 b64token of at most
// maxTokenBytes: [A-Za-z0-9-._~+/]+ followed by any '='.
func validToken(t string) bool {
	if t == "" || len(t) > maxTokenBytes {
		return false
	}
	i := 0
	for ; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/':
		default:
			goto pad
		}
	}
pad:
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// hideToken removes the token from the request before it goes upstream.
func (h *handler) hideToken(r *http.Request, src source) {
	switch src {
	case srcHeader:
		delete(r.Header, "Authorization")
	case srcCookie:
		var kept []string
		for _, line := range r.Header["Cookie"] {
			for _, part := range strings.Split(line, ";") {
				name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
				if name != h.cookie && strings.TrimSpace(part) != "" {
					kept = append(kept, strings.TrimSpace(part))
				}
			}
		}
		if len(kept) == 0 {
			delete(r.Header, "Cookie")
		} else {
			r.Header["Cookie"] = []string{strings.Join(kept, "; ")}
		}
	case srcQuery:
		q := r.URL.Query()
		q.Del(h.query)
		r.URL.RawQuery = q.Encode()
	}
}
