package router

import (
	"bytes"
	"errors"
)

// ErrBadPath is returned by NormalizePath for a path that does not start
// with "/", holds a raw control byte (below 0x20, or 0x7f), a raw backslash,
// an encoded NUL ("%00"), an invalid percent escape ("%zz", "%4"), or a
// dot segment carrying parameters ("..;x").
var ErrBadPath = errors.New("invalid request path")

// ErrEncodedSeparator is returned by NormalizePath for a path holding an
// encoded slash ("%2F") or an encoded backslash ("%5C"), in either case.
var ErrEncodedSeparator = errors.New("encoded slash or backslash in request path")

const upperHex = "0123456789ABCDEF"

// special marks the bytes isCanonical must look at; the others are copied
// as they are.
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['/'], t['%'], t['\\'], t[0x7f] = true, true, true, true
	return t
}()

// NormalizePath returns the canonical escaped form of an escaped request
// path (as from url.URL.EscapedPath). The rules are listed in the package
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
		if !special[s[i]] {
			continue
		}
		switch c := s[i]; {
		case c == '/':
			if !canonicalSegment(s[segStart:i]) {
				return false
			}
			segStart = i + 1
		case c == '%':
			if i+2 >= len(s) {
				return false
			}
			hi, lo := s[i+1], s[i+2]
			if !isUpperHex(hi) || !isUpperHex(lo) {
				return false
			}
			b := unhexDigit(hi)<<4 | unhexDigit(lo)
			if b == 0 || b == '/' || b == '\\' || isUnreserved(b) {
				return false
			}
			i += 2
		case c < 0x20 || c == 0x7f || c == '\\':
			return false
		}
	}
	// The last segment may be empty: "/" or a trailing slash.
	last := s[segStart:]
	return last == "" || canonicalSegment(last)
}

// canonicalSegment reports whether a segment between two slashes is kept
// as it is: not empty and not a dot segment.
func canonicalSegment(seg string) bool {
	if seg == "" {
		return false
	}
	if seg[0] != '.' {
		return true
	}
	return !isDotSegment(seg) && !isDotParamSegment(seg)
}

func isDotSegment[S string | []byte](seg S) bool {
	return len(seg) == 1 && seg[0] == '.' || len(seg) == 2 && seg[0] == '.' && seg[1] == '.'
}

// isDotParamSegment reports whether seg is "." or ".." followed by ";" path
// parameters, which some servers (Tomcat, Jetty) resolve as a dot segment.
func isDotParamSegment[S string | []byte](seg S) bool {
	return len(seg) >= 2 && seg[0] == '.' &&
		(seg[1] == ';' || (len(seg) >= 3 && seg[1] == '.' && seg[2] == ';'))
}

// normalizeSlow builds the canonical form of s, which starts with "/". It
// decodes unreserved escapes, upper-cases the others, and resolves empty
// and dot segments as each segment ends, in one pass over s. The output is
// never longer than s.
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
			case isDotParamSegment(seg):
				return "", ErrBadPath
			default:
				if i < len(s) {
					out = append(out, '/')
				}
			}
			segStart = len(out)
			continue
		}
		switch c := s[i]; {
		case c == '%':
			if i+2 >= len(s) {
				return "", ErrBadPath
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", ErrBadPath
			}
			switch b := hi<<4 | lo; {
			case b == '/' || b == '\\':
				return "", ErrEncodedSeparator
			case b == 0:
				return "", ErrBadPath
			case isUnreserved(b):
				out = append(out, b)
			default:
				out = append(out, '%', upperHex[hi], upperHex[lo])
			}
			i += 2
		case c < 0x20 || c == 0x7f || c == '\\':
			return "", ErrBadPath
		default:
			out = append(out, c)
		}
	}
	return string(out), nil
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
	v, _ := unhex(c)
	return v
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
