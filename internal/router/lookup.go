package router

import (
	"net/http"
	"strings"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// Lookup finds the rule for r. path is the request path as returned by
// NormalizePath; a path that does not start with "/" matches nothing. The
// host is taken from r.Host. Lookup allocates only to lower-case a Host
// with upper-case letters, for regex captures, and for the Allow of a
// MethodNotAllowed.
func (t *Table[T]) Lookup(r *http.Request, path string) (Match[T], Result) {
	var m Match[T]
	if path == "" || path[0] != '/' {
		return m, NotFound
	}
	var mm uint64 // methods of rules that failed only on the method
	if len(t.exactHosts) > 0 || len(t.wildHosts) > 0 {
		exact, wild := t.hostTables(canonicalHost(r.Host))
		if exact != nil && exact.lookup(r, path, &m, &mm) {
			return m, Matched
		}
		if wild != nil && wild.lookup(r, path, &m, &mm) {
			return m, Matched
		}
	}
	if t.anyHost != nil && t.anyHost.lookup(r, path, &m, &mm) {
		return m, Matched
	}
	if mm != 0 {
		m.Allow = t.allow(mm)
		return m, MethodNotAllowed
	}
	return m, NotFound
}

// lookup tries exact paths, then prefixes from the longest, then regexps in
// rule order. It fills m and returns true on a full match, and adds to mm
// the methods of rules that failed only on their method.
func (ht *hostTable[T]) lookup(r *http.Request, path string, m *Match[T], mm *uint64) bool {
	if len(ht.exact) > 0 {
		if rl := pick(ht.exact[path], r, mm); rl != nil {
			m.Value, m.Kind = rl.value, Exact
			return true
		}
	}
	if ht.root != nil && ht.root.lookup(r, path, m, mm) {
		return true
	}
	for _, e := range ht.regexp {
		if e.named == 0 {
			if !e.re.MatchString(path) {
				continue
			}
			if rl := pick(e.rules, r, mm); rl != nil {
				m.Value, m.Kind = rl.value, Regex
				return true
			}
			continue
		}
		loc := e.re.FindStringSubmatchIndex(path)
		if loc == nil {
			continue
		}
		if rl := pick(e.rules, r, mm); rl != nil {
			m.Value, m.Kind, m.Captures = rl.value, Regex, e.captures(path, loc)
			return true
		}
	}
	return false
}

// captures returns the named groups of a match at loc.
func (e *regexEntry[T]) captures(path string, loc []int) []Capture {
	caps := make([]Capture, 0, e.named)
	for i, name := range e.names {
		if name == "" {
			continue
		}
		var v string
		if loc[2*i] >= 0 {
			v = path[loc[2*i]:loc[2*i+1]]
		}
		caps = append(caps, Capture{Name: name, Value: v})
	}
	return caps
}

// pick returns the first of the sorted candidates whose conditions hold
// for r, or nil. Candidates that fail only on the method add their methods
// to mm.
func pick[T any](rules []*rule[T], r *http.Request, mm *uint64) *rule[T] {
	for _, rl := range rules {
		if !rl.conditionsHold(r) {
			continue
		}
		if rl.methods == nil {
			if !isExplicitMethod(r.Method) {
				return rl
			}
		} else if containsString(rl.methods, r.Method) {
			return rl
		}
		*mm |= rl.mask
	}
	return nil
}

// conditionsHold reports whether r meets rl's header and query conditions.
func (rl *rule[T]) conditionsHold(r *http.Request) bool {
	for _, h := range rl.headers {
		if !containsString(r.Header[h.name], h.value) {
			return false
		}
	}
	if len(rl.query) > 0 {
		var raw string
		if r.URL != nil {
			raw = r.URL.RawQuery
		}
		for _, q := range rl.query {
			if !queryHas(raw, q.name, q.value) {
				return false
			}
		}
	}
	return true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// queryHas reports whether the raw query has the parameter name with the
// value val. It decodes as it compares and does not allocate; a pair with
// an invalid escape matches nothing.
func queryHas(raw, name, val string) bool {
	for raw != "" {
		var p string
		p, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(p, "=")
		if unescapedEqual(k, name) && unescapedEqual(v, val) {
			return true
		}
	}
	return false
}

// unescapedEqual reports whether the query component esc, once "+" and
// "%XX" are decoded, equals want.
func unescapedEqual(esc, want string) bool {
	j := 0
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(esc) {
				return false
			}
			b, ok := httpsyntax.HexPair(esc[i+1], esc[i+2])
			if !ok {
				return false
			}
			c = b
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// allow returns the Allow header value for a method mask.
func (t *Table[T]) allow(mask uint64) string {
	var b strings.Builder
	for i, m := range t.methods {
		if mask&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m)
	}
	return b.String()
}
