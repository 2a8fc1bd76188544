package pipeline

import (
	"context"
	"errors"

	"github.com/portico-gateway/portico/internal/consumer"
	"net/netip"
	"time"
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
	// Failure is what to answer if the request is not admitted.
	Failure *AuthFailure
}

// AuthFailure is an authentication plugin's reason to refuse a request.
type AuthFailure struct {
	// Status is 401 (no or bad credential), 403 (insufficient scope) or 503
	// (the credential could not be checked: identity provider down).
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
