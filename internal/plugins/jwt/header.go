package jwt

import (
	"errors"
	"strings"
)

// The JOSE header rules: crit (RFC 7515 §4.1.11) and explicit typing
// (RFC 7515 §4.1.9, RFC 8725 §2.8 and §3.11). They run on the header the
// parser has already decoded, before any key is looked up, so a token they
// refuse never causes a key set fetch or a signature check; on a token
// that passes they allocate nothing.

var (
	errCritMalformed   = errors.New("malformed crit header parameter")
	errCritUnsupported = errors.New("crit names an unsupported extension")
	errWrongType       = errors.New("typ not accepted")
)

// jwsHeaderNames are the header parameters RFC 7515 §4.1 defines for JWS.
// RFC 7515 §4.1.11 forbids them in crit, which lists extensions only.
var jwsHeaderNames = map[string]bool{
	"alg": true, "jku": true, "jwk": true, "kid": true, "x5u": true, "x5c": true,
	"x5t": true, "x5t#S256": true, "typ": true, "cty": true, "crit": true,
}

// checkCrit applies RFC 7515 §4.1.11 to a decoded header. crit lists the
// extensions a recipient must understand, or else refuse the token; Portico
// implements none, so every crit is refused. A crit that breaks the
// section's rules (not a non-empty list of distinct strings naming
// extension parameters present in the header) is malformed; a well-formed
// one names an extension Portico does not support.
func checkCrit(h map[string]any) error {
	raw, ok := h["crit"]
	if !ok {
		return nil
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return errCritMalformed
	}
	// Only refused tokens get here: the set costs nothing on the hot path.
	seen := make(map[string]bool, len(list))
	for _, e := range list {
		name, ok := e.(string)
		if !ok || jwsHeaderNames[name] || seen[name] {
			return errCritMalformed
		}
		if _, present := h[name]; !present {
			return errCritMalformed
		}
		seen[name] = true
	}
	return errCritUnsupported
}

// defaultTypes are the typ values accepted when the types setting is not
// set: JWT (RFC 7519 §5.1) and at+jwt (RFC 9068 §2.1), and tokens without a
// typ.
var defaultTypes = typeRule{names: []string{"jwt", "at+jwt"}, untyped: true}

// typeRule is the compiled types setting: the typ values a route accepts.
type typeRule struct {
	names   []string // typeKey form: lower case, without "application/"
	untyped bool     // a token without typ passes
}

// check applies the rule to a decoded header. typ is compared as RFC 7515
// §4.1.9 says: case-insensitively, with "application/" implied when the
// value has no "/". A typ that is not a string is never accepted.
func (tr *typeRule) check(h map[string]any) error {
	raw, ok := h["typ"]
	if !ok {
		if tr.untyped {
			return nil
		}
		return errWrongType
	}
	typ, ok := raw.(string)
	if !ok {
		return errWrongType
	}
	if typ, ok = bareType(typ); !ok {
		return errWrongType
	}
	for _, n := range tr.names {
		if strings.EqualFold(typ, n) {
			return nil
		}
	}
	return errWrongType
}

// compileTypes returns the rule of a types setting: nil means the default.
func compileTypes(types []string) (typeRule, error) {
	if types == nil {
		return defaultTypes, nil
	}
	if len(types) == 0 {
		return typeRule{}, errors.New("types: must not be empty")
	}
	tr := typeRule{names: make([]string, 0, len(types))}
	for _, t := range types {
		k, problem := typeKey(t)
		if problem != "" {
			return typeRule{}, errors.New("types: " + problem)
		}
		tr.names = append(tr.names, k)
	}
	return tr, nil
}

// bareType returns a media type without a leading "application/" (in any
// case); false when what follows that prefix has another "/".
func bareType(s string) (string, bool) {
	const prefix = "application/"
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		s = s[len(prefix):]
		return s, strings.IndexByte(s, '/') < 0
	}
	return s, true
}

// typeKey returns a types entry in the form typ values are compared with
// (lower case, without "application/"), or why it cannot be one: an entry
// is SUBTYPE or TYPE/SUBTYPE, each an RFC 6838 §4.2 restricted-name, with
// no parameters and no wildcard.
func typeKey(s string) (key, problem string) {
	const want = "must be a media type like at+jwt or application/at+jwt, without parameters"
	k, ok := bareType(strings.ToLower(s))
	if !ok {
		return "", want
	}
	if strings.Contains(k, "*") || k == "any" {
		return "", "has no wildcard meaning: list every accepted type, like [at+jwt, JWT]"
	}
	typ, sub, hasSlash := strings.Cut(k, "/")
	if !restrictedName(typ) || hasSlash && !restrictedName(sub) {
		return "", want
	}
	return k, ""
}

// restrictedName reports whether s is an RFC 6838 §4.2 restricted-name:
// a letter or digit, then at most 126 of letters, digits and
// "!#$&-^_.+".
func restrictedName(s string) bool {
	if s == "" || len(s) > 127 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$&-^_.+", rune(c)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
