// Package httpsyntax is the part of the HTTP grammar (RFC 9110) that
// Portico checks in many places: tokens, the syntax of methods, header
// names and parameter names, and field values, which must not carry
// control bytes that could split a header.
package httpsyntax

// tokenByte marks the bytes of a token (RFC 9110 §5.6.2 tchar).
var tokenByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTokenByte reports whether c may appear in a token.
func IsTokenByte(c byte) bool { return tokenByte[c] }

// IsToken reports whether s is a non-empty token.
func IsToken[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return true
}

// IsFieldValue reports whether v may be sent as a field value: no control
// bytes other than horizontal tab, and no DEL, so no CR or LF that would
// start another header; obs-text (0x80 and above) is allowed.
func IsFieldValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
