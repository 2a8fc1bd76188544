package limiter

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for ResilientOptions.
const (
	defaultResilientTimeout = 50 * time.Millisecond
	defaultFailures         = 5
	defaultCoolDown         = time.Second
)

// ResilientOptions configures a Resilient limiter.
type ResilientOptions struct {
	// Timeout bounds each call to the primary; default 50ms.
	Timeout time.Duration
	// FailClosed returns ErrUnavailable while the primary cannot decide;
	// the default (false) fails open to the local limiter.
	FailClosed bool
	// Instances is the number of gateway instances sharing the primary; the
	// local limiter allows ceil(Limit/Instances) per key. Default 1.
	Instances int
	// Failures is the number of consecutive primary errors that open the
	// breaker; default 5.
	Failures int
	// CoolDown is how long the open breaker skips the primary before one
	// probe call; default 1s.
	CoolDown time.Duration
	// Local decides while the primary cannot; default a new Memory with Now
	// (closed by Close).
	Local *Memory
	// Now is the breaker's clock; default time.Now.
	Now func() time.Time
}

// ResilientStats are cumulative counters for metrics.
type ResilientStats struct {
	// PrimaryCalls counts calls made to the primary.
	PrimaryCalls uint64
	// PrimaryErrors counts primary calls that failed or timed out.
	PrimaryErrors uint64
	// Fallbacks counts decisions made by the local limiter.
	Fallbacks uint64
	// Unavailable counts ErrUnavailable answers (fail closed).
	Unavailable uint64
	// BreakerOpens counts transitions of the breaker to open.
	BreakerOpens uint64
}

// Resilient is a Limiter that asks a shared primary (Redis) with a timeout,
// falls back by policy when it fails, and stops asking it for a cool-down
// after repeated failures (see the package doc).
type Resilient struct {
	primary    Limiter
	local      *Memory
	ownsLocal  bool
	timeout    time.Duration
	failClosed bool
	instances  int
	failures   int
	coolDown   time.Duration
	now        func() time.Time

	mu       sync.Mutex
	open     bool         // breaker open (or half-open once openedAt+coolDown passed)
	openedAt time.Time    // when the breaker last opened
	probing  bool         // a half-open probe is in flight
	errs     atomic.Int64 // consecutive primary errors while closed

	healthy                                        atomic.Bool
	calls, errCount, fallbacks, unavailable, opens atomic.Uint64
}

// NewResilient wraps primary with a timeout, a failure policy and a breaker.
func NewResilient(primary Limiter, opts ResilientOptions) *Resilient {
	r := &Resilient{
		primary:    primary,
		local:      opts.Local,
		timeout:    opts.Timeout,
		failClosed: opts.FailClosed,
		instances:  max(1, opts.Instances),
		failures:   opts.Failures,
		coolDown:   opts.CoolDown,
		now:        opts.Now,
	}
	if r.timeout <= 0 {
		r.timeout = defaultResilientTimeout
	}
	if r.failures <= 0 {
		r.failures = defaultFailures
	}
	if r.coolDown <= 0 {
		r.coolDown = defaultCoolDown
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.local == nil {
		r.local = NewMemory(MemoryOptions{Now: r.now})
		r.ownsLocal = true
	}
	r.healthy.Store(true)
	return r
}

// Close stops the local limiter if Resilient created it; it does not close
// the primary.
func (r *Resilient) Close() error {
	if r.ownsLocal {
		return r.local.Close()
	}
	return nil
}

// Healthy reports whether the breaker is closed (the primary is answering).
func (r *Resilient) Healthy() bool {
	return r.healthy.Load()
}

// Stats returns the counters.
func (r *Resilient) Stats() ResilientStats {
	return ResilientStats{
		PrimaryCalls:  r.calls.Load(),
		PrimaryErrors: r.errCount.Load(),
		Fallbacks:     r.fallbacks.Load(),
		Unavailable:   r.unavailable.Load(),
		BreakerOpens:  r.opens.Load(),
	}
}

// Allow asks the primary unless the breaker is open; when the primary fails
// or is skipped it answers by policy: the local share (fail open) or
// ErrUnavailable (fail closed). Invalid rules and the caller's own
// cancellation are returned as errors and do not count as failures.
func (r *Resilient) Allow(ctx context.Context, key string, rule Rule) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, err
	}
	probe, ok := r.admit()
	if ok {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		r.calls.Add(1)
		d, err := r.primary.Allow(cctx, key, rule)
		cancel()
		if err == nil {
			r.succeeded()
			return d, nil
		}
		if ctx.Err() != nil { // the caller gave up, not the primary
			r.release(probe)
			return Decision{}, ctx.Err()
		}
		r.errCount.Add(1)
		r.failed(probe)
	}
	if r.failClosed {
		r.unavailable.Add(1)
		return Decision{}, ErrUnavailable
	}
	r.fallbacks.Add(1)
	return r.local.Allow(ctx, key, rule.share(r.instances))
}

// admit reports whether to call the primary and whether the call is the
// half-open probe.
func (r *Resilient) admit() (probe, ok bool) {
	if r.healthy.Load() { // closed: no lock on the hot path
		return false, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.open {
		return false, true
	}
	if r.probing || r.now().Sub(r.openedAt) < r.coolDown {
		return false, false
	}
	r.probing = true
	return true, true
}

func (r *Resilient) succeeded() {
	if r.healthy.Load() {
		if r.errs.Load() != 0 {
			r.errs.Store(0)
		}
		return
	}
	r.mu.Lock()
	r.open, r.probing = false, false
	r.errs.Store(0)
	r.mu.Unlock()
	r.healthy.Store(true)
}

func (r *Resilient) release(probe bool) {
	if probe {
		r.mu.Lock()
		r.probing = false
		r.mu.Unlock()
	}
}

func (r *Resilient) failed(probe bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if probe {
		r.probing = false
		r.openedAt = r.now()
		return
	}
	if r.open {
		return
	}
	if r.errs.Add(1) >= int64(r.failures) {
		r.errs.Store(0)
		r.open, r.openedAt = true, r.now()
		r.opens.Add(1)
		r.healthy.Store(false)
	}
}
