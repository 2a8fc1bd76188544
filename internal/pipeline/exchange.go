package pipeline

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/portico-gateway/portico/internal/consumer"
)

// Exchange holds the per-request values that travel down the chain: one
// typed struct under one context key, created by the gateway's edge before
// any phase runs. Plugins read and fill it; nothing else is put in the
// request context.
type Exchange struct {
	// Start is when the gateway began handling the request.
	Start time.Time
	// RequestID is the request's id ("" when the request_id plugin is off).
	RequestID string
	// ClientIP is the real client address: the peer, or the first untrusted
	// address in X-Forwarded-For when the peer is a trusted proxy.
	ClientIP netip.Addr
	// PeerTrusted reports whether the TCP peer is in trusted_proxies, so its
	// X-Forwarded-* headers may be kept.
	PeerTrusted bool
	// Route and Service name the matched route ("" when none matched).
	Route   string
	Service string
	// Params are the named captures of a regex path match.
	Params []Param
	// Path is the normalized escaped request path the route matched
	// (before strip_prefix or path_rewrite); "" outside a route.
	Path string
	// UpstreamPath is the escaped path (without query) the upstream receives:
	// the normalized request path after strip_prefix or path_rewrite.
	UpstreamPath string
	// UpstreamHost, when set (by request_transform), is the Host header the
	// upstream receives, overriding the service's host settings.
	UpstreamHost string
	// Upstream is the target that served the request ("host:port").
	Upstream string
	// Attempts counts the upstream attempts when the request was retried
	// (0 otherwise).
	Attempts int
	// UpstreamDuration is the time from sending the request upstream to the
	// end of the response body.
	UpstreamDuration time.Duration
	// Status and BytesOut describe what was written to the client; BytesIn
	// counts the request body bytes read. Maintained by the edge.
	Status   int
	BytesIn  int64
	BytesOut int64
	// Err is the upstream error, for the access log (never sent to clients).
	Err error

	// Consumer is the authenticated caller, or the route's anonymous
	// consumer; nil when the request is not authenticated.
	Consumer *consumer.Consumer
	// Credential identifies the credential that authenticated the request
	// ("key_auth:<first 12 hex digits of its SHA-256>", "jwt:<iss>/<sub>",
	// "basic_auth:<user>"); never the secret itself.
	Credential string
	// Subject is the authenticated user (the JWT "sub" or the introspected
	// token's subject), forwarded as X-User-ID.
	Subject string
	// Claims are the verified token claims (JWT or introspection), nil
	// otherwise. Read-only.
	Claims map[string]any
	// Auth tracks the authentication plugins of the route.
	Auth AuthState
}

// AuthState records what the authentication plugins of a route found, so
// that the auth gate can admit the request when any one (or, by option, all)
// of them succeeded, and otherwise answer with the most relevant failure.
type AuthState struct {
	// Tried counts the authentication plugins that ran; Passed those that
	// authenticated the request.
	Tried, Passed int
	// Unchecked counts the plugins that could not check the request and
	// are set to let it through anyway (forward_auth with on_error:
	// fail_open while its authorization service is down). For the gate's
	// mode they count as passing, but they name nobody: a request that
	// only they admit is not authenticated, and gets the route's anonymous
	// consumer if it has one, or else no identity at all.
	Unchecked int
	// Failure is what to answer if the request is not admitted.
	Failure *AuthFailure
	// Headers are request headers that passing plugins learned about the
	// caller (forward_auth's response_headers). The gate sets them toward
	// the upstream when it admits the request as authenticated, never when
	// it admits it as the anonymous consumer or on Unchecked verdicts
	// alone. Read-only: the value slices may be shared with a cache, so
	// they are never changed in place.
	Headers http.Header
}

// AuthFailure is an authentication plugin's reason to refuse a request.
type AuthFailure struct {
	// Status is 401 (no or bad credential), 403 (insufficient scope) or 503
	// (the credential could not be checked: identity provider down); an
	// authorization service consulted by forward_auth may also answer
	// with another 3xx or 4xx (then in Response), and forward_auth refuses
	// with 413 a body too large to forward and with 502 an answer it cannot
	// pass on.
	Status int
	// Challenge is the WWW-Authenticate value for a 401 (or a 403 with
	// insufficient_scope).
	Challenge string
	// RetryAfter is the Retry-After value for a 503, in seconds.
	RetryAfter string
	// Detail is written for the client (problem JSON detail).
	Detail string
	// Presented reports whether the caller sent a credential of this kind;
	// a failure with a credential is reported before a missing one.
	Presented bool
	// Response, when set, is the complete answer the gate sends instead of
	// problem JSON: forward_auth passes on its authorization service's own
	// refusal (a redirect to a login page, a 401 with the service's
	// challenge and body). Challenge and RetryAfter are then not used.
	// Read-only: it may be shared with a cache.
	Response *Response
}

// Response is an answer rendered ahead of time, written as it is: the
// status, the headers (Content-Length is set from Body) and the body
// (not for HEAD requests).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// AuthPassed records a successful authentication by one plugin. The first
// plugin to succeed sets the consumer and credential.
func (ex *Exchange) AuthPassed(c *consumer.Consumer, credential string) {
	ex.Auth.Tried++
	ex.Auth.Passed++
	if ex.Consumer == nil {
		ex.Consumer, ex.Credential = c, credential
	}
}

// AuthPassedWith is AuthPassed for a plugin that also learned request
// headers about the caller, for the gate to set toward the upstream (see
// AuthState.Headers). h is kept, not copied; when an earlier plugin
// recorded headers too, its values win for the names both set.
func (ex *Exchange) AuthPassedWith(c *consumer.Consumer, credential string, h http.Header) {
	ex.AuthPassed(c, credential)
	if len(h) == 0 {
		return
	}
	if ex.Auth.Headers == nil {
		ex.Auth.Headers = h
		return
	}
	merged := ex.Auth.Headers.Clone()
	for k, vs := range h {
		if _, ok := merged[k]; !ok {
			merged[k] = vs
		}
	}
	ex.Auth.Headers = merged
}

// AuthUnchecked records a plugin that could not check the request and lets
// it through unauthenticated (see AuthState.Unchecked).
func (ex *Exchange) AuthUnchecked() {
	ex.Auth.Tried++
	ex.Auth.Unchecked++
}

// AuthFailed records one plugin's failure. A failure with a presented
// credential replaces an earlier one without; otherwise the first stays.
func (ex *Exchange) AuthFailed(f AuthFailure) {
	ex.Auth.Tried++
	if ex.Auth.Failure == nil || f.Presented && !ex.Auth.Failure.Presented {
		ex.Auth.Failure = &f
	}
}

// ErrSlowBody ends a request body that the client sent too slowly: no
// bytes for server.read_body_timeout, or on average fewer than
// server.min_body_rate bytes a second. The proxy answers it with 408.
var ErrSlowBody = errors.New("the request body arrived too slowly")

// Param is one named capture of a regex path.
type Param struct{ Name, Value string }

type exchangeKey struct{}

// NewContext returns ctx carrying ex.
func NewContext(ctx context.Context, ex *Exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, ex)
}

// FromContext returns the request's Exchange, or nil outside a request.
func FromContext(ctx context.Context) *Exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*Exchange)
	return ex
}
