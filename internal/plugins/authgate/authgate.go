// Package authgate implements the auth plugin: the gate behind a route's
// authentication plugins (jwt, key_auth, basic_auth, ...). Those plugins
// only record what they found in the request's Exchange; the gate admits
// the request when any one of them (mode "any", the default) or every one
// of them (mode "all") authenticated it, or else admits it as the route's
// anonymous consumer when one is configured, or else refuses it with the
// most relevant failure: a presented but wrong credential is reported
// before a missing one. A failure is answered with problem JSON, or with
// the complete response the plugin rendered (forward_auth passes on its
// authorization service's own answer, a redirect to a login page say).
//
// A plugin that could not check the request and is set to fail open
// records an unchecked verdict: it counts as passing for the mode, but a
// request admitted on unchecked verdicts alone is not authenticated. It
// gets the anonymous consumer when the route has one, and otherwise no
// identity.
//
// On admission the gate tells the upstream who the caller is with the
// identity headers (X-Consumer-ID, X-Consumer-Name, X-Consumer-Groups,
// X-User-ID, X-Anonymous-Consumer by default), after the headers the
// passing plugins learned about the caller (forward_auth's
// response_headers; never set for an anonymous or unchecked admission).
// The gateway removes client-sent copies of all those headers from every
// request, so no client can forge them.
//
// The gateway adds the gate with its defaults to every route that has an
// authentication plugin; configure it only to change the mode, the
// anonymous consumer or the header names.
package authgate

import (
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Name is the plugin's config key.
const Name = "auth"

// Modes of the gate.
const (
	ModeAny = "any"
	ModeAll = "all"
)

// Spec configures the auth gate.
type Spec struct {
	// Mode is "any" (default: one passing authentication plugin admits the
	// request) or "all" (every authentication plugin of the route must
	// pass).
	Mode string `yaml:"mode"`
	// Anonymous names the consumer a request is admitted as when it
	// presents no valid credential. Default "": such requests are refused.
	Anonymous string `yaml:"anonymous"`
	// Headers name the identity headers set toward the upstream.
	Headers Headers `yaml:"headers"`
}

// Headers are the names of the identity headers the gate sets.
type Headers struct {
	// ConsumerID carries the consumer's id. Default X-Consumer-ID.
	ConsumerID string `yaml:"consumer_id"`
	// ConsumerName carries the consumer's name. Default X-Consumer-Name.
	ConsumerName string `yaml:"consumer_name"`
	// ConsumerGroups carries the consumer's groups, joined with ", ", when
	// it has any. Default X-Consumer-Groups.
	ConsumerGroups string `yaml:"consumer_groups"`
	// UserID carries the authenticated user (a token's subject), when there
	// is one. Default X-User-ID.
	UserID string `yaml:"user_id"`
	// Anonymous is "true" when the request was admitted as the anonymous
	// consumer. Default X-Anonymous-Consumer.
	Anonymous string `yaml:"anonymous"`
}

var _ pipeline.Spec = (*Spec)(nil)

// DefaultSpec returns the gate's defaults.
func DefaultSpec() *Spec {
	return &Spec{
		Mode: ModeAny,
		Headers: Headers{
			ConsumerID:     "X-Consumer-ID",
			ConsumerName:   "X-Consumer-Name",
			ConsumerGroups: "X-Consumer-Groups",
			UserID:         "X-User-ID",
			Anonymous:      "X-Anonymous-Consumer",
		},
	}
}

func (h *Headers) list() []string {
	return []string{h.ConsumerID, h.ConsumerName, h.ConsumerGroups, h.UserID, h.Anonymous}
}

var headerKeys = []string{"consumer_id", "consumer_name", "consumer_groups", "user_id", "anonymous"}

// Validate checks the mode and the header names.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	if s.Mode != ModeAny && s.Mode != ModeAll {
		errs = append(errs, p.Key("mode").Errorf(`must be "any" or "all"`))
	}
	seen := make(map[string]string)
	for i, h := range s.Headers.list() {
		hp := p.Key("headers").Key(headerKeys[i])
		if !httpsyntax.IsToken(h) {
			errs = append(errs, hp.Errorf("must be a header name like X-Consumer-ID"))
			continue
		}
		c := textproto.CanonicalMIMEHeaderKey(h)
		if other, dup := seen[c]; dup {
			errs = append(errs, hp.Errorf("header %s is already used for headers.%s", h, other))
			continue
		}
		seen[c] = headerKeys[i]
	}
	return errors.Join(errs...)
}

