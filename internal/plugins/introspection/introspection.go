// Package introspection implements the oauth2_introspection plugin: the
// gateway checks opaque OAuth 2.0 access tokens with the authorization
// server's RFC 7662 introspection endpoint.
//
// The token comes from the Authorization header (Bearer), or from a
// configured cookie or query parameter. Results are cached by the token's
// SHA-256 digest, never by the token: an active result until the token's
// exp or ttl, whichever comes first, an inactive one for negative_ttl.
// Concurrent requests with the same uncached token share one call. The
// cache belongs to the endpoint and client_id, not to a route or a config
// snapshot, so reloads keep it warm.
//
// Like every authentication plugin it records its verdict in the Exchange
// and never refuses by itself; the auth gate answers. When the endpoint is
// down, slow or answers nonsense, tokens already cached keep working until
// their entry expires and other tokens get 503 with Retry-After, not 401:
// the caller's token may be fine.
package introspection

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// Name is the plugin's YAML key.
const Name = "oauth2_introspection"

// Registration declares the oauth2_introspection pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseAuthenticate,
		Spec:  newSpec,
		Build: func(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
			return build(s.(*Spec), env, time.Now)
		},
	}
}

// The challenges and failures the plugin records.
const (
	challengeMissing = `Bearer realm="portico"`
	challengeInvalid = `Bearer realm="portico", error="invalid_token"`
)

var (
	failMissing = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeMissing,
		Detail: "a bearer token is required"}
	failMalformed = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeInvalid,
		Detail: "the bearer token is malformed or too large", Presented: true}
	failInactive = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeInvalid,
		Detail: "the token is not active", Presented: true}
	failIssuer = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeInvalid,
		Detail: "the token was issued by another issuer", Presented: true}
	failAudience = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeInvalid,
		Detail: "the token is not meant for this audience", Presented: true}
	failConsumer = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: challengeInvalid,
		Detail: "the token does not belong to a known consumer", Presented: true}
	failUnavailable = pipeline.AuthFailure{Status: http.StatusServiceUnavailable, RetryAfter: "5",
		Detail: "the token could not be verified; try again", Presented: true}
)

// handler is one route's compiled pipeline.
type handler struct {
	next      http.Handler
	store     *store
	ep        *endpoint
	now       func() time.Time
	log       *slog.Logger
	consumers *consumer.Registry

	ttl, negTTL   time.Duration
	scopes        []string
	failScope     pipeline.AuthFailure
	issuer        string
	audience      string
	cookie, query string
	consumerClaim string
	hide          bool
}

// storeKey is the Shared key of the token cache of spec's endpoint and
// client.
func storeKey(spec *Spec) pipeline.Key[*store] {
	return pipeline.NewKey[*store]("introspection:" + spec.Endpoint + "|" + spec.ClientID)
}

// build compiles spec; now is the clock (time.Now outside tests).
func build(spec *Spec, env *pipeline.BuildEnv, now func() time.Time) (pipeline.Middleware, error) {
	shared := env.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	st := pipeline.Get(shared, storeKey(spec), func() *store { return newStore(spec.MaxCacheEntries) })
	st.setMax(spec.MaxCacheEntries)
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	consumers := env.Consumers
	if consumers == nil {
		consumers, _ = consumer.New(nil)
	}
	h := handler{
		store: st,
		ep: &endpoint{url: spec.Endpoint, auth: basicAuth(spec.ClientID, spec.ClientSecret.Value()),
			timeout: spec.Timeout.D()},
		now:           now,
		log:           log.With("plugin", Name, "route", env.Route),
		consumers:     consumers,
		ttl:           spec.TTL.D(),
		negTTL:        spec.NegativeTTL.D(),
		scopes:        spec.RequiredScopes,
		issuer:        spec.Issuer,
		audience:      spec.Audience,
		cookie:        spec.Cookie,
		query:         spec.Query,
		consumerClaim: spec.ConsumerClaim,
		hide:          spec.HideCredentials,
	}
	if len(h.scopes) > 0 {
		want := strings.Join(h.scopes, " ")
		h.failScope = pipeline.AuthFailure{Status: http.StatusForbidden,
			Challenge: `Bearer realm="portico", error="insufficient_scope", scope="` + want + `"`,
			Detail:    "the token lacks a required scope: " + want, Presented: true}
	}
	return func(next http.Handler) http.Handler {
		hh := h
		hh.next = next
		return &hh
	}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := pipeline.FromContext(r.Context())
	if ex == nil { // outside the gateway's edge there is nowhere to record a verdict
		h.next.ServeHTTP(w, r)
		return
	}
	if h.tokens(r) > 1 {
		// Two tokens: whichever were checked, the other would go
		// upstream unverified beside it.
		problem.Write(w, r, http.StatusBadRequest, "", "the request carries more than one access token; send exactly one")
		return
	}
	h.authenticate(ex, r)
	h.next.ServeHTTP(w, r)
}

// authenticate records this plugin's verdict in ex.
func (h *handler) authenticate(ex *pipeline.Exchange, r *http.Request) {
	tok, src := h.token(r)
	if src == srcNone {
		ex.AuthFailed(failMissing)
		return
	}
	if !validToken(tok) {
		ex.AuthFailed(failMalformed)
		return
	}
	key := sha256.Sum256([]byte(tok))
	now := h.now()
	res, err := h.store.get(r.Context(), key, now,
		func() (*result, error) {
			return h.store.client.introspect(context.WithoutCancel(r.Context()), h.ep, tok)
		},
		h.cacheFor)
	if err != nil {
		if err != errWaitAborted {
			h.log.Warn("token introspection failed", "endpoint", h.ep.url, "error", err.Error())
		}
		ex.AuthFailed(failUnavailable)
		return
	}
	if !res.active || !res.exp.IsZero() && !now.Before(res.exp) {
		ex.AuthFailed(failInactive)
		return
	}
	if h.issuer != "" && res.issuer != h.issuer {
		ex.AuthFailed(failIssuer)
		return
	}
	if h.audience != "" && !contains(res.audience, h.audience) {
		ex.AuthFailed(failAudience)
		return
	}
	for _, s := range h.scopes {
		if !contains(res.scopes, s) {
			ex.AuthFailed(h.failScope)
			return
		}
	}
	var c *consumer.Consumer
	if h.consumerClaim != "" {
		name, _ := res.claims[h.consumerClaim].(string)
		var ok bool
		if c, ok = h.consumers.ByName(name); !ok || name == "" {
			ex.AuthFailed(failConsumer)
			return
		}
	}
	if h.hide {
		h.hideToken(r, src)
	}
	if ex.Subject == "" {
		ex.Subject = res.subject
	}
	if ex.Claims == nil {
		ex.Claims = res.claims
	}
	ex.AuthPassed(c, res.credential)
}

// cacheFor returns how long res may be served from the cache.
func (h *handler) cacheFor(res *result, now time.Time) time.Duration {
	if !res.active {
		return h.negTTL
	}
	d := h.ttl
	if !res.exp.IsZero() {
		left := res.exp.Sub(now)
		if left <= 0 {
			return h.negTTL // active but expired: refused, like an inactive token
		}
		d = min(d, left)
	}
	return d
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
