// Package memory gives the gateway's memory back to the operating system
// once a burst of load is over.
//
// The Go runtime returns freed memory to the system slowly, and a process
// that goes quiet after a burst collects no garbage at all (a collection
// starts only when the program allocates, or every two minutes), so the
// resident size stays at the burst's peak. The garbage collector setting
// (GOGC 400 by default in Portico, chosen for CPU per request; see
// docs/benchmarks.md) makes that peak larger. A Reclaimer watches the
// runtime's allocation counter: after an interval with heavy allocation
// (busy), it collects and releases memory on each of the next few quiet
// intervals, so that memory freed by caches and rate-limit keys expiring
// after the burst goes back too. A process that stays busy, or stays idle,
// pays only one counter read per interval.
package memory

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of a Reclaimer.
const (
	// DefaultInterval is how often the allocation counter is read.
	DefaultInterval = 5 * time.Second
	// DefaultBusy is the allocation per interval above which the process
	// counts as busy.
	DefaultBusy = 8 << 20
	// DefaultQuiet is the allocation per interval below which it counts as
	// quiet.
	DefaultQuiet = 1 << 20
	// DefaultAfter is how many quiet intervals after a busy one reclaim.
	DefaultAfter = 6
)

// Reclaimer returns memory after bursts. Its zero value uses the
// defaults.
type Reclaimer struct {
	// Interval, Busy, Quiet and After override the defaults when set.
	Interval    time.Duration
	Busy, Quiet uint64
	After       int
	// Allocated returns the bytes allocated so far (tests); nil reads the
	// runtime's /gc/heap/allocs:bytes.
	Allocated func() uint64
	// Reclaim collects and releases memory (tests); nil is
	// debug.FreeOSMemory.
	Reclaim func()
}

// Run watches until ctx ends.
func (r *Reclaimer) Run(ctx context.Context) {
	interval, busy, quiet, after := r.Interval, r.Busy, r.Quiet, r.After
	if interval <= 0 {
		interval = DefaultInterval
	}
	if busy == 0 {
		busy = DefaultBusy
	}
	if quiet == 0 {
		quiet = DefaultQuiet
	}
	if after <= 0 {
		after = DefaultAfter
	}
	allocated, reclaim := r.Allocated, r.Reclaim
	if allocated == nil {
		allocated = heapAllocs
	}
	if reclaim == nil {
		reclaim = debug.FreeOSMemory
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last := allocated()
	pending := 0 // quiet intervals left that reclaim
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := allocated()
		delta := now - last
		last = now
		switch {
		case delta >= busy:
			pending = after
		case delta < quiet && pending > 0:
			pending--
			reclaim()
			last = allocated() // the collection itself allocates little; do not count it
		}
	}
}

// heapAllocs reads the cumulative bytes allocated on the heap.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
