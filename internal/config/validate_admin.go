package config

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// minAdminTokenLen is the shortest literal admin token accepted: 32
// characters from the RFC 6750 set carry far more than 128 bits when
// generated at random (openssl rand -base64 32 gives 44).
const minAdminTokenLen = 32

// digestHowTo tells the operator how to make a token digest.
const digestHowTo = `make one with: printf %s "$TOKEN" | sha256sum`

// Digest returns the SHA-256 digest the token is compared under: the
// decoded "sha256:<hex>" form, or the digest of a literal token. ok is
// false for a malformed digest.
func (t AdminToken) Digest() (d [sha256.Size]byte, ok bool) {
	s := t.Token.Value()
	if hexPart, found := strings.CutPrefix(s, "sha256:"); found {
		b, err := hex.DecodeString(hexPart)
		if err != nil || len(b) != sha256.Size {
			return d, false
		}
		copy(d[:], b)
		return d, true
	}
	return sha256.Sum256([]byte(s)), true
}

// OnLoopback reports whether the admin listener is off or bound to a
// loopback address only: 127.0.0.0/8, ::1 (also in its IPv4-mapped form)
// or the name localhost. An empty host binds every interface and is not
// loopback; neither is any other host name, which could resolve anywhere.
func (a *Admin) OnLoopback() bool {
	if a.Listen == "off" || a.Listen == "" {
		return true
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// admin checks the admin API's access settings; the listen address itself
// is checked with the listeners. Messages never contain a token.
func (v *validator) admin() {
	a, p := &v.c.Admin, Path{}.Key("admin")
	seen := make(map[[sha256.Size]byte]Path, len(a.Tokens))
	names := make(map[string]Path, len(a.Tokens))
	for i := range a.Tokens {
		v.adminToken(p.Index("tokens", i), &a.Tokens[i], seen, names)
	}
	public := make(map[string]bool, len(a.PublicPaths))
	for i, s := range a.PublicPaths {
		pp := p.Index("public_paths", i)
		switch {
		case !strings.HasPrefix(s, "/"):
			v.errf(pp, `must be an admin path starting with "/", like "/metrics"`)
		case strings.ContainsAny(s, "?# \t\r\n\x00"):
			v.errf(pp, `must be a plain path, without a query, fragment or spaces`)
		case public[s]:
			v.errf(pp, "duplicate public path %s", v.q(pp, s))
		default:
			public[s] = true
		}
	}
	for i, o := range a.AllowedOrigins {
		if _, ok := normalizeOrigin(o); !ok {
			v.errf(p.Index("allowed_origins", i),
				`must be an origin: http or https, a host and an optional port, nothing else, like "https://ops.example.com"`)
		}
	}
	if len(a.Tokens) == 0 && !a.Insecure && !a.OnLoopback() && v.validListen(a.Listen) {
		lp := p.Key("listen")
		v.errf(lp, "%s is not a loopback address, and without admin.tokens anyone who reaches it can reload "+
			"the config and purge the cache: set admin.tokens (docs/operations.md#admin-api), listen on "+
			"127.0.0.1, or set admin.insecure: true", v.q(lp, a.Listen))
	}
}

// validListen reports whether s is a host:port that the listeners check
// accepts, so that a malformed address gets one error, not two.
func (v *validator) validListen(s string) bool {
	_, _, err := net.SplitHostPort(s)
	return err == nil
}

func (v *validator) adminToken(p Path, t *AdminToken, seen map[[sha256.Size]byte]Path, names map[string]Path) {
	np := p.Key("name")
	if v.name(np, t.Name) {
		if other, dup := names[t.Name]; dup {
			v.errf(np, "duplicate token name %s; %s has it too", v.q(np, t.Name), other)
		} else {
			names[t.Name] = p
		}
	}
	switch t.Role {
	case AdminRoleRead, AdminRoleWrite:
	case "":
		v.errf(p.Key("role"), `is required: "read" (GET endpoints) or "write" (every endpoint)`)
	default:
		v.errf(p.Key("role"), `must be "read" (GET endpoints) or "write" (every endpoint)`)
	}
	tp := p.Key("token")
	s := t.Token.Value()
	switch {
	case s == "":
		v.errf(tp, "is required: sha256: followed by the 64 hex digits of the token's SHA-256; %s", digestHowTo)
		return
	case strings.HasPrefix(s, "sha256:"):
		if _, ok := t.Digest(); !ok {
			v.errf(tp, "a token digest must be sha256: followed by exactly 64 hex digits; %s", digestHowTo)
			return
		}
	case len(s) < minAdminTokenLen:
		v.errf(tp, "a literal token must be at least %d characters; better, write its digest: sha256: "+
			"followed by 64 hex digits; %s", minAdminTokenLen, digestHowTo)
		return
	case !isBearerToken(s):
		v.errf(tp, `a literal token may hold only letters, digits, "-", ".", "_", "~", "+" and "/", then "=" padding (RFC 6750)`)
		return
	}
	d, _ := t.Digest()
	if other, dup := seen[d]; dup {
		v.errf(tp, "the same token as %s; give every token its own value", other)
		return
	}
	seen[d] = p
}

// isBearerToken reports whether s is an RFC 6750 b64token: 1*( ALPHA /
// DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isBearerToken(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !isAlpha(c) && !isDigit(c) && !strings.ContainsRune("-._~+/", rune(c)) {
			return false
		}
	}
	return true
}

// Origins returns the allowed origins as browsers send them in the Origin
// header (see normalizeOrigin), skipping any that is not an origin.
func (a *Admin) Origins() []string {
	out := make([]string, 0, len(a.AllowedOrigins))
	for _, o := range a.AllowedOrigins {
		if n, ok := normalizeOrigin(o); ok {
			out = append(out, n)
		}
	}
	return out
}

// normalizeOrigin returns the serialized form of a configured origin, as
// browsers send it: lowercase scheme and host, the port only when it is
// not the scheme's default. ok is false when s is not an http or https
// origin: a path (even "/"), query, fragment or user info, and "null", are
// refused.
func normalizeOrigin(s string) (origin string, ok bool) {
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(s, "?#") || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return "", false
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, true
}
