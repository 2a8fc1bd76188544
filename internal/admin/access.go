package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// Access is the admin API's access rules of one config: the tokens and
// their roles, the paths answered without a token, and the origins whose
// requests may call write endpoints. NewAccess compiles it once per config
// snapshot; it is immutable afterwards, so a reload swaps it whole with
// the snapshot. A nil *Access is an open admin API that allows no origin.
type Access struct {
	tokens  []token
	public  map[string]bool
	origins []string
}

// token is one configured admin token.
type token struct {
	digest [sha256.Size]byte
	name   string
	write  bool
}

// NewAccess compiles the admin settings a of a validated config. extra are
// the endpoints served beside the built-in ones (the plugins'): a public
// path must name a GET endpoint, never one that changes the gateway. The
// errors are *config.FieldError values at admin.public_paths[i].
func NewAccess(a *config.Admin, extra []Endpoint) (*Access, error) {
	acc := &Access{public: make(map[string]bool, len(a.PublicPaths)), origins: a.Origins()}
	for _, t := range a.Tokens {
		d, ok := t.Digest()
		if !ok {
			return nil, config.Path{}.Key("admin").Key("tokens").Errorf("a token digest is malformed") // validated before
		}
		acc.tokens = append(acc.tokens, token{digest: d, name: t.Name, write: t.Role == config.AdminRoleWrite})
	}
	all := slices.Concat(builtin, extra)
	var readable []string
	for _, e := range all {
		if !e.Write {
			readable = append(readable, e.Path)
		}
	}
	slices.Sort(readable)
	var errs []error
	for i, p := range a.PublicPaths {
		at := config.Path{}.Key("admin").Index("public_paths", i)
		j := slices.IndexFunc(all, func(e Endpoint) bool { return e.Path == p })
		switch {
		case j < 0:
			errs = append(errs, at.Errorf("no admin endpoint at %s; public paths may be %s", strconv.Quote(p), strings.Join(readable, ", ")))
		case all[j].Write:
			errs = append(errs, at.Errorf("%s %s changes the gateway and always needs a token with the write role", all[j].Method, p))
		default:
			acc.public[p] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return acc, nil
}

// Open reports whether the admin API needs no token: no tokens are set.
func (a *Access) Open() bool { return a == nil || len(a.tokens) == 0 }

func (a *Access) isPublic(path string) bool { return a != nil && a.public[path] }

// originAllowed reports whether o, an Origin header's value, is one of the
// allowed origins (compared as browsers serialize them, ignoring case).
func (a *Access) originAllowed(o string) bool {
	if a == nil {
		return false
	}
	return slices.ContainsFunc(a.origins, func(allowed string) bool { return strings.EqualFold(allowed, o) })
}

// lookup returns the index of the token whose SHA-256 digest equals that
// of presented, or -1. Hashing first gives every comparison the same
// length whatever was sent; each comparison takes constant time, and the
// loop visits every token without stopping at a match, choosing the index
// with a constant-time select, so the time taken depends only on the
// number of tokens: not on which one matched, nor on how much of one did.
// (Validation refuses duplicate tokens, so at most one matches.)
func (a *Access) lookup(presented string) int {
	d := sha256.Sum256([]byte(presented))
	found := -1
	for i := range a.tokens {
		eq := subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found
}

// bearer returns the token of the request's Authorization header, of the
// form "Bearer <token>" (the scheme in any case). present is false when
// there is no bearer token at all: no header, another scheme, or an empty
// token. A request with two Authorization headers presents an unusable
// credential: present, with an empty token that matches nothing.
func bearer(h http.Header) (tok string, present bool) {
	vs := h.Values("Authorization")
	switch len(vs) {
	case 0:
		return "", false
	case 1:
	default:
		return "", true
	}
	scheme, rest, _ := strings.Cut(strings.TrimLeft(vs[0], " \t"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.Trim(rest, " \t")
	return tok, tok != ""
}

// jsonOrNoBody reports whether a write request's body is acceptable: no
// body (no Content-Length, or 0, and no chunked body) and no Content-Type
// (or an empty one), or a Content-Type of application/json, with any
// parameters (charset). A form, text/plain or a body without a type is
// what a browser can send cross-site without a preflight; none is allowed.
func jsonOrNoBody(r *http.Request) bool {
	cts := r.Header.Values("Content-Type")
	switch {
	case len(cts) > 1:
		return false
	case len(cts) == 0 || strings.TrimSpace(cts[0]) == "":
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(cts[0])
	return err == nil && mt == "application/json"
}
