package limiter

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// clock is an injected, manually advanced clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// epoch is aligned to every window used in tests (1s, 1m, 1h).
var epoch = time.Unix(1_800_000_000, 0)

func newClock() *clock { return &clock{t: epoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestMemory(t testing.TB, c *clock) *Memory {
	m := NewMemory(MemoryOptions{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func mustAllow(t *testing.T, l Limiter, key string, r Rule) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key, r)
	if err != nil {
		t.Fatalf("Allow(%q): %s", key, err)
	}
	return d
}

func TestGCRABurstThenSteady(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newTestMemory(t, c)
	r := Rule{Limit: 10, Window: time.Second, Burst: 20}
	for i := range 20 {
		d := mustAllow(t, m, "k", r)
		if !d.Allowed {
			t.Fatalf("request %d: got denied, want allowed (burst 20)", i)
		}
		if want := int64(19 - i); d.Remaining != want {
			t.Fatalf("request %d: got remaining %d, want %d", i, d.Remaining, want)
		}
	}
	d := mustAllow(t, m, "k", r)
	if d.Allowed {
		t.Fatal("request 21: got allowed, want denied")
	}
	if d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("got RetryAfter %s, want 100ms", d.RetryAfter)
	}
	if d.Reset != 2*time.Second {
		t.Fatalf("got Reset %s, want 2s (bucket full again)", d.Reset)
	}
	for step := range 5 {
		c.Advance(99 * time.Millisecond)
		if d := mustAllow(t, m, "k", r); d.Allowed {
			t.Fatalf("step %d: got allowed after 99ms, want denied", step)
		}
		c.Advance(time.Millisecond)
		if d := mustAllow(t, m, "k", r); !d.Allowed {
			t.Fatalf("step %d: got denied after 100ms, want allowed", step)
		}
	}
}

func TestDecisionTable(t *testing.T) {
	tests := []struct {
		name      string
		rule      Rule
		at        time.Duration // offset from the aligned epoch of the first request
		n         int           // requests at once
		allowed   int
		remaining int64         // of the last allowed request
		reset     time.Duration // of the last allowed request
	}{
		{"gcra default burst", Rule{Limit: 5, Window: time.Second}, 0, 8, 5, 0, time.Second},
		{"gcra burst 1", Rule{Limit: 10, Window: time.Second, Burst: 1}, 0, 3, 1, 0, 100 * time.Millisecond},
		{"gcra burst 20 partial", Rule{Limit: 10, Window: time.Second, Burst: 20}, 0, 5, 5, 15, 500 * time.Millisecond},
		{"fixed full", Rule{Limit: 3, Window: time.Minute, Algorithm: FixedWindow}, 0, 5, 3, 0, time.Minute},
		{"fixed late in window", Rule{Limit: 3, Window: time.Minute, Algorithm: FixedWindow}, 45 * time.Second, 2, 2, 1, 15 * time.Second},
		{"sliding fresh", Rule{Limit: 4, Window: time.Minute, Algorithm: SlidingWindow}, 15 * time.Second, 6, 4, 0, 105 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClock()
			c.Advance(tt.at)
			m := newTestMemory(t, c)
			got := 0
			var last Decision
			for range tt.n {
				d := mustAllow(t, m, "k", tt.rule)
				if d.Remaining < 0 {
					t.Fatalf("got remaining %d, want >= 0", d.Remaining)
				}
				if d.Limit != tt.rule.Limit {
					t.Fatalf("got limit %d, want %d", d.Limit, tt.rule.Limit)
				}
				if d.Allowed {
					got++
					last = d
					if d.RetryAfter != 0 {
						t.Fatalf("got RetryAfter %s on an allowed request, want 0", d.RetryAfter)
					}
				} else if d.RetryAfter <= 0 {
					t.Fatalf("got RetryAfter %s on a denied request, want > 0", d.RetryAfter)
				}
			}
			if got != tt.allowed {
				t.Fatalf("got %d allowed, want %d", got, tt.allowed)
			}
			if last.Remaining != tt.remaining {
				t.Fatalf("got remaining %d, want %d", last.Remaining, tt.remaining)
			}
			if last.Reset != tt.reset {
				t.Fatalf("got reset %s, want %s", last.Reset, tt.reset)
			}
		})
	}
}

// TestRetryAfterIsHonest spends each rule at many clock offsets and checks
// that waiting exactly RetryAfter lets the next request through and that
// waiting 1ns less does not.
func TestRetryAfterIsHonest(t *testing.T) {
	rules := []Rule{
		{Limit: 10, Window: time.Second, Burst: 20},
		{Limit: 7, Window: time.Minute},
		{Limit: 1, Window: time.Second},
		{Limit: 3, Window: time.Second, Burst: 1},
		{Limit: 5, Window: time.Minute, Algorithm: FixedWindow},
		{Limit: 1, Window: time.Second, Algorithm: FixedWindow},
		{Limit: 5, Window: time.Minute, Algorithm: SlidingWindow},
		{Limit: 1, Window: time.Second, Algorithm: SlidingWindow},
		{Limit: 20, Window: time.Hour, Algorithm: SlidingWindow},
	}
	for _, r := range rules {
		t.Run(fmt.Sprintf("%s/%d-per-%s-burst-%d", r.Algorithm, r.Limit, r.Window, r.Burst), func(t *testing.T) {
			t.Parallel()
			c := newClock()
			m := newTestMemory(t, c)
			// Walk through several windows with uneven steps, hitting the
			// limit repeatedly.
			step := r.Window/13 + 7*time.Millisecond
			denied := 0
			for i := range 60 {
				d := mustAllow(t, m, "k", r)
				if d.Remaining < 0 {
					t.Fatalf("round %d: got remaining %d, want >= 0", i, d.Remaining)
				}
				if !d.Allowed {
					denied++
					if d.RetryAfter > time.Nanosecond {
						c.Advance(d.RetryAfter - time.Nanosecond)
						if e := mustAllow(t, m, "k", r); e.Allowed {
							t.Fatalf("round %d: allowed 1ns before RetryAfter %s", i, d.RetryAfter)
						}
						c.Advance(time.Nanosecond)
					} else {
						c.Advance(d.RetryAfter)
					}
					if e := mustAllow(t, m, "k", r); !e.Allowed {
						t.Fatalf("round %d: got denied after waiting RetryAfter %s (next RetryAfter %s)", i, d.RetryAfter, e.RetryAfter)
					}
				}
				if i%5 == 4 {
					c.Advance(step)
				}
			}
			if denied < 5 {
				t.Fatalf("got %d denials, want the walk to hit the limit at least 5 times", denied)
			}
		})
	}
}

func TestFixedWindowAllowsDoubleAtEdge(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newTestMemory(t, c)
	r := Rule{Limit: 10, Window: time.Second, Algorithm: FixedWindow}
	c.Advance(999 * time.Millisecond)
	got := 0
	for range 10 {
		if mustAllow(t, m, "k", r).Allowed {
			got++
		}
	}
	c.Advance(2 * time.Millisecond)
	for range 10 {
		if mustAllow(t, m, "k", r).Allowed {
			got++
		}
	}
	if got != 20 {
		t.Fatalf("got %d allowed within 2ms around the edge, want 20 (documented 2x)", got)
	}
}

func TestSlidingWindowWeighsPreviousWindow(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newTestMemory(t, c)
	r := Rule{Limit: 10, Window: time.Minute, Algorithm: SlidingWindow}
	for range 10 {
		mustAllow(t, m, "k", r)
	}
	// Halfway through the next window the previous 10 weigh 5.
	c.Advance(90 * time.Second)
	got := 0
	for range 10 {
		if mustAllow(t, m, "k", r).Allowed {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("got %d allowed, want 5", got)
	}
}

func TestMemoryInvalidRule(t *testing.T) {
	t.Parallel()
	m := newTestMemory(t, newClock())
	for _, r := range []Rule{{Limit: 0, Window: time.Second}, {Limit: 1}, {Limit: 1, Window: time.Second, Algorithm: 9}} {
		if _, err := m.Allow(context.Background(), "k", r); !errors.Is(err, ErrInvalidRule) {
			t.Fatalf("rule %+v: got error %v, want ErrInvalidRule", r, err)
		}
	}
}

func TestParseAlgorithm(t *testing.T) {
	t.Parallel()
	for _, a := range []Algorithm{GCRA, SlidingWindow, FixedWindow} {
		got, err := ParseAlgorithm(a.String())
		if err != nil || got != a {
			t.Fatalf("ParseAlgorithm(%q): got %s, %v, want %s", a.String(), got, err, a)
		}
	}
	if _, err := ParseAlgorithm("token_bucket"); !errors.Is(err, ErrInvalidRule) {
		t.Fatalf("got %v, want ErrInvalidRule", err)
	}
}

// exactUnderConcurrency fires n concurrent Allow calls spread over ls and
// returns how many were allowed.
func exactUnderConcurrency(t *testing.T, ls []Limiter, key string, r Rule, n int) int64 {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := ls[i%len(ls)].Allow(context.Background(), key, r)
			if err != nil {
				errs <- err
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Allow: %s", err)
	}
	return allowed.Load()
}

func TestMemoryExactUnderConcurrency(t *testing.T) {
	for _, r := range []Rule{
		{Limit: 300, Window: time.Minute, Algorithm: FixedWindow},
		{Limit: 300, Window: time.Minute, Burst: 300},
		{Limit: 300, Window: time.Minute, Algorithm: SlidingWindow},
	} {
		t.Run(r.Algorithm.String(), func(t *testing.T) {
			t.Parallel()
			m := newTestMemory(t, newClock())
			if got := exactUnderConcurrency(t, []Limiter{m}, "k", r, 1000); got != 300 {
				t.Fatalf("got %d allowed, want 300", got)
			}
		})
	}
}

// TestMemoryShrinksAfterExpiry inserts 1,000,000 distinct keys, lets them
// expire, sweeps, and checks that the heap is returned.
func TestMemoryShrinksAfterExpiry(t *testing.T) {
	const n = 1_000_000
	c := newClock()
	m := newTestMemory(t, c)
	r := Rule{Limit: 5, Window: time.Second, Algorithm: FixedWindow}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	before := heap()
	key := make([]byte, 0, 16)
	for i := range n {
		key = fmt.Appendf(key[:0], "ip:%d", i)
		if _, err := m.Allow(context.Background(), string(key), r); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Len(); got != n {
		t.Fatalf("got %d keys, want %d", got, n)
	}
	full := heap()
	c.Advance(2 * time.Second)
	m.Sweep()
	if got := m.Len(); got != 0 {
		t.Fatalf("after sweep: got %d keys, want 0", got)
	}
	after := heap()
	t.Logf("HeapInuse: before %d MiB, with %d keys %d MiB, after expiry and sweep %d MiB",
		before>>20, n, full>>20, after>>20)
	if full-before < 32<<20 {
		t.Fatalf("got heap growth %d bytes for %d keys, want a measurable growth", full-before, n)
	}
	if after > before+(full-before)/10 {
		t.Fatalf("got HeapInuse %d after sweep, want close to %d (was %d)", after, before, full)
	}
}

// TestMemoryLazyExpiryAndSweeper runs the sweeper's ticker on the synctest
// clock: one sweep interval passes without a real wait, and the test need
// not spin until the sweeper happens to run.
func TestMemoryLazyExpiryAndSweeper(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newClock()
		m := NewMemory(MemoryOptions{Now: c.Now, SweepInterval: time.Millisecond})
		defer m.Close()
		r := Rule{Limit: 1, Window: time.Second}
		mustAllow(t, m, "a", r)
		if mustAllow(t, m, "a", r).Allowed {
			t.Fatal("got allowed, want denied")
		}
		c.Advance(time.Second)
		time.Sleep(time.Millisecond) // one sweep interval, on the bubble's clock
		synctest.Wait()
		if n := m.Len(); n != 0 {
			t.Fatalf("sweeper kept %d keys after a sweep interval, want 0", n)
		}
		if !mustAllow(t, m, "a", r).Allowed {
			t.Fatal("got denied after expiry, want allowed")
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRuleFrom(t *testing.T) {
	tests := []struct {
		name    string
		in      config.RateLimit
		want    Rule
		wantErr bool
	}{
		{"defaults", config.RateLimit{Limit: 10, Window: config.Duration(time.Minute)},
			Rule{Name: "1m", Limit: 10, Window: time.Minute}, false},
		{"hour", config.RateLimit{Limit: 10, Window: config.Duration(time.Hour), Algorithm: "fixed_window"},
			Rule{Name: "1h", Limit: 10, Window: time.Hour, Algorithm: FixedWindow}, false},
		{"named burst", config.RateLimit{Name: "per_second", Limit: 10, Window: config.Duration(time.Second), Burst: 20, Algorithm: "gcra"},
			Rule{Name: "per_second", Limit: 10, Window: time.Second, Burst: 20}, false},
		{"sliding 90m", config.RateLimit{Limit: 1, Window: config.Duration(90 * time.Minute), Algorithm: "sliding_window"},
			Rule{Name: "1h30m", Limit: 1, Window: 90 * time.Minute, Algorithm: SlidingWindow}, false},
		{"bad algorithm", config.RateLimit{Limit: 1, Window: config.Duration(time.Second), Algorithm: "leaky"}, Rule{}, true},
		{"zero limit", config.RateLimit{Window: config.Duration(time.Second)}, Rule{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := RuleFrom(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error=%t", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
