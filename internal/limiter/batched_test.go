package limiter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/redistest"
)

// awayFromHourEdge waits, if needed, until the current hour (Redis time)
// has more than 10s left, so a 1h fixed window test stays in one window.
func awayFromHourEdge(t *testing.T, c *redis.Client) {
	t.Helper()
	awayFromEdge(t, c, time.Hour, 10*time.Second)
}

// scriptCalls returns the EVAL and EVALSHA calls Redis has served since
// the last CONFIG RESETSTAT.
func scriptCalls(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %s", err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || name != "cmdstat_eval" && name != "cmdstat_evalsha" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		v, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("INFO commandstats: bad line %q", line)
		}
		n += v
	}
	return n
}

// hammer sends n concurrent decisions for key, spread over lims, and
// returns how many were allowed.
func hammer(t *testing.T, lims []Limiter, key string, r Rule, n int) int64 {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := lims[i%len(lims)].Allow(context.Background(), key, r)
			if err != nil {
				t.Errorf("Allow: %s", err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return allowed.Load()
}

// TestBatchedAcrossInstances is three gateway processes (three clients)
// sharing one key: 1,000 concurrent requests against 300 per hour. Batched
// never admits more than the limit, admits at least limit-3×(lease-1), and
// needs about 1/lease of exact mode's round trips.
func TestBatchedAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rule := Rule{Name: "per_hour", Limit: 300, Window: time.Hour, Algorithm: FixedWindow}
	ctx := context.Background()

	// Load both scripts, so that the counts below are of EVALSHA alone.
	warm := newTestRedis(t, srv.URL(), time.Second)
	if _, err := warm.Allow(ctx, "warm", rule); err != nil {
		t.Fatalf("Allow: %s", err)
	}
	if _, err := NewBatched(warm, BatchedOptions{}).Allow(ctx, "warm", rule); err != nil {
		t.Fatalf("Allow: %s", err)
	}

	awayFromHourEdge(t, raw)
	if err := raw.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %s", err)
	}
	exact := []Limiter{
		newTestRedis(t, srv.URL(), 5*time.Second),
		newTestRedis(t, srv.URL(), 5*time.Second),
		newTestRedis(t, srv.URL(), 5*time.Second),
	}
	if got := hammer(t, exact, "exact", rule, 1000); got != 300 {
		t.Errorf("exact: got %d allowed, want 300", got)
	}
	exactTrips := scriptCalls(t, raw)
	if exactTrips != 1000 {
		t.Errorf("exact: got %d round trips, want 1000", exactTrips)
	}

	for _, lease := range []int64{0, 10, 50} {
		t.Run("lease="+strconv.FormatInt(lease, 10), func(t *testing.T) {
			awayFromHourEdge(t, raw)
			if err := raw.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatalf("CONFIG RESETSTAT: %s", err)
			}
			var bs []*Batched
			var lims []Limiter
			for range 3 {
				b := NewBatched(newTestRedis(t, srv.URL(), 5*time.Second), BatchedOptions{LeaseSize: lease})
				bs = append(bs, b)
				lims = append(lims, b)
			}
			size := bs[0].leaseSize(rule)
			got := hammer(t, lims, "batched:"+strconv.FormatInt(lease, 10), rule, 1000)
			if low := rule.Limit - 3*(size-1); got > rule.Limit || got < low {
				t.Errorf("got %d allowed, want %d..%d", got, low, rule.Limit)
			}
			var leases uint64
			for _, b := range bs {
				leases += b.Stats().Leases
			}
			trips := scriptCalls(t, raw)
			if trips != int64(leases) {
				t.Errorf("got %d round trips in Redis, want %d (the leases counted)", trips, leases)
			}
			// Full leases, up to one partial lease and one refusal per instance.
			if limit := (rule.Limit+size-1)/size + 6; trips > limit {
				t.Errorf("got %d round trips, want at most %d", trips, limit)
			}
			t.Logf("lease %d: %d allowed (exact %d), %d round trips per 1000 decisions (exact %d)",
				size, got, 300, trips, exactTrips)
		})
	}
}

// fakeClock is a settable clock for the lease ends.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestBatchedLeaseDecisions(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	awayFromHourEdge(t, raw)
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	b := NewBatched(newTestRedis(t, srv.URL(), time.Second), BatchedOptions{LeaseSize: 4, Now: clock.now})
	rule := Rule{Limit: 10, Window: time.Hour, Algorithm: FixedWindow}
	ctx := context.Background()
	wantRemaining := []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}
	for i, want := range wantRemaining {
		d, err := b.Allow(ctx, "k", rule)
		if err != nil {
			t.Fatalf("Allow %d: %s", i, err)
		}
		if !d.Allowed || d.Limit != 10 || d.Remaining != want || d.Reset <= 0 || d.Reset > time.Hour || d.RetryAfter != 0 {
			t.Fatalf("request %d: got %+v, want allowed with remaining %d", i, d, want)
		}
	}
	// Leases of 4, 4 and the last 2, then one refusal.
	for i := range 3 {
		d, err := b.Allow(ctx, "k", rule)
		if err != nil {
			t.Fatalf("Allow: %s", err)
		}
		if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > time.Hour || d.RetryAfter != d.Reset {
			t.Fatalf("refusal %d: got %+v, want refused with retry-after up to 1h", i, d)
		}
	}
	if got := b.Stats(); got.Leases != 4 || got.Local != 9 {
		t.Errorf("got %+v, want 4 leases and 9 local decisions", got)
	}
	if got, err := raw.HGet(ctx, "{test:k}", "c").Result(); err != nil || got != "10" {
		t.Errorf("redis count: got %q (%v), want 10", got, err)
	}

	// Past the (local) window end the lease is dropped and the next one
	// taken; Redis's window has not ended, so it is still refused.
	clock.advance(time.Hour + time.Second)
	if d, err := b.Allow(ctx, "k", rule); err != nil || d.Allowed {
		t.Errorf("after the local window: got %+v, %v, want refused", d, err)
	}
	if got := b.Stats().Leases; got != 5 {
		t.Errorf("got %d leases, want 5", got)
	}
}

