// Package keyauth implements the key_auth plugin: callers identify
// themselves with an API key sent in a header (X-API-Key by default) or,
// optionally, a query parameter. The key is looked up by its SHA-256
// digest among the consumers' api_keys, so the lookup's timing does not
// depend on how much of a key matched.
//
// Like every authentication plugin, key_auth only records what it found;
// the auth gate that follows it admits or refuses the request.
package keyauth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Name is the plugin's config key.
const Name = "key_auth"

// Challenge is the WWW-Authenticate value sent with a 401.
const Challenge = `APIKey realm="portico"`

// Spec configures key_auth.
type Spec struct {
	// Header is the request header that carries the key. Default
	// X-API-Key; "" to accept the key only in the query.
	Header string `yaml:"header"`
	// Query, when set, is a query parameter that may carry the key (for
	// example "apikey") when the header is absent. Default "": keys in URLs
	// end up in logs, so this is off unless asked for.
	Query string `yaml:"query"`
	// HideCredentials removes the key from the request before it is
	// forwarded upstream. Default false.
	HideCredentials bool `yaml:"hide_credentials"`
}

var _ pipeline.Spec = (*Spec)(nil)

// ForwardedQueryParameter names the query parameter that carries the key
// and is forwarded upstream with it ("" when the key is read from the
// header only, or removed before forwarding).
func (s *Spec) ForwardedQueryParameter() string {
	if s.HideCredentials {
		return ""
	}
	return s.Query
}

// Validate checks that the key has somewhere to come from.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	if s.Header == "" && s.Query == "" {
		errs = append(errs, p.Key("header").Errorf("header or query must be set"))
	}
	if s.Header != "" && !httpsyntax.IsToken(s.Header) {
		errs = append(errs, p.Key("header").Errorf("must be a header name like X-API-Key"))
	}
	if strings.ContainsAny(s.Query, "&=#?+% ") || strings.ContainsFunc(s.Query, func(r rune) bool { return r < 0x21 || r >= 0x7f }) {
		errs = append(errs, p.Key("query").Errorf("must be a plain query parameter name like apikey"))
	}
	return errors.Join(errs...)
}

// Registration declares the key_auth pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseAuthenticate,
		Spec:  func() pipeline.Spec { return &Spec{Header: "X-API-Key"} },
		Build: build,
	}
}

var (
	missing = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "no API key found in request"}
	invalid = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "invalid API key", Presented: true}
)

type keyAuth struct {
	header    string // canonical, or ""
	query     string
	hide      bool
	consumers *consumer.Registry
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	k := &keyAuth{query: spec.Query, hide: spec.HideCredentials, consumers: env.Consumers}
	if spec.Header != "" {
		k.header = textproto.CanonicalMIMEHeaderKey(spec.Header)
	}
	return k.middleware, nil
}

func (k *keyAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex == nil {
			next.ServeHTTP(w, r)
			return
		}
		if k.count(r) > 1 {
			// Two keys: whichever were checked, the other would go
			// upstream unverified beside it.
			problem.Write(w, r, http.StatusBadRequest, "", "the request carries more than one API key; send exactly one")
			return
		}
		key := k.find(r)
		switch {
		case key == "":
			ex.AuthFailed(missing)
		default:
			d := sha256.Sum256([]byte(key))
			if c, ok := k.consumers.ByKeyDigest(d); ok {
				ex.AuthPassed(c, CredentialID(d))
			} else {
				ex.AuthFailed(invalid)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// count returns how many API keys r carries: header lines (and values a
// comma would join) plus query parameters of the key's name.
func (k *keyAuth) count(r *http.Request) int {
	n := 0
	if k.header != "" {
		n = len(r.Header[k.header])
	}
	if k.query != "" && r.URL.RawQuery != "" {
		for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
			if pname, _, _ := strings.Cut(part, "="); paramIs(pname, k.query) {
				n++
			}
		}
	}
	return n
}

// find returns the key from the header, else from the query, and removes
// it from the request when hide_credentials is set.
func (k *keyAuth) find(r *http.Request) string {
	if k.header != "" {
		if vs := r.Header[k.header]; len(vs) > 0 && vs[0] != "" {
			if k.hide {
				delete(r.Header, k.header)
			}
			return vs[0]
		}
	}
	if k.query == "" || r.URL.RawQuery == "" {
		return ""
	}
	key, rest, found := takeParam(r.URL.RawQuery, k.query)
	if found && k.hide {
		r.URL.RawQuery = rest
	}
	return key
}

// takeParam returns the unescaped value of the first parameter called name
// in the raw query, and the raw query without every parameter of that
// name; the other parameters are kept byte for byte.
func takeParam(raw, name string) (value, rest string, found bool) {
	var b strings.Builder
	kept := 0
	for part := range strings.SplitSeq(raw, "&") {
		pname, pval, _ := strings.Cut(part, "=")
		if !paramIs(pname, name) {
			if kept > 0 {
				b.WriteByte('&')
			}
			b.WriteString(part)
			kept++
			continue
		}
		if !found {
			if un, err := url.QueryUnescape(pval); err == nil {
				value = un
			}
			found = true
		}
	}
	if !found {
		return "", raw, false
	}
	return value, b.String(), true
}

// paramIs reports whether the raw parameter name pname is name.
func paramIs(pname, name string) bool {
	if pname == name {
		return true
	}
	if !strings.ContainsAny(pname, "%+") {
		return false
	}
	un, err := url.QueryUnescape(pname)
	return err == nil && un == name
}

// CredentialID is the credential id of an API key with SHA-256 digest d:
// "key_auth:" and the digest's first 12 hex digits. It never reveals the
// key.
func CredentialID(d [sha256.Size]byte) string {
	var buf [len("key_auth:") + 12]byte
	n := copy(buf[:], "key_auth:")
	hex.Encode(buf[n:], d[:6])
	return string(buf[:])
}