// Registration declares the auth pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:            Name,
		Phase:           pipeline.PhaseAuthGate,
		Spec:            func() pipeline.Spec { return DefaultSpec() },
		Build:           build,
		IdentityHeaders: identityHeaders,
		Implicit:        pipeline.WithAuthentication,
	}
}

func identityHeaders(s pipeline.Spec) []string { return s.(*Spec).Headers.list() }

type gate struct {
	all                               bool
	anonymous                         *consumer.Consumer
	hID, hName, hGroups, hUser, hAnon string
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	g := &gate{
		all:     spec.Mode == ModeAll,
		hID:     textproto.CanonicalMIMEHeaderKey(spec.Headers.ConsumerID),
		hName:   textproto.CanonicalMIMEHeaderKey(spec.Headers.ConsumerName),
		hGroups: textproto.CanonicalMIMEHeaderKey(spec.Headers.ConsumerGroups),
		hUser:   textproto.CanonicalMIMEHeaderKey(spec.Headers.UserID),
		hAnon:   textproto.CanonicalMIMEHeaderKey(spec.Headers.Anonymous),
	}
	if spec.Anonymous != "" {
		c, ok := env.Consumers.ByName(spec.Anonymous)
		if !ok {
			return nil, errors.New("anonymous: unknown consumer " + quote(spec.Anonymous) + "; it must be listed in consumers")
		}
		anon := *c
		anon.Anonymous = true
		g.anonymous = &anon
	}
	return g.middleware, nil
}

func quote(s string) string { return `"` + s + `"` }

func (g *gate) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex == nil || ex.Auth.Tried == 0 {
			next.ServeHTTP(w, r)
			return
		}
		// Unchecked verdicts (a plugin that fails open) let the request
		// through for the mode, but authenticate nobody.
		passed, unchecked := ex.Auth.Passed, ex.Auth.Unchecked
		admitted := passed+unchecked > 0
		if g.all {
			admitted = passed+unchecked == ex.Auth.Tried
		}
		switch {
		case !admitted && g.anonymous == nil:
			g.refuse(w, r, ex.Auth.Failure)
			return
		case !admitted || passed == 0:
			// Not authenticated: the anonymous consumer, or, when only
			// unchecked verdicts admitted the request and the route has
			// no anonymous consumer, no identity at all.
			ex.Consumer, ex.Credential, ex.Subject, ex.Claims = g.anonymous, "", "", nil
			ex.Auth.Headers = nil
		}
		g.setIdentity(r.Header, ex)
		next.ServeHTTP(w, r)
	})
}

func (g *gate) setIdentity(h http.Header, ex *pipeline.Exchange) {
	// The plugins' headers first: the gate's own names, below, win.
	for k, vs := range ex.Auth.Headers {
		h[k] = vs
	}
	if ex.Subject != "" {
		h[g.hUser] = []string{ex.Subject}
	}
	c := ex.Consumer
	if c == nil {
		// A token from an identity provider names a user, not a consumer.
		return
	}
	h[g.hID] = []string{c.ID}
	h[g.hName] = []string{c.Name}
	if c.GroupsHeader != "" {
		h[g.hGroups] = []string{c.GroupsHeader}
	}
	if c.Anonymous {
		h[g.hAnon] = []string{"true"}
	}
}

func (g *gate) refuse(w http.ResponseWriter, r *http.Request, f *pipeline.AuthFailure) {
	if f == nil {
		problem.Write(w, r, http.StatusUnauthorized, "", "authentication required")
		return
	}
	if f.Response != nil {
		writeResponse(w, r, f.Response)
		return
	}
	status := f.Status
	if status == 0 {
		status = http.StatusUnauthorized
	}
	if f.Challenge != "" && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		w.Header().Set("WWW-Authenticate", f.Challenge)
	}
	if status == http.StatusServiceUnavailable && f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	problem.Write(w, r, status, "", f.Detail)
}

// writeResponse writes a refusal an authentication plugin rendered itself
// (an authorization service's own answer, passed on): its status, its
// headers (copied: the response may be shared with a cache), a
// Content-Length for its body, and the body unless the request is HEAD.
func writeResponse(w http.ResponseWriter, r *http.Request, resp *pipeline.Response) {
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = slices.Clone(vs)
	}
	h["Content-Length"] = []string{strconv.Itoa(len(resp.Body))}
	w.WriteHeader(resp.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(resp.Body)
	}
}
