package telemetry

// This file declares every metric family Portico exports, and nothing
// else does: New registers each family in families once, and the rest of
// the code reaches them only through the handles and the Emitter of this
// package. Names, help texts, label names and buckets are what dashboards
// and docs/operations.md rely on; change them only on purpose.
//
// Cardinality notes give the number of series a family can have: routes
// and services are bounded by the config, targets by the services' target
// lists, limits by the rate_limit settings and tiers.

// kind is how a family is exposed and how its values are kept.
type kind uint8

const (
	// counter, gauge and histogram families are kept by Portico:
	// handles resolved at compile time update them on the request path.
	counter kind = iota
	gauge
	histogram
	// sampledGauge and sampledCounter families hold no state: a Source
	// reports their current values at scrape time through an Emitter.
	sampledGauge
	sampledCounter
)

// Family declares one metric family: its name, help text, type, label
// names and, for a histogram, its buckets. The values live in this file;
// other packages name only the sampled families, when they Emit.
type Family struct {
	name    string
	help    string
	kind    kind
	labels  []string
	buckets []float64
}

// sampled reports whether f's values come from a Source at scrape time.
func (f *Family) sampled() bool { return f.kind == sampledGauge || f.kind == sampledCounter }

// durationBuckets are the request latency buckets in seconds, from 0.5 ms
// (a gateway hop to a local upstream) to 30 s (a slow upstream at the
// default response timeout).
var durationBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// rateLimitBuckets are the rate-limit decision latency buckets in seconds,
// from 10 µs (in memory) to 100 ms (a slow Redis).
var rateLimitBuckets = []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .025, .05, .1}

// Requests (handles: Telemetry.Route, InFlightAdd, Reload).
var (
	// requestsTotal counts answered requests. Labels: route and service
	// (one pair per configured route, plus "","" for requests that matched
	// no route), code_class (1xx … 5xx). Every route has its five series
	// from compile time on.
	requestsTotal = &Family{
		name:   "portico_requests_total",
		help:   "Requests answered, by route, service and status class.",
		kind:   counter,
		labels: []string{"route", "service", "code_class"},
	}
	// requestDuration is the time from the start of a request to the end
	// of its response. Labels: route, service (as requestsTotal); 15
	// buckets.
	requestDuration = &Family{
		name:    "portico_request_duration_seconds",
		help:    "Time from the start of a request to the end of its response.",
		kind:    histogram,
		labels:  []string{"route", "service"},
		buckets: durationBuckets,
	}
	// upstreamDuration is the time spent on upstream calls, observed only
	// for requests that reached an upstream. Labels: route, service (as
	// requestsTotal); 15 buckets.
	upstreamDuration = &Family{
		name:    "portico_upstream_duration_seconds",
		help:    "Time spent waiting for and reading upstream responses.",
		kind:    histogram,
		labels:  []string{"route", "service"},
		buckets: durationBuckets,
	}
	// requestsInFlight is the number of requests being handled. No
	// labels: one series.
	requestsInFlight = &Family{
		name: "portico_requests_in_flight",
		help: "Requests being handled right now.",
		kind: gauge,
	}
	// configReloads counts config loads. Labels: result ("ok" or
	// "failed"): two series.
	configReloads = &Family{
		name:   "portico_config_reloads_total",
		help:   "Config reloads, by result.",
		kind:   counter,
		labels: []string{"result"},
	}
	// configLastSuccess is the Unix time of the last successful config
	// load. No labels: one series.
	configLastSuccess = &Family{
		name: "portico_config_last_reload_success_timestamp_seconds",
		help: "Unix time of the last successful config load.",
		kind: gauge,
	}
)

// Rate limiting (handles: Telemetry.RateLimitDecisions, RateLimitStore).
var (
	// rateLimitDecisions counts decisions. Labels: route (configured
	// routes), limit (the limit's name, "tier.<tier>.<name>" for a tier's
	// limits, "concurrency" for concurrency refusals), result ("allowed"
	// or "limited"). A series appears with its first decision.
	rateLimitDecisions = &Family{
		name:   "portico_ratelimit_decisions_total",
		help:   "Rate limit decisions by route, limit and result (allowed or limited).",
		kind:   counter,
		labels: []string{"route", "limit", "result"},
	}
	// rateLimitStoreErrors counts decisions the store could not take. No
	// labels: one series, from the first rate limiter built.
	rateLimitStoreErrors = &Family{
		name: "portico_ratelimit_store_errors_total",
		help: "Rate limit decisions that failed in the store.",
		kind: counter,
	}
	// rateLimitStoreDuration is the time of one decision, in memory or in
	// Redis. No labels: one histogram of 10 buckets, from the first rate
	// limiter built.
	rateLimitStoreDuration = &Family{
		name:    "portico_ratelimit_store_duration_seconds",
		help:    "Time to take one rate limit decision.",
		kind:    histogram,
		buckets: rateLimitBuckets,
	}
)

