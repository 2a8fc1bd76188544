package upstream

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// BreakerState is a circuit breaker's state.
type BreakerState int32

// Breaker states.
const (
	// BreakerClosed lets every request through and counts failures.
	BreakerClosed BreakerState = iota
	// BreakerOpen rejects every request until its open period ends.
	BreakerOpen
	// BreakerHalfOpen admits a few probe requests whose outcome closes or
	// reopens the breaker.
	BreakerHalfOpen
)

// String returns closed, open or half_open.
func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// probeRetryAfter is the wait a half-open breaker suggests to a request
// it turns away because its probes are all out.
const probeRetryAfter = time.Second

// Breaker is a circuit breaker. Closed, it counts failures: ConsecutiveFailures
// failed requests in a row, or an error ratio of at least ErrorRatio over
// the rolling Window with at least MinRequests requests, open it. Open, it
// rejects requests for OpenFor; then, half-open, it admits up to
// HalfOpenProbes probes at once. All probes of a round succeeding closes
// it with fresh counters; one failing reopens it for OpenFor.
//
// The closed path (Allow, then Done) is a few atomic operations; a mutex
// guards transitions and the half-open bookkeeping. A Breaker is safe for
// concurrent use; every method takes the current time so tests control
// the clock.
type Breaker struct {
	state     atomic.Int32 // BreakerState
	openUntil atomic.Int64 // unix nanoseconds; meaningful while open
	consec    atomic.Int64 // failures in a row while closed
	cfg       atomic.Pointer[breakerConfig]
	window    rolling // a: requests, b: failures; used when errorRatio > 0

	onChange func(from, to BreakerState)

	mu        sync.Mutex // transitions and the fields below
	probes    int        // probes out in this half-open round
	succeeded int        // probes of this round that succeeded
	lastProbe int64      // unix nanoseconds of the last probe admitted
}

// breakerConfig is the part of config.CircuitBreaker the breaker reads.
type breakerConfig struct {
	consecutive int64   // 0: off
	errorRatio  float64 // 0: off
	minRequests int64
	window      time.Duration
	openFor     time.Duration
	probes      int
}

func newBreakerConfig(c config.CircuitBreaker) *breakerConfig {
	bc := &breakerConfig{
		consecutive: int64(max(c.ConsecutiveFailures, 0)),
		errorRatio:  max(c.ErrorRatio, 0),
		minRequests: int64(max(c.MinRequests, 1)),
		window:      c.Window.D(),
		openFor:     c.OpenFor.D(),
		probes:      max(c.HalfOpenProbes, 1),
	}
	if bc.window < time.Millisecond {
		bc.window = time.Second
	}
	if bc.openFor <= 0 {
		bc.openFor = time.Duration(config.DefaultBreakerOpenFor)
	}
	return bc
}

// newBreaker returns a closed breaker for cfg (defaults applied). onChange,
// when not nil, is called on every state change, outside the breaker's
// lock, in the goroutine that caused it.
func newBreaker(cfg config.CircuitBreaker, onChange func(from, to BreakerState)) *Breaker {
	b := &Breaker{onChange: onChange}
	bc := newBreakerConfig(cfg)
	b.cfg.Store(bc)
	b.window.init(bc.window)
	return b
}

// reconfigure applies a reloaded config and keeps the state. A new window
// length empties the error-ratio window; an open period in force keeps its
// end.
func (b *Breaker) reconfigure(cfg config.CircuitBreaker) {
	bc := newBreakerConfig(cfg)
	old := b.cfg.Swap(bc)
	if old.window != bc.window {
		b.window.reset(bc.window)
	}
}