func TestBatchedForgetsExpiredKeys(t *testing.T) {
	srv := redistest.Start(t)
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	b := NewBatched(newTestRedis(t, srv.URL(), time.Second), BatchedOptions{Now: clock.now})
	rule := Rule{Limit: 100, Window: 2 * time.Second, Algorithm: FixedWindow}
	ctx := context.Background()
	for i := range 500 {
		if _, err := b.Allow(ctx, "key"+strconv.Itoa(i), rule); err != nil {
			t.Fatalf("Allow: %s", err)
		}
	}
	if got := b.Len(); got != 500 {
		t.Fatalf("got %d keys, want 500", got)
	}
	clock.advance(3 * time.Second)
	// The first access to a shard after the window sweeps it.
	old := func() int {
		n := 0
		for i := range b.shards {
			s := &b.shards[i]
			s.mu.Lock()
			for k := range s.m {
				if strings.HasPrefix(k, "key") {
					n++
				}
			}
			s.mu.Unlock()
		}
		return n
	}
	for i := 0; i < 5000 && old() > 0; i++ {
		if _, err := b.Allow(ctx, "new"+strconv.Itoa(i), rule); err != nil {
			t.Fatalf("Allow: %s", err)
		}
	}
	if old := old(); old != 0 {
		t.Errorf("got %d expired keys kept, want 0", old)
	}
}
func TestBatchedRefusesOtherAlgorithms(t *testing.T) {
	srv := redistest.Start(t)
	b := NewBatched(newTestRedis(t, srv.URL(), time.Second), BatchedOptions{})
	for _, alg := range []Algorithm{GCRA, SlidingWindow} {
		_, err := b.Allow(context.Background(), "k", Rule{Limit: 10, Window: time.Second, Algorithm: alg})
		if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), "fixed_window") {
			t.Errorf("%s: got %v, want ErrInvalidRule naming fixed_window", alg, err)
		}
	}
	if _, err := b.Allow(context.Background(), "k", Rule{Limit: 0, Window: time.Second, Algorithm: FixedWindow}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("limit 0: got %v, want ErrInvalidRule", err)
	}
}

func TestBatchedLeaseSize(t *testing.T) {
	tests := []struct {
		opt, limit, want int64
	}{
		{0, 1, 1},
		{0, 99, 1},
		{0, 300, 3},
		{0, 100000, 1000},
		{10, 300, 10},
		{500, 300, 300},
		{-1, 1000, 10},
	}
	for _, tt := range tests {
		b := NewBatched(nil, BatchedOptions{LeaseSize: tt.opt})
		if got := b.leaseSize(Rule{Limit: tt.limit}); got != tt.want {
			t.Errorf("lease %d, limit %d: got %d, want %d", tt.opt, tt.limit, got, tt.want)
		}
	}
}

// TestBatchedBehindResilient fails open to the local share when Redis is
// down, and resumes leasing when it is back.
func TestBatchedBehindResilient(t *testing.T) {
	srv := redistest.Start(t)
	b := NewBatched(newTestRedis(t, srv.URL(), 200*time.Millisecond), BatchedOptions{})
	res := NewResilient(b, ResilientOptions{Timeout: 200 * time.Millisecond, Instances: 2, Failures: 1000})
	defer res.Close()
	rule := Rule{Limit: 10, Window: time.Hour, Algorithm: FixedWindow}
	srv.Stop()
	allowed := 0
	for range 10 {
		d, err := res.Allow(context.Background(), "down", rule)
		if err != nil {
			t.Fatalf("Allow: %s", err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("fail open: got %d allowed, want the local share 5", allowed)
	}
	srv.Restart()
	// The limiter finds the restarted server by trying.
	pollUntil(t, func() error {
		before := b.Stats().Leases
		d, err := res.Allow(context.Background(), "up", rule)
		if err == nil && d.Allowed && b.Stats().Leases > before && res.Stats().Fallbacks == 10 {
			return nil
		}
		return fmt.Errorf("leasing did not resume: %+v, %v, %+v", d, err, res.Stats())
	})
}

func BenchmarkBatchedAllow(b *testing.B) {
	srv := redistest.Start(b)
	rl := newTestRedis(b, srv.URL(), time.Second)
	ctx := context.Background()
	r := benchRule
	r.Algorithm = FixedWindow
	for _, lease := range []int64{1, 10, 100} {
		name := "lease=" + strconv.FormatInt(lease, 10)
		b.Run(name+"/serial", func(b *testing.B) {
			bl := NewBatched(rl, BatchedOptions{LeaseSize: lease})
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				if _, err := bl.Allow(ctx, "bench:"+name, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bl.Stats().Leases)*1000/float64(n), "trips/1000")
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			bl := NewBatched(rl, BatchedOptions{LeaseSize: lease})
			keys := benchKeys(1024)
			var next, n atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := next.Add(101)
				for pb.Next() {
					i++
					n.Add(1)
					if _, err := bl.Allow(ctx, name+keys[i&1023], r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(bl.Stats().Leases)*1000/float64(n.Load()), "trips/1000")
		})
	}
}
