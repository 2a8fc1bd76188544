package telemetry

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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
