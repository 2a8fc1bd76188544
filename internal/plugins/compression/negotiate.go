package compression

import "strings"

// qUnset marks a coding the Accept-Encoding header does not name.
const qUnset = -1

// negotiate picks the response coding for the Accept-Encoding field
// values (RFC 9110 §12.5.3). A coding's weight is its own q-value, or that
// of "*" when it is not listed; q=0 refuses it. The highest weight wins
// and ties go to the server's preference order. identity competes too: it
// is acceptable unless refused ("identity;q=0", or "*;q=0" without an
// identity entry), and when not named (nor covered by "*") it loses to any
// acceptable coding. With no acceptable coding, or no header at all, the
// answer is identity.
func (c *compressor) negotiate(values []string) encoding {
	if len(values) == 0 {
		return encIdentity
	}
	var qs [numEncodings]int
	for i := range qs {
		qs[i] = qUnset
	}
	star, identity := qUnset, qUnset
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(elem, ";")
			coding = strings.TrimSpace(coding)
			if coding == "" {
				continue
			}
			q, ok := parseQ(params)
			if !ok {
				continue // a malformed weight: ignore the element
			}
			switch {
			case coding == "*":
				star = max(star, q)
			case strings.EqualFold(coding, "identity"):
				identity = max(identity, q)
			case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
				qs[encGzip] = max(qs[encGzip], q)
			case strings.EqualFold(coding, "br"):
				qs[encBrotli] = max(qs[encBrotli], q)
			case strings.EqualFold(coding, "zstd"):
				qs[encZstd] = max(qs[encZstd], q)
			}
		}
	}
	best, choice := 0, encIdentity
	for _, e := range c.prefs {
		q := qs[e]
		if q == qUnset {
			q = star
		}
		if q > best {
			best, choice = q, e
		}
	}
	if choice == encIdentity {
		return encIdentity
	}
	idq := identity
	if idq == qUnset {
		idq = star // unset too: acceptable, but below any coding
	}
	if idq > best {
		return encIdentity
	}
	return choice
}

// parseQ reads the q parameter from the parameters after a coding
// (";q=0.5"), as thousandths: 1000 when absent. ok is false for a
// malformed weight.
func parseQ(params string) (q int, ok bool) {
	q = 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, val, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		return parseQValue(strings.TrimSpace(val))
	}
	return q, true
}

// parseQValue parses an RFC 9110 qvalue: "0", "0.5", "1", "1.000" (at most
// three decimals).
func parseQValue(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	if len(s) == 1 {
		return whole * 1000, true
	}
	if s[1] != '.' {
		return 0, false
	}
	frac, scale := 0, 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		frac += int(c-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return 0, false
	}
	return whole*1000 + frac, true
}
