package transform

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// This file holds the single-pass filter for response bodies: it walks the
// raw JSON once, validating it, copies the values it keeps as they were
// sent (numbers and strings with their escapes untouched), skips the ones
// it drops, and keeps members in the order the upstream wrote them. The
// path semantics are those of allow, deny and renameAll in jsonpath.go.

// maxDepth bounds the nesting of a filtered document; a deeper one is
// treated as invalid and passes unchanged.
const maxDepth = 512

// streamFilter walks one document.
type streamFilter struct {
	src   []byte
	pos   int
	dst   []byte
	depth int
	ws    bool // white space was skipped since the flag was cleared
}

// filterStream writes to out the document src with allow, deny and rename
// (any may be nil) applied. It reports false, writing nothing, when src is
// not one valid JSON value (or nests deeper than maxDepth) or when an
// allow-list keeps nothing of a scalar document.
func filterStream(src []byte, allow, deny, rename *trie, out *bytes.Buffer) bool {
	out.Grow(len(src))
	f := streamFilter{src: src, dst: out.AvailableBuffer()}
	f.skipWS()
	if f.pos >= len(src) {
		return false
	}
	if c := src[f.pos]; allow != nil && c != '{' && c != '[' {
		return false
	}
	if !f.value(allow, deny, rename) {
		return false
	}
	f.skipWS()
	if f.pos != len(src) {
		return false
	}
	out.Write(f.dst)
	return true
}

// value filters the value at pos into dst. allow is nil where everything
// is kept, deny and rename are nil where nothing below is denied or
// renamed. With allow set the value is an object or an array.
func (f *streamFilter) value(allow, deny, rename *trie) bool {
	if f.pos >= len(f.src) {
		return false
	}
	switch f.src[f.pos] {
	case '{':
		if allow != nil || deny != nil || rename != nil {
			return f.object(allow, deny, rename)
		}
	case '[':
		if allow != nil || deny != nil || rename != nil {
			return f.array(allow, deny, rename)
		}
	}
	return f.copyValue()
}

// copyValue validates the value at pos and appends it without white space.
func (f *streamFilter) copyValue() bool {
	start := f.pos
	f.ws = false
	if !f.skip() {
		return false
	}
	if !f.ws {
		f.dst = append(f.dst, f.src[start:f.pos]...)
		return true
	}
	f.dst = appendCompact(f.dst, f.src[start:f.pos])
	return true
}

// appendCompact appends the valid JSON value v without insignificant white
// space.
func appendCompact(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			j := i + 1
			for v[j] != '"' {
				if v[j] == '\\' {
					j++
				}
				j++
			}
			dst = append(dst, v[i:j+1]...)
			i = j
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// member decides whether an object member named key, whose value starts
// with c, survives allow and deny, and returns the nodes for its value.
func member(allow, deny *trie, key []byte, c byte) (ca, cd *trie, keep bool) {
	if allow != nil {
		ca = allow.children[string(key)]
		switch {
		case ca == nil:
			return nil, nil, false
		case ca.end:
			ca = nil
		case c != '{' && c != '[':
			return nil, nil, false // a scalar where an object is expected
		}
	}
	if deny != nil {
		cd = deny.children[string(key)]
		if cd != nil {
			if cd.end {
				return nil, nil, false
			}
			if len(cd.children) == 0 {
				cd = nil
			}
		}
	}
	return ca, cd, true
}

func (f *streamFilter) object(allow, deny, rename *trie) bool {
	start := f.pos
	if empty, ok := f.open('{', '}'); empty || !ok {
		return ok
	}
	first := true
	for {
		k0 := f.pos
		key, ok := f.key()
		if !ok {
			return false
		}
		raw := f.src[k0:f.pos]
		f.skipWS()
		if f.pos >= len(f.src) || f.src[f.pos] != ':' {
			return false
		}
		f.pos++
		f.skipWS()
		if f.pos >= len(f.src) {
			return false
		}
		c := f.src[f.pos]
		ca, cd, keep := member(allow, deny, key, c)
		var cr *trie
		if rename != nil {
			cr = rename.children[string(key)]
			if keep && (cr == nil || cr.to == "") && rename.targets[string(key)] && f.renamedInto(start, allow, deny, rename, key) {
				keep = false // a renamed member takes the name
			}
		}
		if !keep {
			f.ws = false
			if !f.skip() {
				return false
			}
		} else {
			if !first {
				f.dst = append(f.dst, ',')
			}
			first = false
			if cr != nil && cr.to != "" {
				f.dst = append(f.dst, cr.toJSON...)
			} else {
				f.dst = append(f.dst, raw...)
			}
			f.dst = append(f.dst, ':')
			if cr != nil && len(cr.children) == 0 {
				cr = nil
			}
			if !f.value(ca, cd, cr) {
				return false
			}
		}
		if done, ok := f.next('}'); done || !ok {
			return ok
		}
	}
}

// renamedInto reports whether the object at start has a member that
// survives allow and deny and is renamed to key. It only reads; the main
// walk validates.
func (f *streamFilter) renamedInto(start int, allow, deny, rename *trie, key []byte) bool {
	g := streamFilter{src: f.src, pos: start + 1, depth: f.depth}
	g.skipWS()
	for g.pos < len(g.src) && g.src[g.pos] == '"' {
		k, ok := g.key()
		if !ok {
			return false
		}
		g.skipWS()
		if g.pos >= len(g.src) || g.src[g.pos] != ':' {
			return false
		}
		g.pos++
		g.skipWS()
		if g.pos >= len(g.src) {
			return false
		}
		if cr := rename.children[string(k)]; cr != nil && cr.to == string(key) {
			if _, _, keep := member(allow, deny, k, g.src[g.pos]); keep {
				return true
			}
		}
		if !g.skip() {
			return false
		}
		g.skipWS()
		if g.pos >= len(g.src) || g.src[g.pos] != ',' {
			return false
		}
		g.pos++
		g.skipWS()
	}
	return false
}

func (f *streamFilter) array(allow, deny, rename *trie) bool {
	if empty, ok := f.open('[', ']'); empty || !ok {
		return ok
	}
	first := true
	for {
		if f.pos >= len(f.src) {
			return false
		}
		if c := f.src[f.pos]; allow != nil && c != '{' && c != '[' {
			if !f.skip() { // a scalar where an object is expected
				return false
			}
		} else {
			if !first {
				f.dst = append(f.dst, ',')
			}
			first = false
			if !f.value(allow, deny, rename) {
				return false
			}
		}
		if done, ok := f.next(']'); done || !ok {
			return ok
		}
	}
}

// key scans the object key at pos and returns it decoded. Keys with
// escapes or bytes outside ASCII are decoded as encoding/json does
// (invalid UTF-8 becomes U+FFFD), so paths match the same members.
// open enters an object or array at f.pos (its opening byte), copying the
// opening to the output; empty reports "{}" or "[]", already closed.
func (f *streamFilter) open(opening, closing byte) (empty, ok bool) {
	if f.depth++; f.depth > maxDepth {
		return false, false
	}
	f.pos++
	f.dst = append(f.dst, opening)
	f.skipWS()
	if f.pos < len(f.src) && f.src[f.pos] == closing {
		f.pos++
		f.depth--
		f.dst = append(f.dst, closing)
		return true, true
	}
	return false, true
}

// next steps over what follows a member or element: a comma (more to
// come) or the closing byte, which it copies (done).
func (f *streamFilter) next(closing byte) (done, ok bool) {
	f.skipWS()
	if f.pos >= len(f.src) {
		return false, false
	}
	switch f.src[f.pos] {
	case ',':
		f.pos++
		f.skipWS()
		return false, true
	case closing:
		f.pos++
		f.depth--
		f.dst = append(f.dst, closing)
		return true, true
	}
	return false, false
}

func (f *streamFilter) key() ([]byte, bool) {
	start := f.pos
	plain, ok := f.str()
	if !ok {
		return nil, false
	}
	raw := f.src[start+1 : f.pos-1]
	if plain || (bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)) {
		return raw, true
	}
	var s string
	if err := json.Unmarshal(f.src[start:f.pos], &s); err != nil {
		return nil, false
	}
	return []byte(s), true
}