// Cache (handles: Telemetry.CacheRoute; sampled: CacheStoredBytes,
// CacheEvictions).
var (
	// cacheRequests counts cache lookups. Labels: route (routes with the
	// cache plugin), result ("hit", "miss", "stale", "bypass",
	// "revalidated"): five series per cached route from compile time on.
	cacheRequests = &Family{
		name:   "portico_cache_requests_total",
		help:   "Cache lookups by route and result (hit, miss, stale, bypass, revalidated).",
		kind:   counter,
		labels: []string{"route", "result"},
	}
	// cacheCoalesced counts requests that waited for a concurrent fetch of
	// the same key. Labels: route (routes with the cache plugin).
	cacheCoalesced = &Family{
		name:   "portico_cache_coalesced_total",
		help:   "Requests that waited for another request fetching the same response.",
		kind:   counter,
		labels: []string{"route"},
	}
	// cacheStoreErrors counts failed store calls. Labels: store ("memory"
	// or "redis"): at most two series.
	cacheStoreErrors = &Family{
		name:   "portico_cache_store_errors_total",
		help:   "Cache store operations that failed (treated as misses).",
		kind:   counter,
		labels: []string{"store"},
	}
	// CacheStoredBytes is the size of the memory cache store, read at
	// scrape time. No labels: one series, once a route uses the cache.
	CacheStoredBytes = &Family{
		name: "portico_cache_stored_bytes",
		help: "Bytes held by the memory cache store.",
		kind: sampledGauge,
	}
	// CacheEvictions is the memory cache store's eviction count, read at
	// scrape time. No labels: one series, once a route uses the cache.
	CacheEvictions = &Family{
		name: "portico_cache_evictions_total",
		help: "Entries evicted from the memory cache store to keep within its bound.",
		kind: sampledCounter,
	}
)

// Forward auth (handles: Telemetry.ForwardAuthRoute).
var (
	// forwardAuthDecisions counts forward_auth decisions. Labels: route
	// (routes with forward_auth), result ("admitted", "refused", "error",
	// "cached_admitted", "cached_refused"): five series per such route
	// from compile time on.
	forwardAuthDecisions = &Family{
		name:   "portico_forward_auth_decisions_total",
		help:   "Forward auth decisions by route and result (admitted, refused, error, cached_admitted, cached_refused).",
		kind:   counter,
		labels: []string{"route", "result"},
	}
	// forwardAuthDuration is the time of one call to the authorization
	// service, answered or failed (decisions from the cache make no call).
	// Labels: route (as forwardAuthDecisions); 15 buckets.
	forwardAuthDuration = &Family{
		name:    "portico_forward_auth_duration_seconds",
		help:    "Time of one call to a forward_auth authorization service.",
		kind:    histogram,
		labels:  []string{"route"},
		buckets: durationBuckets,
	}
)

