package memory

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestReclaimsAfterABurst drives a Reclaimer on the synctest clock with a
// made-up allocation counter: nothing while idle, nothing while busy, a
// reclaim on each of the quiet intervals that follow a busy one, then
// nothing again.
func TestReclaimsAfterABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var allocs atomic.Uint64
		var reclaims atomic.Int32
		r := &Reclaimer{Interval: time.Second, Busy: 100, Quiet: 10, After: 3,
			Allocated: allocs.Load, Reclaim: func() { reclaims.Add(1) }}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)
		step := func(alloc uint64) {
			allocs.Add(alloc)
			time.Sleep(time.Second) // one interval on the bubble's clock
			synctest.Wait()
		}
		for range 5 {
			step(0) // idle
		}
		if n := reclaims.Load(); n != 0 {
			t.Fatalf("idle: got %d reclaims, want 0", n)
		}
		for range 5 {
			step(1000) // busy
		}
		if n := reclaims.Load(); n != 0 {
			t.Fatalf("busy: got %d reclaims, want 0", n)
		}
		for range 10 {
			step(1) // quiet after the burst
		}
		if n := reclaims.Load(); n != 3 {
			t.Fatalf("after the burst: got %d reclaims, want 3 (After)", n)
		}
		step(50) // neither busy nor quiet
		step(1)
		if n := reclaims.Load(); n != 3 {
			t.Fatalf("later: got %d reclaims, want still 3", n)
		}
	})
}

// TestHeapAllocsCounts reads the real runtime counter.
func TestHeapAllocsCounts(t *testing.T) {
	before := heapAllocs()
	sink = make([]byte, 1<<20)
	if after := heapAllocs(); after < before+1<<20 {
		t.Fatalf("got %d bytes allocated after a 1 MiB allocation, want at least %d", after, before+1<<20)
	}
}

var sink []byte