// Allow reports whether a request may go through at now. Closed, it
// always may. Open, it may not: retryAfter is the time left of the open
// period. Half-open, it may when a probe slot is free, and probe is then
// true: the caller must report the outcome with Done(now, true, failed).
// A probe whose outcome never comes is given up after OpenFor so the
// breaker cannot stay half-open for good.
func (b *Breaker) Allow(now time.Time) (probe bool, retryAfter time.Duration, ok bool) {
	if BreakerState(b.state.Load()) == BreakerClosed {
		return false, 0, true
	}
	n := now.UnixNano()
	if BreakerState(b.state.Load()) == BreakerOpen {
		if left := b.openUntil.Load() - n; left > 0 {
			return false, time.Duration(left), false
		}
	}
	cfg := b.cfg.Load()
	changed := false
	b.mu.Lock()
	switch BreakerState(b.state.Load()) {
	case BreakerClosed:
		b.mu.Unlock()
		return false, 0, true
	case BreakerOpen:
		if left := b.openUntil.Load() - n; left > 0 {
			b.mu.Unlock()
			return false, time.Duration(left), false
		}
		b.state.Store(int32(BreakerHalfOpen))
		b.probes, b.succeeded = 0, 0
		changed = true
	}
	if b.probes >= cfg.probes && n-b.lastProbe >= int64(cfg.openFor) {
		// The probes out have not reported for a whole open period:
		// treat them as lost and start a new round.
		b.probes, b.succeeded = 0, 0
	}
	if b.probes < cfg.probes {
		b.probes++
		b.lastProbe = n
		probe, ok = true, true
	} else {
		retryAfter = probeRetryAfter
	}
	b.mu.Unlock()
	if changed {
		b.notify(BreakerOpen, BreakerHalfOpen)
	}
	return probe, retryAfter, ok
}

// Done records the outcome of a request Allow admitted; probe is what
// Allow returned. Outcomes of requests admitted while closed count only
// while the breaker is still closed.
func (b *Breaker) Done(now time.Time, probe bool, failed bool) {
	if probe {
		b.doneProbe(now.UnixNano(), failed)
		return
	}
	if BreakerState(b.state.Load()) != BreakerClosed {
		return
	}
	cfg := b.cfg.Load()
	if !failed {
		if b.consec.Load() != 0 {
			b.consec.Store(0)
		}
		if cfg.errorRatio > 0 {
			if k := b.window.bucket(now.UnixNano()); k != nil {
				k.a.Add(1)
			}
		}
		return
	}
	n := now.UnixNano()
	trip := false
	if c := b.consec.Add(1); cfg.consecutive > 0 && c >= cfg.consecutive {
		trip = true
	}
	if cfg.errorRatio > 0 {
		if k := b.window.bucket(n); k != nil {
			k.a.Add(1)
			k.b.Add(1)
		}
		if !trip {
			requests, failures := b.window.sums(n)
			trip = requests >= cfg.minRequests && float64(failures) >= cfg.errorRatio*float64(requests)
		}
	}
	if trip {
		b.trip(n, BreakerClosed, cfg)
	}
}

// doneProbe records a probe's outcome.
func (b *Breaker) doneProbe(n int64, failed bool) {
	cfg := b.cfg.Load()
	b.mu.Lock()
	if BreakerState(b.state.Load()) != BreakerHalfOpen {
		// A late probe of a round already decided.
		b.mu.Unlock()
		return
	}
	if failed {
		b.mu.Unlock()
		b.trip(n, BreakerHalfOpen, cfg)
		return
	}
	b.probes = max(b.probes-1, 0)
	b.succeeded++
	if b.succeeded < cfg.probes {
		b.mu.Unlock()
		return
	}
	b.probes, b.succeeded = 0, 0
	b.consec.Store(0)
	b.state.Store(int32(BreakerClosed))
	b.mu.Unlock()
	b.window.reset(cfg.window)
	b.notify(BreakerHalfOpen, BreakerClosed)
}

// trip opens the breaker for OpenFor from n when it is still in state
// from.
func (b *Breaker) trip(n int64, from BreakerState, cfg *breakerConfig) {
	b.mu.Lock()
	if BreakerState(b.state.Load()) != from {
		b.mu.Unlock()
		return
	}
	b.openUntil.Store(n + int64(cfg.openFor))
	b.state.Store(int32(BreakerOpen))
	b.probes, b.succeeded = 0, 0
	b.consec.Store(0)
	b.mu.Unlock()
	b.notify(from, BreakerOpen)
}

func (b *Breaker) notify(from, to BreakerState) {
	if b.onChange != nil {
		b.onChange(from, to)
	}
}

// State returns the state at now. An open breaker whose open period has
// ended reports half-open: the next Allow makes it so.
func (b *Breaker) State(now time.Time) BreakerState {
	s := BreakerState(b.state.Load())
	if s == BreakerOpen && now.UnixNano() >= b.openUntil.Load() {
		return BreakerHalfOpen
	}
	return s
}

// available reports, without a lock, whether the breaker may take a
// request at now (unix nanoseconds): false only while it is open and the
// open period has not ended.
func (b *Breaker) available(now int64) bool {
	return BreakerState(b.state.Load()) != BreakerOpen || now >= b.openUntil.Load()
}
