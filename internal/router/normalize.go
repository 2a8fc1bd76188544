package router

import (
	"bytes"
	"errors"
	"unicode/utf8"

	"github.com/portico-gateway/portico/internal/httpsyntax"
)

// ErrBadPath is returned by NormalizePath for a path that does not start
// with "/" or that a lenient backend could read as another path: one
// holding a raw control byte (below 0x20, or 0x7f), a raw backslash, a raw
// "#", a raw byte above 0x7f, a ";" (raw or encoded), an encoded control
// byte ("%00" to "%1F", "%7F"), an encoded percent sign followed by two hex
// digits ("%252e"), encoded bytes that are not valid UTF-8 ("%C0%AE"), or
// an invalid percent escape ("%zz", "%4").
var ErrBadPath = errors.New("invalid request path")

// ErrEncodedSeparator is returned by NormalizePath for a path holding an
// encoded slash ("%2F") or an encoded backslash ("%5C"), in either case.
var ErrEncodedSeparator = errors.New("encoded slash or backslash in request path")

const upperHex = "0123456789ABCDEF"

// Byte classes of a raw (not percent-encoded) path byte.
const (
	rawKeep    = iota // copied as it is
	rawSpecial        // "/" or "%": structure
	rawRefuse         // the path is refused
	rawEscape         // percent-encoded in the canonical form
)

// rawClass classifies the raw bytes of a path. isCanonical only looks
// further at the bytes that are not rawKeep.
var rawClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = rawRefuse
	}
	for c := 0x7f; c < 0x100; c++ {
		t[c] = rawRefuse
	}
	for _, c := range `\#;` {
		t[c] = rawRefuse
	}
	// Outside the RFC 3986 path characters, but sent by some clients:
	// escaped, as net/url escapes them.
	for _, c := range " \"<>^`{|}" {
		t[c] = rawEscape
	}
	t['/'], t['%'] = rawSpecial, rawSpecial
	return t
}()

// NormalizePath returns the canonical escaped form of a request path as
// the client sent it (RequestPath). The rules are listed in the package
// documentation. An already canonical path is returned unchanged without
// allocating.
func NormalizePath(escaped string) (string, error) {
	if escaped == "" {
		return "/", nil
	}
	if escaped[0] != '/' {
		return "", ErrBadPath
	}
	if isCanonical(escaped) {
		return escaped, nil
	}
	return normalizeSlow(escaped)
}

// isCanonical reports whether s, which starts with "/", is already in the
// form normalizeSlow produces. It must agree exactly with normalizeSlow: a
// true result means normalizeSlow(s) == s with no error.
func isCanonical(s string) bool {
	segStart := 1
	for i := 1; i < len(s); i++ {
		switch rawClass[s[i]] {
		case rawKeep:
			continue
		case rawRefuse, rawEscape:
			return false
		}
		if s[i] == '/' {
			if !canonicalSegment(s[segStart:i]) {
				return false
			}
			segStart = i + 1
			continue
		}
		// s[i] == '%'
		if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
			return false
		}
		switch b := unhexDigit(s[i+1])<<4 | unhexDigit(s[i+2]); {
		case b >= 0x80:
			n, ok := utf8Escapes(s, i)
			if !ok || !upperEscapes(s[i+3:i+n]) {
				return false
			}
			i += n - 1
			continue
		case b == '%':
			if i+4 < len(s) && httpsyntax.IsHex(s[i+3]) && httpsyntax.IsHex(s[i+4]) {
				return false
			}
		case refusedEscape(b) || b == '/' || b == '\\' || isUnreserved(b):
			return false
		}
		i += 2
	}
	// The last segment may be empty: "/" or a trailing slash.
	last := s[segStart:]
	return last == "" || canonicalSegment(last)
}

// canonicalSegment reports whether a segment between two slashes is kept
// as it is: not empty and not a dot segment.
func canonicalSegment(seg string) bool {
	return seg != "" && !isDotSegment(seg)
}

func isDotSegment[S string | []byte](seg S) bool {
	return len(seg) == 1 && seg[0] == '.' || len(seg) == 2 && seg[0] == '.' && seg[1] == '.'
}

// refusedEscape reports whether an escape of b makes the path refused
// with ErrBadPath: a control byte, which no route needs and some backends
// truncate at or log raw, and ";", which Tomcat and Spring read as the
// start of path parameters once decoded.
func refusedEscape(b byte) bool { return b < 0x20 || b == 0x7f || b == ';' }

// upperEscapes reports whether every escape in s, a run of escapes, has
// upper-case hex digits.
func upperEscapes(s string) bool {
	for i := 0; i+2 < len(s); i += 3 {
		if !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
			return false
		}
	}
	return true
}

