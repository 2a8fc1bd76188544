package upstream

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// t0 is the controlled clock's start.
var t0 = time.Unix(1_800_000_000, 0)

// transitions records a breaker's state changes.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(from, to BreakerState) {
	tr.mu.Lock()
	tr.got = append(tr.got, from.String()+">"+to.String())
	tr.mu.Unlock()
}

func (tr *transitions) check(t *testing.T, want ...string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !slices.Equal(tr.got, want) {
		t.Fatalf("got transitions %q, want %q", tr.got, want)
	}
}

func breakerConfigFor(mod func(*config.CircuitBreaker)) config.CircuitBreaker {
	c := config.CircuitBreaker{
		ConsecutiveFailures: config.DefaultBreakerFailures,
		Window:              config.DefaultBreakerWindow,
		MinRequests:         config.DefaultBreakerMinRequests,
		OpenFor:             config.DefaultBreakerOpenFor,
		HalfOpenProbes:      config.DefaultBreakerHalfOpenProbes,
	}
	if mod != nil {
		mod(&c)
	}
	return c
}

// request runs one admitted request through b at now.
func request(t *testing.T, b *Breaker, now time.Time, failed bool) {
	t.Helper()
	probe, _, ok := b.Allow(now)
	if !ok {
		t.Fatalf("request at +%s rejected, state %s", now.Sub(t0), b.State(now))
	}
	b.Done(now, probe, failed)
}

func TestBreakerConsecutiveFailures(t *testing.T) {
	t.Parallel()
	var tr transitions
	b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) { c.ConsecutiveFailures = 3 }), tr.record)
	now := t0
	request(t, b, now, true)
	request(t, b, now, true)
	request(t, b, now, false) // a success breaks the run
	request(t, b, now, true)
	request(t, b, now, true)
	if s := b.State(now); s != BreakerClosed {
		t.Fatalf("got %s after 2 failures in a row, want closed", s)
	}
	request(t, b, now, true)
	if s := b.State(now); s != BreakerOpen {
		t.Fatalf("got %s after 3 failures in a row, want open", s)
	}
	tr.check(t, "closed>open")

	now = now.Add(4 * time.Second)
	probe, retryAfter, ok := b.Allow(now)
	if ok || probe || retryAfter != 6*time.Second {
		t.Fatalf("open: got probe %t, retryAfter %s, ok %t; want false, 6s, false", probe, retryAfter, ok)
	}
	if b.available(now.UnixNano()) {
		t.Fatal("open breaker reported available")
	}
}

func TestBreakerHalfOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		probes   int
		outcomes []bool // failed, per probe, in order
		want     BreakerState
		changes  []string
	}{
		{"one probe succeeds", 1, []bool{false}, BreakerClosed,
			[]string{"closed>open", "open>half_open", "half_open>closed"}},
		{"one probe fails", 1, []bool{true}, BreakerOpen,
			[]string{"closed>open", "open>half_open", "half_open>open"}},
		{"three probes succeed", 3, []bool{false, false, false}, BreakerClosed,
			[]string{"closed>open", "open>half_open", "half_open>closed"}},
		{"last of three fails", 3, []bool{false, false, true}, BreakerOpen,
			[]string{"closed>open", "open>half_open", "half_open>open"}},
		{"first of three fails", 3, []bool{true, false, false}, BreakerOpen,
			[]string{"closed>open", "open>half_open", "half_open>open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tr transitions
			b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) {
				c.ConsecutiveFailures = 1
				c.HalfOpenProbes = tt.probes
			}), tr.record)
			request(t, b, t0, true)
			now := t0.Add(10 * time.Second) // the open period ends
			if s := b.State(now); s != BreakerHalfOpen || !b.available(now.UnixNano()) {
				t.Fatalf("got %s at the end of the open period, want half_open and available", s)
			}
			for i := range tt.probes {
				if probe, _, ok := b.Allow(now); !probe || !ok {
					t.Fatalf("probe %d: got probe %t, ok %t; want a probe", i, probe, ok)
				}
			}
			if probe, retryAfter, ok := b.Allow(now); ok || probe || retryAfter != probeRetryAfter {
				t.Fatalf("over the probe limit: got probe %t, retryAfter %s, ok %t; want rejected with %s",
					probe, retryAfter, ok, probeRetryAfter)
			}
			for _, failed := range tt.outcomes {
				b.Done(now, true, failed)
			}
			if s := b.State(now); s != tt.want {
				t.Fatalf("got %s, want %s", s, tt.want)
			}
			tr.check(t, tt.changes...)
			if tt.want == BreakerOpen {
				// Reopened for a full open period from the failed probe.
				_, retryAfter, ok := b.Allow(now.Add(time.Second))
				if ok || retryAfter != 9*time.Second {
					t.Fatalf("reopened: got retryAfter %s, ok %t; want 9s, false", retryAfter, ok)
				}
			}
		})
	}
}

