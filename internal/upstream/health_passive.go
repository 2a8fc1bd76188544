package upstream

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// Passive health checks (outlier detection).
//
// The proxy reports the outcome of every attempt (see Result). Per target,
// the outlier keeps two counts: 5xx answers in a row and connection
// failures in a row. A Success resets both; a ServerError adds to the
// first and a ConnFailure to the second, neither resetting the other; a
// Canceled attempt changes nothing. Outcomes reported while the target is
// ejected (requests that were in flight when it was ejected) are ignored,
// except that a Success still resets the counts.
//
// When a count reaches its trigger (consecutive_5xx or
// consecutive_failures; -1 disables a trigger) the target is ejected: it
// gets no traffic until now + base_ejection × n, capped at max_ejection,
// where n is the target's ejection count including this one. Both counts
// start again from zero.
//
// The ejection count (Target.health.ejections) counts ejections in a row:
// it goes back to zero on the first Success the target answers at least
// base_ejection after its last ejection ended. A target that comes back
// and fails again soon after is ejected for longer each time; one that
// stays well for a base ejection time is forgiven its past.
//
// An ejection is refused when it would leave more than max_ejected_percent
// of the service's targets ejected at once: at most
// floor(len(targets) × max_ejected_percent / 100) targets are ejected at a
// time, so with 3 targets and 50% one may be ejected, and a single-target
// service is only ejected with 100%. Targets taken out by active checks or
// an open breaker do not count. A refused target keeps its count, so its
// next failure tries again.
//
// Ejection ends by itself when its time is over: the request path compares
// the deadline with the current time, and nothing runs in the background.

// outlier is the passive health state of one service's targets for one
// config snapshot. The ejection state itself lives on each Target, so it
// outlives a reload; the counts of failures in a row start again at zero
// with a new snapshot. All methods are safe for concurrent use, and are
// no-ops on a nil *outlier.
type outlier struct {
	svc          string
	targets      []*Target
	counts       []outlierCounts // parallel to targets
	index        map[*Target]int // position of a target; nil for few targets
	max5xx       int64           // 0: trigger off
	maxFailures  int64           // 0: trigger off
	base, limit  time.Duration   // ejection length: base × n, at most limit
	maxEjected   int             // targets that may be ejected at once
	logger       *slog.Logger
	onEject      func(t *Target, until time.Time)
	ejecting     sync.Mutex // held while deciding an ejection
	smallTargets bool       // find positions by a linear scan
}

// outlierCounts are one target's failures in a row. The padding keeps
// targets that fail at the same time off each other's cache line.
type outlierCounts struct {
	serverErrors atomic.Int64
	connFailures atomic.Int64
	_            [48]byte
}

// outlierScanMax is the target count up to which a target's position is
// found by scanning the slice rather than through the map.
const outlierScanMax = 16

// newOutlier returns the outlier detection of service svc over targets,
// or nil when cfg is nil or enables no trigger. onEject (which may be nil)
// is called after each ejection with the ejected target and the end of the
// ejection. A nil logger discards.
func newOutlier(svc string, cfg *config.PassiveHealthCheck, targets []*Target, logger *slog.Logger, onEject func(t *Target, until time.Time)) *outlier {
	if cfg == nil || (cfg.Consecutive5xx <= 0 && cfg.ConsecutiveFailures <= 0) {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &outlier{
		svc:          svc,
		targets:      targets,
		counts:       make([]outlierCounts, len(targets)),
		max5xx:       int64(max(cfg.Consecutive5xx, 0)),
		maxFailures:  int64(max(cfg.ConsecutiveFailures, 0)),
		base:         max(cfg.BaseEjection.D(), 0),
		limit:        max(cfg.MaxEjection.D(), 0),
		maxEjected:   len(targets) * min(max(cfg.MaxEjectedPercent, 0), 100) / 100,
		logger:       logger,
		onEject:      onEject,
		smallTargets: len(targets) <= outlierScanMax,
	}
	if o.base == 0 {
		o.base = config.DefaultBaseEjection.D()
	}
	if o.limit < o.base {
		o.limit = o.base
	}
	if !o.smallTargets {
		o.index = make(map[*Target]int, len(targets))
		for i, t := range targets {
			o.index[t] = i
		}
	}
	return o
}

// position returns the position of t among the outlier's targets, or -1.
func (o *outlier) position(t *Target) int {
	if o.smallTargets {
		for i, x := range o.targets {
			if x == t {
				return i
			}
		}
		return -1
	}
	if i, ok := o.index[t]; ok {
		return i
	}
	return -1
}

// observe records the outcome of one attempt on t at now, and ejects t
// when it reached a trigger. Targets of other services are ignored. It
// does not allocate unless it ejects.
func (o *outlier) observe(t *Target, res Result, now time.Time) {
	if o == nil || res == Canceled {
		return
	}
	i := o.position(t)
	if i < 0 {
		return
	}
	c := &o.counts[i]
	nowNano := now.UnixNano()
	switch res {
	case Success:
		// Loads first: a healthy target's counters stay zero, and a store
		// would dirty a cache line shared by every request to it.
		if c.serverErrors.Load() != 0 {
			c.serverErrors.Store(0)
		}
		if c.connFailures.Load() != 0 {
			c.connFailures.Store(0)
		}
		if t.health.ejections.Load() != 0 && nowNano-t.health.ejectedUntil.Load() >= int64(o.base) {
			t.health.ejections.Store(0)
		}
	case ServerError:
		if o.max5xx == 0 || t.ejected(nowNano) {
			return
		}
		if n := c.serverErrors.Add(1); n >= o.max5xx {
			o.eject(i, t, now, "consecutive_5xx", n)
		}
	case ConnFailure:
		if o.maxFailures == 0 || t.ejected(nowNano) {
			return
		}
		if n := c.connFailures.Add(1); n >= o.maxFailures {
			o.eject(i, t, now, "consecutive_failures", n)
		}
	}
}

// eject takes t (at position i) out of balancing, unless another goroutine
// is deciding an ejection right now (the next failure tries again), t is
// ejected already, or the service's ejected share is at its maximum.
func (o *outlier) eject(i int, t *Target, now time.Time, reason string, count int64) {
	if !o.ejecting.TryLock() {
		return
	}
	nowNano := now.UnixNano()
	if t.ejected(nowNano) {
		o.ejecting.Unlock()
		return
	}
	ejected := 0
	for _, x := range o.targets {
		if x.ejected(nowNano) {
			ejected++
		}
	}
	if ejected >= o.maxEjected {
		o.ejecting.Unlock()
		return
	}
	n := t.health.ejections.Add(1)
	d := o.limit
	if n <= int64(o.limit/o.base) {
		d = o.base * time.Duration(n)
	}
	until := now.Add(d)
	t.health.ejectedUntil.Store(until.UnixNano())
	c := &o.counts[i]
	c.serverErrors.Store(0)
	c.connFailures.Store(0)
	o.ejecting.Unlock()

	o.logger.LogAttrs(context.Background(), slog.LevelWarn, "upstream target ejected",
		slog.String("service", o.svc),
		slog.String("upstream", t.URL),
		slog.String("reason", reason),
		slog.Int64("count", count),
		slog.Duration("ejection", d),
		slog.Int64("ejections_in_a_row", n),
	)
	if o.onEject != nil {
		o.onEject(t, until)
	}
}
