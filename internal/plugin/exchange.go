package plugin

import (
	"context"
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
	// UpstreamPath is the escaped path (without query) the upstream receives:
	// the normalized request path after strip_prefix or path_rewrite.
	UpstreamPath string
	// Upstream is the target that served the request ("host:port").
	Upstream string
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
}

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
