package upstream

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// This file holds the per-target state that health checks, outlier
// detection and breakers write and balancers read, and the types that pass
// between the proxy and a Service.

// Result classifies the outcome of one attempt against a target, as the
// proxy reports it with Service.Report.
type Result int

const (
	// Success is any answer that is not a server error.
	Success Result = iota
	// ServerError is a 5xx answer from the target.
	ServerError
	// ConnFailure is a failure to connect, a reset or early close, or a
	// timeout waiting for the answer: the target did not answer.
	ConnFailure
	// Canceled is an attempt the client abandoned: it says nothing about
	// the target and counts for nothing.
	Canceled
)

func (r Result) String() string {
	switch r {
	case ServerError:
		return "server_error"
	case ConnFailure:
		return "connection_failure"
	case Canceled:
		return "canceled"
	}
	return "success"
}

// Tried is the set of target positions (in Service.Targets order) that a
// request has already tried; a retry goes to another target when there is
// one. The zero value is empty.
type Tried struct {
	low  uint64
	high []int // positions from 64 up, rare
}

// Add marks position i as tried.
func (t *Tried) Add(i int) {
	if i < 64 {
		t.low |= 1 << uint(i)
		return
	}
	t.high = append(t.high, i)
}

// Has reports whether position i was tried.
func (t *Tried) Has(i int) bool {
	if t == nil {
		return false
	}
	if i < 64 {
		return t.low&(1<<uint(i)) != 0
	}
	for _, j := range t.high {
		if j == i {
			return true
		}
	}
	return false
}

// Len is the number of positions tried.
func (t *Tried) Len() int {
	if t == nil {
		return 0
	}
	return bits.OnesCount64(t.low) + len(t.high)
}

// PickRequest is what a balancer may know of the request it picks for.
type PickRequest struct {
	// Key is the hash of the consistent-hash key (see Service.HashKey);
	// HasKey is false when the request has none, and consistent_hash then
	// falls back to least_request.
	Key    uint64
	HasKey bool
	// Tried are the targets this request already tried.
	Tried *Tried
}

// health is a target's state as health checks, outlier detection and the
// target breaker see it. Every field is atomic: the request path reads it
// without locks.
type health struct {
	activeDown   atomic.Bool  // active checks say the target is down
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection in force before it
	ejections    atomic.Int64 // ejections in a row, for the growing ejection time

	inflight atomic.Int64  // requests on the target now
	ewma     atomic.Uint64 // latency EWMA in nanoseconds, as float64 bits
}

// Inflight returns the number of requests the target is serving now.
func (t *Target) Inflight() int64 { return t.health.inflight.Load() }

// Begin counts a request on the target; End undoes it.
func (t *Target) Begin() { t.health.inflight.Add(1) }

// End counts a request off the target.
func (t *Target) End() { t.health.inflight.Add(-1) }

// ActiveHealthy reports whether active checks consider the target healthy
// (true when there are none).
func (t *Target) ActiveHealthy() bool { return !t.health.activeDown.Load() }

// setActiveHealthy records an active check verdict; it reports whether the
// state changed.
func (t *Target) setActiveHealthy(ok bool) bool {
	return t.health.activeDown.Swap(!ok) != !ok
}

// EjectedUntil returns the end of the target's passive ejection, or the
// zero time when it is not ejected.
func (t *Target) EjectedUntil() time.Time {
	n := t.health.ejectedUntil.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// ejected reports whether the target is ejected at now.
func (t *Target) ejected(now int64) bool { return t.health.ejectedUntil.Load() > now }

// Latency returns the target's latency EWMA (zero before the first answer).
func (t *Target) Latency() time.Duration {
	return time.Duration(math.Float64frombits(t.health.ewma.Load()))
}

// ewmaWeight is the weight of a new sample in the latency EWMA.
const ewmaWeight = 0.2

// observeLatency folds one answer's latency into the EWMA. Lost updates
// under contention are harmless: the next sample corrects them.
func (t *Target) observeLatency(d time.Duration) {
	old := math.Float64frombits(t.health.ewma.Load())
	v := float64(d)
	if old != 0 {
		v = old + ewmaWeight*(v-old)
	}
	t.health.ewma.Store(math.Float64bits(v))
}

// filter says which target positions a pick may return: available targets
// (see Target.available), and, when skipTried, only those the request has
// not tried yet.
type filter struct {
	targets   []*Target
	now       int64 // unix nanoseconds
	tried     *Tried
	skipTried bool
}

// ok reports whether position i may be picked.
func (f *filter) ok(i int) bool {
	if f.skipTried && f.tried.Has(i) {
		return false
	}
	return f.targets[i].available(f.now)
}

// available reports whether the target may get traffic at now: active
// checks pass, it is not ejected, and its breaker (if any) is not open.
func (t *Target) available(now int64) bool {
	if t.health.activeDown.Load() || t.ejected(now) {
		return false
	}
	if b := t.breaker.Load(); b != nil && !b.available(now) {
		return false
	}
	return true
}

// Available reports whether the target may get traffic at now: active
// checks pass (if any), it is not ejected, and its breaker is not open.
func (t *Target) Available(now time.Time) bool { return t.available(now.UnixNano()) }
