package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/redistest"
)

// counted counts the calls that reach the real Redis limiter.
type counted struct {
	Limiter
	calls atomic.Int64
}

func (c *counted) Allow(ctx context.Context, key string, r Rule) (Decision, error) {
	c.calls.Add(1)
	return c.Limiter.Allow(ctx, key, r)
}

const testTimeout = 50 * time.Millisecond

// callBound is Timeout plus scheduling slack for a loaded CI machine under
// the race detector.
const callBound = testTimeout + 200*time.Millisecond

func newTestResilient(t *testing.T, failClosed bool) (*redistest.Server, *counted, *Resilient, *clock) {
	t.Helper()
	srv := redistest.Start(t)
	c := newClock()
	primary := &counted{Limiter: newTestRedis(t, srv.URL(), time.Second)}
	res := NewResilient(primary, ResilientOptions{
		Timeout:    testTimeout,
		FailClosed: failClosed,
		Instances:  3,
		Failures:   5,
		CoolDown:   time.Second,
		Now:        c.Now,
	})
	t.Cleanup(func() { _ = res.Close() })
	return srv, primary, res, c
}

// timedAllow calls Allow and fails the test if the call exceeds callBound.
func timedAllow(t *testing.T, l Limiter, key string, r Rule) (Decision, error) {
	t.Helper()
	start := time.Now()
	d, err := l.Allow(context.Background(), key, r)
	if took := time.Since(start); took > callBound {
		t.Fatalf("Allow took %s, want <= %s", took, callBound)
	}
	return d, err
}

// recoverShared restarts Redis and polls, advancing the breaker clock past
// each cool-down, until the shared limiter answers again: the limiter finds
// the restarted server only by trying.
func recoverShared(t *testing.T, srv *redistest.Server, res *Resilient, c *clock, r Rule) {
	t.Helper()
	srv.Restart()
	pollUntil(t, func() error {
		if res.Healthy() {
			return nil
		}
		c.Advance(time.Second)
		_, _ = timedAllow(t, res, "probe", r)
		return fmt.Errorf("shared limiting did not resume: stats %+v", res.Stats())
	})
}

func TestResilientFailOpenUsesLocalShareAndBreaker(t *testing.T) {
	srv, primary, res, c := newTestResilient(t, false)
	r := Rule{Limit: 30, Window: time.Hour, Algorithm: FixedWindow}

	if d, err := timedAllow(t, res, "k", r); err != nil || !d.Allowed || d.Remaining != 29 {
		t.Fatalf("healthy: got %+v, %v, want allowed with 29 remaining", d, err)
	}
	if !res.Healthy() {
		t.Fatal("got unhealthy before any error")
	}

	srv.Stop()
	before := primary.calls.Load()
	allowed := 0
	for i := range 40 {
		d, err := timedAllow(t, res, "k", r)
		if err != nil {
			t.Fatalf("call %d: got error %s, want a local decision (fail open)", i, err)
		}
		if d.Allowed {
			allowed++
		}
	}
	// The local share is ceil(30/3) = 10, counted from zero locally.
	if allowed != 10 {
		t.Fatalf("got %d allowed from the local share, want 10", allowed)
	}
	if got := primary.calls.Load() - before; got != 5 {
		t.Fatalf("got %d calls to Redis while it was down, want 5 (then the breaker opens)", got)
	}
	st := res.Stats()
	if res.Healthy() || st.BreakerOpens != 1 || st.PrimaryErrors != 5 || st.Fallbacks != 40 {
		t.Fatalf("got healthy=%t stats %+v, want unhealthy, 1 open, 5 errors, 40 fallbacks", res.Healthy(), st)
	}

	// Still within the cool-down: no Redis call at all.
	c.Advance(500 * time.Millisecond)
	for range 10 {
		_, _ = timedAllow(t, res, "k", r)
	}
	if got := primary.calls.Load() - before; got != 5 {
		t.Fatalf("got %d calls to Redis during the cool-down, want still 5", got)
	}

	recoverShared(t, srv, res, c, r)
	calls := primary.calls.Load()
	for i := range 3 {
		d, err := timedAllow(t, res, "k2", r)
		if err != nil || !d.Allowed || d.Remaining != int64(29-i) {
			t.Fatalf("after recovery: got %+v, %v, want allowed by Redis with %d remaining", d, err, 29-i)
		}
	}
	if got := primary.calls.Load() - calls; got != 3 {
		t.Fatalf("got %d Redis calls after recovery, want 3", got)
	}
}

func TestResilientFailClosed(t *testing.T) {
	srv, primary, res, c := newTestResilient(t, true)
	r := Rule{Limit: 5, Window: time.Minute}
	if _, err := timedAllow(t, res, "k", r); err != nil {
		t.Fatalf("healthy: %s", err)
	}
	srv.Stop()
	before := primary.calls.Load()
	for i := range 20 {
		if _, err := timedAllow(t, res, "k", r); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d: got %v, want ErrUnavailable", i, err)
		}
	}
	if got := primary.calls.Load() - before; got != 5 {
		t.Fatalf("got %d Redis calls, want 5", got)
	}
	if st := res.Stats(); st.Unavailable != 20 || st.Fallbacks != 0 {
		t.Fatalf("got stats %+v, want 20 unavailable, 0 fallbacks", st)
	}
	recoverShared(t, srv, res, c, r)
	if d, err := timedAllow(t, res, "k", r); err != nil || !d.Allowed {
		t.Fatalf("after recovery: got %+v, %v, want allowed", d, err)
	}
}

func TestResilientInvalidRuleIsNotAnOutage(t *testing.T) {
	_, primary, res, _ := newTestResilient(t, true)
	for range 10 {
		if _, err := res.Allow(context.Background(), "k", Rule{}); !errors.Is(err, ErrInvalidRule) {
			t.Fatalf("got %v, want ErrInvalidRule", err)
		}
	}
	if !res.Healthy() || primary.calls.Load() != 0 {
		t.Fatalf("got healthy=%t and %d Redis calls, want healthy and 0", res.Healthy(), primary.calls.Load())
	}
}

func TestResilientCallerCancelIsNotAnOutage(t *testing.T) {
	_, _, res, _ := newTestResilient(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		if _, err := res.Allow(ctx, "k", Rule{Limit: 1, Window: time.Second}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	}
	if !res.Healthy() || res.Stats().PrimaryErrors != 0 {
		t.Fatalf("got healthy=%t stats %+v, want healthy with no errors", res.Healthy(), res.Stats())
	}
}
