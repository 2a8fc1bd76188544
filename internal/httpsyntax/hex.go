package httpsyntax

// Unhex returns the value of the hex digit c, and whether c is one.
func Unhex(c byte) (byte, bool) {
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

// IsHex reports whether c is a hex digit.
func IsHex(c byte) bool {
	_, ok := Unhex(c)
	return ok
}

// HexPair returns the byte that the hex digits hi and lo spell (as in a
// percent-encoded "%hl"), and whether both are hex digits.
func HexPair(hi, lo byte) (byte, bool) {
	h, ok1 := Unhex(hi)
	l, ok2 := Unhex(lo)
	return h<<4 | l, ok1 && ok2
}