// Upstreams (sampled: the upstream registry reports the live services at
// scrape time, so the request path pays nothing for them). Labels:
// service (the current config's services), target (each service's target
// URLs), state (the three breaker states).
var (
	// UpstreamTargetAvailable is 1 when a target may get traffic. Labels:
	// service, target: one series per target.
	UpstreamTargetAvailable = &Family{
		name:   "portico_upstream_target_available",
		help:   "1 when the target may get traffic (active checks pass, not ejected, breaker not open).",
		kind:   sampledGauge,
		labels: []string{"service", "target"},
	}
	// UpstreamTargetActiveHealthy is 1 when active checks pass. Labels:
	// service, target: one series per target.
	UpstreamTargetActiveHealthy = &Family{
		name:   "portico_upstream_target_active_healthy",
		help:   "1 when active health checks (if any) consider the target healthy.",
		kind:   sampledGauge,
		labels: []string{"service", "target"},
	}
	// UpstreamTargetEjected is 1 while outlier detection ejects a target.
	// Labels: service, target: one series per target.
	UpstreamTargetEjected = &Family{
		name:   "portico_upstream_target_ejected",
		help:   "1 while outlier detection has ejected the target.",
		kind:   sampledGauge,
		labels: []string{"service", "target"},
	}
	// UpstreamTargetInFlight is a target's requests in flight. Labels:
	// service, target: one series per target.
	UpstreamTargetInFlight = &Family{
		name:   "portico_upstream_target_in_flight",
		help:   "Requests the target is serving now.",
		kind:   sampledGauge,
		labels: []string{"service", "target"},
	}
	// UpstreamBreakerState is a breaker's state (0 closed, 1 open, 2
	// half-open). Labels: service, target ("" for the service breaker):
	// one series per breaker.
	UpstreamBreakerState = &Family{
		name:   "portico_upstream_breaker_state",
		help:   "Circuit breaker state: 0 closed, 1 open, 2 half-open (target is empty for the service breaker).",
		kind:   sampledGauge,
		labels: []string{"service", "target"},
	}
	// UpstreamBreakerTransitions counts breaker transitions by the state
	// entered. Labels: service, state ("closed", "open", "half_open"):
	// three series per service.
	UpstreamBreakerTransitions = &Family{
		name:   "portico_upstream_breaker_transitions_total",
		help:   "Circuit breaker transitions, by the state entered.",
		kind:   sampledCounter,
		labels: []string{"service", "state"},
	}
	// UpstreamRetries counts retried attempts. Labels: service.
	UpstreamRetries = &Family{
		name:   "portico_upstream_retries_total",
		help:   "Retried attempts.",
		kind:   sampledCounter,
		labels: []string{"service"},
	}
	// UpstreamFailedAttempts counts failed attempts. Labels: service.
	UpstreamFailedAttempts = &Family{
		name:   "portico_upstream_failed_attempts_total",
		help:   "Attempts that failed (connection failure, timeout or 5xx).",
		kind:   sampledCounter,
		labels: []string{"service"},
	}
	// UpstreamEjections counts outlier-detection ejections. Labels:
	// service.
	UpstreamEjections = &Family{
		name:   "portico_upstream_ejections_total",
		help:   "Targets ejected by outlier detection.",
		kind:   sampledCounter,
		labels: []string{"service"},
	}
)

// TLS certificates (handle: Telemetry.ACMEOrders; sampled:
// TLSCertificateExpiry).
var (
	// TLSCertificateExpiry is the time left until a served certificate
	// expires (its NotAfter), read at scrape time; negative once expired.
	// Labels: listener (TLS listeners), name (the certificate's first DNS
	// name, or the ACME domain): one series per certificate of each TLS
	// listener.
	TLSCertificateExpiry = &Family{
		name:   "portico_tls_certificate_expiry_seconds",
		help:   "Seconds until the certificate's NotAfter, by listener and certificate name (file and ACME certificates).",
		kind:   sampledGauge,
		labels: []string{"listener", "name"},
	}
	// acmeOrders counts ACME certificate orders (first issuance and
	// renewals). Labels: result ("ok" or "failed"): two series, once an
	// ACME manager exists.
	acmeOrders = &Family{
		name:   "portico_acme_orders_total",
		help:   "ACME certificate orders (issuance and renewal), by result.",
		kind:   counter,
		labels: []string{"result"},
	}
)

// families is every family above; New registers each exactly once.
var families = []*Family{
	requestsTotal, requestDuration, upstreamDuration, requestsInFlight, configReloads, configLastSuccess,
	rateLimitDecisions, rateLimitStoreErrors, rateLimitStoreDuration,
	cacheRequests, cacheCoalesced, cacheStoreErrors, CacheStoredBytes, CacheEvictions,
	forwardAuthDecisions, forwardAuthDuration,
	UpstreamTargetAvailable, UpstreamTargetActiveHealthy, UpstreamTargetEjected, UpstreamTargetInFlight,
	UpstreamBreakerState, UpstreamBreakerTransitions, UpstreamRetries, UpstreamFailedAttempts, UpstreamEjections,
	TLSCertificateExpiry, acmeOrders,
}
