package upstream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// RetryBudget caps the retries of a service to a share of its requests
// over a rolling window, plus a small reserve so that a quiet service can
// still retry (the Linkerd retry budget): over the last Window,
//
//	retries ≤ Ratio × requests + MinPerSecond × Window in seconds.
//
// Retries are not requests: only original requests earn budget. A
// RetryBudget is safe for concurrent use, takes no lock outside a bucket
// rotation, and does not allocate.
type RetryBudget struct {
	ratio   float64
	reserve float64 // MinPerSecond × window seconds
	counts  rolling // a: original requests, b: retries
}

// NewRetryBudget returns a budget for cfg, which has its defaults applied.
// A Window below one bucket (a millisecond) is taken as a second.
func NewRetryBudget(cfg config.RetryBudget) *RetryBudget {
	w := cfg.Window.D()
	if w < time.Millisecond {
		w = time.Second
	}
	b := &RetryBudget{
		ratio:   max(cfg.Ratio, 0),
		reserve: float64(max(cfg.MinPerSecond, 0)) * w.Seconds(),
	}
	b.counts.init(w)
	return b
}

// Request counts one original request, which earns Ratio of a retry.
func (b *RetryBudget) Request(now time.Time) {
	if k := b.counts.bucket(now.UnixNano()); k != nil {
		k.a.Add(1)
	}
}

// Withdraw reports whether one retry may happen now, and counts it when
// so. Concurrent withdrawals never overdraw the budget; under a race at
// the limit one of them may be refused although the other then leaves
// room.
func (b *RetryBudget) Withdraw(now time.Time) bool {
	n := now.UnixNano()
	k := b.counts.bucket(n)
	if k == nil {
		return false
	}
	k.b.Add(1)
	requests, retries := b.counts.sums(n)
	if float64(retries) <= b.ratio*float64(requests)+b.reserve {
		return true
	}
	k.b.Add(-1)
	return false
}

// rollingBuckets is the number of buckets of a rolling window: the window
// moves on by a tenth of its length at a time.
const rollingBuckets = 10

// noBucket is the id of a bucket that holds nothing.
const noBucket = math.MinInt64

// rolling counts two kinds of events (a and b) over a rolling window of
// rollingBuckets buckets. Counting is one atomic add; moving a bucket on
// to a new period takes a mutex. An event that races with the rotation of
// its bucket may land in the new period: a negligible error for rates.
type rolling struct {
	width   atomic.Int64 // nanoseconds per bucket
	mu      sync.Mutex   // bucket rotation and reset
	buckets [rollingBuckets]rollingBucket
}

type rollingBucket struct {
	id   atomic.Int64 // the period it counts: unix nanoseconds / width
	a, b atomic.Int64
}

// init sets the window length and empties the buckets. It must not run
// concurrently with counting; use reset for that.
func (r *rolling) init(window time.Duration) {
	r.width.Store(max(int64(window)/rollingBuckets, 1))
	for i := range r.buckets {
		r.buckets[i].id.Store(noBucket)
	}
}

// reset sets a new window length and empties the buckets.
func (r *rolling) reset(window time.Duration) {
	r.mu.Lock()
	r.width.Store(max(int64(window)/rollingBuckets, 1))
	for i := range r.buckets {
		k := &r.buckets[i]
		k.id.Store(noBucket)
		k.a.Store(0)
		k.b.Store(0)
	}
	r.mu.Unlock()
}

// bucket returns the bucket of the period holding now, moved on to that
// period when it held an older one. It returns nil when now is older than
// the window the bucket already counts (a caller with a stale clock): the
// event is then not counted.
func (r *rolling) bucket(now int64) *rollingBucket {
	id := now / r.width.Load()
	k := &r.buckets[uint64(id)%rollingBuckets]
	cur := k.id.Load()
	if cur == id {
		return k
	}
	if cur > id {
		return nil
	}
	r.mu.Lock()
	switch cur = k.id.Load(); {
	case cur < id:
		k.a.Store(0)
		k.b.Store(0)
		k.id.Store(id)
	case cur > id:
		k = nil
	}
	r.mu.Unlock()
	return k
}

// sums returns the counts of the window that ends with now's period.
func (r *rolling) sums(now int64) (a, b int64) {
	id := now / r.width.Load()
	for i := range r.buckets {
		k := &r.buckets[i]
		if kid := k.id.Load(); kid <= id && kid > id-rollingBuckets {
			a += k.a.Load()
			b += k.b.Load()
		}
	}
	return a, b
}
