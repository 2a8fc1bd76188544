package router

import (
	"errors"
	"strings"
)

var (
	errEmptyHost    = errors.New("must not be empty")
	errHostPort     = errors.New("must not include a port")
	errHostWildcard = errors.New(`a wildcard must be "*." followed by a name, as in "*.example.com"`)
	errHostChar     = errors.New("must be a host name or an IP address")
)

// canonicalHost returns the host of a Host header value in the form the
// host maps are keyed by: port removed, IPv6 brackets removed, one trailing
// dot removed, ASCII letters lower-cased. It allocates only when h has
// upper-case letters.
func canonicalHost(h string) string {
	if h == "" {
		return h
	}
	if h[0] == '[' {
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		// One colon is a port; more are an unbracketed IPv6 literal.
		h = h[:i]
	}
	if len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return lowerASCII(h, i)
		}
	}
	return h
}

// lowerASCII returns h with ASCII letters lower-cased; h[:i] has none in
// upper case.
func lowerASCII(h string, i int) string {
	b := []byte(h)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// parseRuleHost validates a configured host and returns its canonical form
// and whether it is a one-label wildcard; for a wildcard the returned name
// is the part after "*.".
func parseRuleHost(h string) (name string, wildcard bool, err error) {
	if h == "" {
		return "", false, errEmptyHost
	}
	if h[0] != '[' {
		if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
			return "", false, errHostPort
		}
	} else if !strings.HasSuffix(h, "]") {
		return "", false, errHostPort
	}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		h, wildcard = rest, true
	}
	name = canonicalHost(h)
	if name == "" || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		if wildcard {
			return "", false, errHostWildcard
		}
		return "", false, errHostChar
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '*':
			return "", false, errHostWildcard
		case c <= ' ' || c >= 0x7f || strings.IndexByte(`/\?#@"<>{}|^`+"`", c) >= 0:
			return "", false, errHostChar
		}
	}
	return name, wildcard, nil
}

// hostTables returns the tables to search for host, most specific first:
// the exact host, then the one-label wildcard, then the any-host table.
// Absent tables are nil.
func (t *Table[T]) hostTables(host string) (exact, wild *hostTable[T]) {
	if host == "" {
		return nil, nil
	}
	if len(t.exactHosts) > 0 {
		exact = t.exactHosts[host]
	}
	if len(t.wildHosts) > 0 {
		if dot := strings.IndexByte(host, '.'); dot > 0 {
			wild = t.wildHosts[host[dot+1:]]
		}
	}
	return exact, wild
}