func TestBreakerClosesWithFreshCounters(t *testing.T) {
	t.Parallel()
	b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) {
		c.ConsecutiveFailures = 2
		c.ErrorRatio = 0.5
		c.MinRequests = 4
	}), nil)
	request(t, b, t0, false)
	request(t, b, t0, true)
	request(t, b, t0, true) // two in a row: open
	now := t0.Add(10 * time.Second)
	request(t, b, now, false) // the probe closes it
	if s := b.State(now); s != BreakerClosed {
		t.Fatalf("got %s, want closed", s)
	}
	// Neither the failure run nor the window carry over.
	request(t, b, now, true)
	request(t, b, now, false)
	request(t, b, now, false)
	if s := b.State(now); s != BreakerClosed {
		t.Fatalf("got %s after 1 failure in 3 fresh requests, want closed", s)
	}
}

func TestBreakerErrorRatio(t *testing.T) {
	t.Parallel()
	cfg := breakerConfigFor(func(c *config.CircuitBreaker) {
		c.ConsecutiveFailures = -1
		c.ErrorRatio = 0.5
		c.MinRequests = 10
		c.Window = config.Duration(10 * time.Second)
	})
	t.Run("min requests", func(t *testing.T) {
		t.Parallel()
		b := newBreaker(cfg, nil)
		for range 9 {
			request(t, b, t0, true)
		}
		if s := b.State(t0); s != BreakerClosed {
			t.Fatalf("got %s after 9 requests (min 10), want closed", s)
		}
		request(t, b, t0, true)
		if s := b.State(t0); s != BreakerOpen {
			t.Fatalf("got %s after 10 failures, want open", s)
		}
	})
	t.Run("ratio reached", func(t *testing.T) {
		t.Parallel()
		b := newBreaker(cfg, nil)
		now := t0
		for i := range 9 { // 5 successes, 4 failures, spread over the window
			request(t, b, now, i%2 == 1)
			now = now.Add(time.Second)
		}
		if s := b.State(now); s != BreakerClosed {
			t.Fatalf("got %s at 4/9 failed, want closed", s)
		}
		request(t, b, now, true) // 5/10
		if s := b.State(now); s != BreakerOpen {
			t.Fatalf("got %s at 5/10 failed, want open", s)
		}
	})
	t.Run("window rolls", func(t *testing.T) {
		t.Parallel()
		b := newBreaker(cfg, nil)
		for range 9 {
			request(t, b, t0, true)
		}
		// Eleven seconds on, those failures left the window.
		now := t0.Add(11 * time.Second)
		for range 9 {
			request(t, b, now, false)
		}
		request(t, b, now, true)
		if s := b.State(now); s != BreakerClosed {
			t.Fatalf("got %s at 1/10 failed in the window, want closed", s)
		}
	})
	t.Run("consecutive trigger off", func(t *testing.T) {
		t.Parallel()
		b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) {
			c.ConsecutiveFailures = -1
			c.ErrorRatio = 1
		}), nil)
		for range 19 {
			request(t, b, t0, true)
		}
		if s := b.State(t0); s != BreakerClosed {
			t.Fatalf("got %s after 19 failures, below min_requests and with the consecutive trigger off; want closed", s)
		}
	})
}

func TestBreakerIgnoresLateOutcomes(t *testing.T) {
	t.Parallel()
	var tr transitions
	b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) { c.ConsecutiveFailures = 1 }), tr.record)
	probe, _, _ := b.Allow(t0) // admitted while closed, finishes late
	request(t, b, t0, true)
	b.Done(t0, probe, true) // while open: no effect
	now := t0.Add(10 * time.Second)
	p, _, ok := b.Allow(now)
	if !p || !ok {
		t.Fatal("no probe at the end of the open period")
	}
	b.Done(now, false, true) // a non-probe outcome while half-open: no effect
	b.Done(now, p, false)
	if s := b.State(now); s != BreakerClosed {
		t.Fatalf("got %s, want closed", s)
	}
	b.Done(now, true, true) // a stray probe outcome while closed: no effect
	if s := b.State(now); s != BreakerClosed {
		t.Fatalf("got %s after a stray probe outcome, want closed", s)
	}
	tr.check(t, "closed>open", "open>half_open", "half_open>closed")
}

func TestBreakerLostProbeIsGivenUp(t *testing.T) {
	t.Parallel()
	b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) { c.ConsecutiveFailures = 1 }), nil)
	request(t, b, t0, true)
	now := t0.Add(10 * time.Second)
	if p, _, ok := b.Allow(now); !p || !ok {
		t.Fatal("no probe at the end of the open period")
	}
	// The probe never reports. Within an open period, nothing else passes.
	if _, _, ok := b.Allow(now.Add(9 * time.Second)); ok {
		t.Fatal("a second probe was admitted while the first is out")
	}
	now = now.Add(10 * time.Second)
	p, _, ok := b.Allow(now)
	if !p || !ok {
		t.Fatal("a lost probe blocks the breaker for good")
	}
	b.Done(now, p, false)
	if s := b.State(now); s != BreakerClosed {
		t.Fatalf("got %s, want closed", s)
	}
}