// utf8Escapes checks the character whose first byte is the escape at s[i],
// a byte above 0x7f: every byte of the character must be escaped, and the
// bytes must be valid UTF-8 in shortest form (no overlong forms such as
// "%C0%AE", no surrogates, nothing above U+10FFFF). It returns the length
// in s of the character's escapes.
func utf8Escapes(s string, i int) (int, bool) {
	var buf [utf8.UTFMax]byte
	n := 0
	for ; n < len(buf); n++ {
		j := i + 3*n
		if j+2 >= len(s) || s[j] != '%' {
			break
		}
		b, ok := httpsyntax.HexPair(s[j+1], s[j+2])
		if !ok {
			return 0, false
		}
		if n > 0 && (b < 0x80 || utf8.RuneStart(b)) {
			break
		}
		buf[n] = b
	}
	r, size := utf8.DecodeRune(buf[:n])
	if r == utf8.RuneError && size <= 1 || size != n {
		return 0, false
	}
	return 3 * n, true
}

// normalizeSlow builds the canonical form of s, which starts with "/". It
// decodes unreserved escapes, upper-cases the others, escapes the raw
// bytes net/url escapes, and resolves empty and dot segments as each
// segment ends, in one pass over s.
func normalizeSlow(s string) (string, error) {
	out := make([]byte, 1, len(s))
	out[0] = '/'
	segStart := 1 // index in out where the current segment starts
	for i := 1; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			seg := out[segStart:]
			switch {
			case len(seg) == 0:
				// "//" or a trailing slash: out already ends with '/'.
			case isDotSegment(seg):
				out = out[:segStart]
				if len(seg) == 2 && segStart > 1 {
					// ".." drops the previous segment; never above the root.
					j := bytes.LastIndexByte(out[:segStart-1], '/')
					out = out[:j+1]
				}
			default:
				if i < len(s) {
					out = append(out, '/')
				}
			}
			segStart = len(out)
			continue
		}
		c := s[i]
		switch rawClass[c] {
		case rawRefuse:
			return "", ErrBadPath
		case rawEscape:
			out = append(out, '%', upperHex[c>>4], upperHex[c&0xf])
			continue
		case rawKeep:
			out = append(out, c)
			continue
		}
		// c == '%'
		if i+2 >= len(s) {
			return "", ErrBadPath
		}
		b, ok := httpsyntax.HexPair(s[i+1], s[i+2])
		if !ok {
			return "", ErrBadPath
		}
		switch {
		case b == '/' || b == '\\':
			return "", ErrEncodedSeparator
		case refusedEscape(b):
			return "", ErrBadPath
		case b == '%':
			// "%25" then two hex digits, sent raw or encoded, is an
			// escape once decoded: a backend that decodes twice reads
			// "%252e" as ".".
			if httpsyntax.IsHex(charAt(s, i+3)) && httpsyntax.IsHex(charAt(s, i+3+escLen(s, i+3))) {
				return "", ErrBadPath
			}
			out = append(out, "%25"...)
		case b >= 0x80:
			n, ok := utf8Escapes(s, i)
			if !ok {
				return "", ErrBadPath
			}
			for j := i; j < i+n; j += 3 {
				out = append(out, '%', upperHex[unhexDigit(s[j+1])], upperHex[unhexDigit(s[j+2])])
			}
			i += n - 1
			continue
		case isUnreserved(b):
			out = append(out, b)
		default:
			out = append(out, '%', upperHex[b>>4], upperHex[b&0xf])
		}
		i += 2
	}
	return string(out), nil
}

// escLen returns the length in s of the character at s[i]: 3 for a valid
// escape, 1 otherwise (0 past the end).
func escLen(s string, i int) int {
	switch {
	case i >= len(s):
		return 0
	case s[i] == '%' && i+2 < len(s) && httpsyntax.IsHex(s[i+1]) && httpsyntax.IsHex(s[i+2]):
		return 3
	}
	return 1
}

// charAt returns the byte at s[i], decoded when it starts a valid escape,
// or 0 past the end.
func charAt(s string, i int) byte {
	if escLen(s, i) == 3 {
		return unhexDigit(s[i+1])<<4 | unhexDigit(s[i+2])
	}
	if i >= len(s) {
		return 0
	}
	return s[i]
}

// isUnreserved reports whether b is an RFC 3986 unreserved character.
func isUnreserved(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return b == '-' || b == '.' || b == '_' || b == '~'
}

func isUpperHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F'
}

// unhexDigit returns the value of a hex digit already known to be valid.
func unhexDigit(c byte) byte {
	v, _ := httpsyntax.Unhex(c)
	return v
}