func (f *streamFilter) skipWS() {
	for f.pos < len(f.src) {
		switch f.src[f.pos] {
		case ' ', '\t', '\n', '\r':
			f.pos++
			f.ws = true
		default:
			return
		}
	}
}

// skip validates the value at pos and moves past it.
func (f *streamFilter) skip() bool {
	if f.pos >= len(f.src) {
		return false
	}
	switch c := f.src[f.pos]; c {
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if f.depth++; f.depth > maxDepth {
			return false
		}
		f.pos++
		f.skipWS()
		if f.pos < len(f.src) && f.src[f.pos] == end {
			f.pos++
			f.depth--
			return true
		}
		for {
			if c == '{' {
				if _, ok := f.str(); !ok {
					return false
				}
				f.skipWS()
				if f.pos >= len(f.src) || f.src[f.pos] != ':' {
					return false
				}
				f.pos++
				f.skipWS()
			}
			if !f.skip() {
				return false
			}
			f.skipWS()
			if f.pos >= len(f.src) {
				return false
			}
			switch f.src[f.pos] {
			case ',':
				f.pos++
				f.skipWS()
			case end:
				f.pos++
				f.depth--
				return true
			default:
				return false
			}
		}
	case '"':
		_, ok := f.str()
		return ok
	case 't':
		return f.literal("true")
	case 'f':
		return f.literal("false")
	case 'n':
		return f.literal("null")
	}
	return f.number()
}

func (f *streamFilter) literal(s string) bool {
	if end := f.pos + len(s); end > len(f.src) || string(f.src[f.pos:end]) != s {
		return false
	}
	f.pos += len(s)
	return true
}

// str validates the string at pos and moves past it. plain reports that
// it is ASCII without escapes.
func (f *streamFilter) str() (plain, ok bool) {
	if f.pos >= len(f.src) || f.src[f.pos] != '"' {
		return false, false
	}
	plain = true
	i := f.pos + 1
	for i < len(f.src) {
		c := f.src[i]
		switch {
		case c == '"':
			f.pos = i + 1
			return plain, true
		case c < 0x20:
			return false, false
		case c == '\\':
			plain = false
			if i+1 >= len(f.src) {
				return false, false
			}
			switch f.src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(f.src) {
					return false, false
				}
				for _, h := range f.src[i+2 : i+6] {
					if !httpsyntax.IsHex(h) {
						return false, false
					}
				}
				i += 6
			default:
				return false, false
			}
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			i++
		}
	}
	return false, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// number validates a JSON number at pos and moves past it.
func (f *streamFilter) number() bool {
	s, i := f.src, f.pos
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return false
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	f.pos = i
	return true
}
