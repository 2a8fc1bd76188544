package telemetry

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counter is one counter series, resolved at compile time. The zero
// Counter records nothing.
type Counter struct{ c prometheus.Counter }

// Inc adds one.
func (c Counter) Inc() {
	if c.c != nil {
		c.c.Inc()
	}
}

// RateLimitDecisions counts the decisions of one limit on one route. Each
// result's series is created by its first decision, so a limit that never
// refuses shows no "limited" series. The zero value records nothing.
type RateLimitDecisions struct {
	allowed, limited func() prometheus.Counter
}

// RateLimitDecisions returns the decision counters of limit on route
// (limit "concurrency" for concurrency refusals). Call it at compile time,
// once per route and limit.
func (t *Telemetry) RateLimitDecisions(route, limit string) RateLimitDecisions {
	if t == nil {
		return RateLimitDecisions{}
	}
	v := t.counters[rateLimitDecisions]
	return RateLimitDecisions{
		allowed: sync.OnceValue(func() prometheus.Counter { return v.WithLabelValues(route, limit, "allowed") }),
		limited: sync.OnceValue(func() prometheus.Counter { return v.WithLabelValues(route, limit, "limited") }),
	}
}

// Record counts one decision: allowed, or limited.
func (d RateLimitDecisions) Record(allowed bool) {
	c := d.limited
	if allowed {
		c = d.allowed
	}
	if c != nil {
		c().Inc()
	}
}

// RateLimitStore times the rate limiter's decisions and counts those the
// store failed to take. The zero value records nothing.
type RateLimitStore struct {
	errors   prometheus.Counter
	duration prometheus.Observer
}

// RateLimitStore returns the store handles. Their series exist from the
// first call on, so call it when a rate limiter is built.
func (t *Telemetry) RateLimitStore() RateLimitStore {
	if t == nil {
		return RateLimitStore{}
	}
	return RateLimitStore{
		errors:   t.counters[rateLimitStoreErrors].WithLabelValues(),
		duration: t.histograms[rateLimitStoreDuration].WithLabelValues(),
	}
}

// Observe records one decision that took d and failed with err (nil: it
// did not fail).
func (s RateLimitStore) Observe(d time.Duration, err error) {
	if s.duration == nil {
		return
	}
	s.duration.Observe(d.Seconds())
	if err != nil {
		s.errors.Inc()
	}
}

// CacheRoute counts one cached route's lookups by result, its requests
// that waited for a concurrent fetch, and the failures of its store. The
// zero value records nothing.
type CacheRoute struct {
	Hit, Miss, Stale, Bypass, Revalidated Counter
	Coalesced                             Counter
	StoreErrors                           Counter
}

// CacheRoute returns the handles of route, whose store is "memory" or
// "redis". Every series exists from the call on, at 0. Call it at compile
// time.
func (t *Telemetry) CacheRoute(route, store string) CacheRoute {
	if t == nil {
		return CacheRoute{}
	}
	req := t.counters[cacheRequests]
	return CacheRoute{
		Hit:         Counter{req.WithLabelValues(route, "hit")},
		Miss:        Counter{req.WithLabelValues(route, "miss")},
		Stale:       Counter{req.WithLabelValues(route, "stale")},
		Bypass:      Counter{req.WithLabelValues(route, "bypass")},
		Revalidated: Counter{req.WithLabelValues(route, "revalidated")},
		Coalesced:   Counter{t.counters[cacheCoalesced].WithLabelValues(route)},
		StoreErrors: Counter{t.counters[cacheStoreErrors].WithLabelValues(store)},
	}
}

// ACMEOrders counts ACME certificate orders by result. The zero value
// records nothing.
type ACMEOrders struct {
	OK, Failed Counter
}

// ACMEOrders returns the order counters; both series exist from the
// call on, at 0.
func (t *Telemetry) ACMEOrders() ACMEOrders {
	if t == nil {
		return ACMEOrders{}
	}
	v := t.counters[acmeOrders]
	return ACMEOrders{OK: Counter{v.WithLabelValues("ok")}, Failed: Counter{v.WithLabelValues("failed")}}
}

// Histogram is one histogram series, resolved at compile time. The zero
// Histogram records nothing.
type Histogram struct{ o prometheus.Observer }

// Observe records one duration.
func (h Histogram) Observe(d time.Duration) {
	if h.o != nil {
		h.o.Observe(d.Seconds())
	}
}

// ForwardAuthRoute counts one route's forward_auth decisions by result and
// times its calls to the authorization service. The zero value records
// nothing.
type ForwardAuthRoute struct {
	Admitted, Refused, Error      Counter
	CachedAdmitted, CachedRefused Counter
	// Duration times each call to the authorization service.
	Duration Histogram
}

// ForwardAuthRoute returns the handles of route. Every series exists from
// the call on, at 0. Call it at compile time.
func (t *Telemetry) ForwardAuthRoute(route string) ForwardAuthRoute {
	if t == nil {
		return ForwardAuthRoute{}
	}
	v := t.counters[forwardAuthDecisions]
	return ForwardAuthRoute{
		Admitted:       Counter{v.WithLabelValues(route, "admitted")},
		Refused:        Counter{v.WithLabelValues(route, "refused")},
		Error:          Counter{v.WithLabelValues(route, "error")},
		CachedAdmitted: Counter{v.WithLabelValues(route, "cached_admitted")},
		CachedRefused:  Counter{v.WithLabelValues(route, "cached_refused")},
		Duration:       Histogram{t.histograms[forwardAuthDuration].WithLabelValues(route)},
	}
}