func TestBreakerReconfigureKeepsState(t *testing.T) {
	t.Parallel()
	cfg := breakerConfigFor(func(c *config.CircuitBreaker) { c.ConsecutiveFailures = 3 })
	b := newBreaker(cfg, nil)
	request(t, b, t0, true)
	request(t, b, t0, true)
	cfg.ConsecutiveFailures = 2
	b.reconfigure(cfg)
	request(t, b, t0, true) // the run of 3 passes the new threshold
	if s := b.State(t0); s != BreakerOpen {
		t.Fatalf("got %s, want open", s)
	}
	cfg.OpenFor = config.Duration(time.Minute)
	cfg.Window = config.Duration(time.Minute)
	b.reconfigure(cfg)
	if s := b.State(t0.Add(time.Second)); s != BreakerOpen {
		t.Fatalf("got %s after a reload, want open", s)
	}
	// The open period in force keeps its end.
	if _, retryAfter, _ := b.Allow(t0.Add(time.Second)); retryAfter != 9*time.Second {
		t.Fatalf("got retryAfter %s, want 9s", retryAfter)
	}
}

func TestBreakerStateString(t *testing.T) {
	t.Parallel()
	for s, want := range map[BreakerState]string{BreakerClosed: "closed", BreakerOpen: "open", BreakerHalfOpen: "half_open"} {
		if got := s.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestBreakerConcurrent drives one breaker from many goroutines through
// every state; the race detector and the transition log check it.
func TestBreakerConcurrent(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		changes []string
		opens   atomic.Int64
	)
	b := newBreaker(breakerConfigFor(func(c *config.CircuitBreaker) {
		c.ConsecutiveFailures = 5
		c.ErrorRatio = 0.3
		c.HalfOpenProbes = 2
		c.OpenFor = config.Duration(time.Second)
	}), func(from, to BreakerState) {
		if to == BreakerOpen {
			opens.Add(1)
		}
		mu.Lock()
		changes = append(changes, fmt.Sprintf("%s>%s", from, to))
		mu.Unlock()
	})
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				now := time.Unix(0, clock.Add(int64(time.Millisecond)))
				probe, _, ok := b.Allow(now)
				if !ok {
					continue
				}
				b.Done(now, probe, (i+g)%3 == 0)
			}
		}()
	}
	wg.Wait()
	if opens.Load() == 0 {
		t.Fatal("the breaker never opened under 1/3 failures")
	}
	// onChange runs outside the lock, so the log may be out of order, but
	// the counts of each change must fit one sequence of states.
	mu.Lock()
	defer mu.Unlock()
	n := map[string]int{}
	for _, c := range changes {
		n[c]++
	}
	opened := n["closed>open"] + n["half_open>open"]
	left := n["half_open>open"] + n["half_open>closed"]
	if d := opened - n["open>half_open"]; d != 0 && d != 1 {
		t.Fatalf("changes %v: %d opens but %d ends of an open period", n, opened, n["open>half_open"])
	}
	if d := n["open>half_open"] - left; d != 0 && d != 1 {
		t.Fatalf("changes %v: %d half-open periods but %d ends of one", n, n["open>half_open"], left)
	}
	if d := n["closed>open"] - n["half_open>closed"]; d != 0 && d != 1 {
		t.Fatalf("changes %v: %d trips from closed but %d closes", n, n["closed>open"], n["half_open>closed"])
	}
	t.Logf("changes %v", n)
	if len(n) > 4 {
		t.Fatalf("changes %v: unexpected kinds", n)
	}
}

func BenchmarkBreakerClosed(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ratio float64
	}{{"consecutive", 0}, {"ratio", 0.5}} {
		cfg := breakerConfigFor(func(c *config.CircuitBreaker) { c.ErrorRatio = bc.ratio })
		b.Run(bc.name, func(b *testing.B) {
			br := newBreaker(cfg, nil)
			now := t0
			b.ReportAllocs()
			for b.Loop() {
				probe, _, _ := br.Allow(now)
				br.Done(now, probe, false)
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			br := newBreaker(cfg, nil)
			now := t0
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					probe, _, _ := br.Allow(now)
					br.Done(now, probe, false)
				}
			})
		})
	}
}

func BenchmarkBreakerAvailable(b *testing.B) {
	br := newBreaker(breakerConfigFor(nil), nil)
	now := t0.UnixNano()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !br.available(now) {
				b.Fatal("closed breaker not available")
			}
		}
	})
}
