package limiter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/redistest"
)

func newTestRedis(t testing.TB, url string, timeout time.Duration) *Redis {
	t.Helper()
	rl, err := NewRedis(RedisOptions{URL: url, Timeout: timeout, KeyPrefix: "test:"})
	if err != nil {
		t.Fatalf("NewRedis: %s", err)
	}
	t.Cleanup(func() { _ = rl.Close() })
	return rl
}

func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// awayFromEdge waits, if needed, until the current window of the given
// length (by Redis time) has more than margin left, so that a fixed window
// test does not straddle two windows. Redis computes windows with its own
// TIME, which no fake clock can stand in for: near an edge the test waits,
// once, for the next window to begin.
func awayFromEdge(t *testing.T, c *redis.Client, window, margin time.Duration) {
	t.Helper()
	for range 3 {
		now, err := c.Time(context.Background()).Result()
		if err != nil {
			t.Fatalf("TIME: %s", err)
		}
		left := window - time.Duration(now.UnixNano()%int64(window))
		if left > margin {
			return
		}
		time.Sleep(left) // into the next window by Redis's clock
	}
	t.Fatal("redis time did not leave the window edge")
}

// TestRedisExactAcrossInstances is three gateway processes (three clients)
// sharing one key: 1,000 concurrent requests against 300 per minute.
func TestRedisExactAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	tests := []struct {
		name      string
		rule      Rule
		tolerance int64
	}{
		{"fixed_window", Rule{Limit: 300, Window: time.Minute, Algorithm: FixedWindow}, 0},
		{"gcra", Rule{Limit: 300, Window: time.Minute, Burst: 300}, 0},
		{"sliding_window", Rule{Limit: 300, Window: time.Minute, Algorithm: SlidingWindow}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := make([]Limiter, 3)
			for i := range ls {
				ls[i] = newTestRedis(t, srv.URL(), 10*time.Second)
			}
			awayFromEdge(t, raw, time.Minute, 3*time.Second)
			start := time.Now()
			got := exactUnderConcurrency(t, ls, "exact:"+tt.name, tt.rule, 1000)
			// GCRA refills smoothly: one more request is due every
			// window/limit (200ms) the test runs, on a loaded machine too.
			refill := int64(0)
			if tt.rule.Algorithm == GCRA {
				refill = int64(time.Since(start) / (tt.rule.Window / time.Duration(tt.rule.Limit)))
			}
			if d := got - 300; d < -tt.tolerance || d > tt.tolerance+refill {
				t.Fatalf("got %d allowed, want 300 (-%d, +%d refilled during the test)", got, tt.tolerance, tt.tolerance+refill)
			}
		})
	}
}

func TestRedisDecisionFields(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rl := newTestRedis(t, srv.URL(), time.Second)

	t.Run("gcra", func(t *testing.T) {
		r := Rule{Limit: 10, Window: time.Second, Burst: 20}
		for i := range 20 {
			d := mustAllow(t, rl, "gcra", r)
			if !d.Allowed {
				t.Fatalf("request %d: got denied, want allowed", i)
			}
			// Time passes between calls, so a refill may add one.
			if want := int64(19 - i); d.Remaining != want && d.Remaining != want+1 {
				t.Fatalf("request %d: got remaining %d, want %d", i, d.Remaining, want)
			}
		}
		d := mustAllow(t, rl, "gcra", r)
		if d.Allowed {
			t.Fatal("request 21: got allowed, want denied")
		}
		if d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
			t.Fatalf("got RetryAfter %s, want (0, 100ms]", d.RetryAfter)
		}
		if d.Reset <= time.Second || d.Reset > 2*time.Second {
			t.Fatalf("got Reset %s, want (1s, 2s]", d.Reset)
		}
		// The property under test: waiting RetryAfter is enough. Redis
		// decides by its own TIME, which no fake clock can stand in for.
		time.Sleep(d.RetryAfter)
		if d := mustAllow(t, rl, "gcra", r); !d.Allowed {
			t.Fatalf("got denied after waiting RetryAfter, want allowed (RetryAfter now %s)", d.RetryAfter)
		}
		ttl, err := raw.PTTL(context.Background(), "{test:gcra}").Result()
		if err != nil || ttl <= 0 || ttl > 2*time.Second {
			t.Fatalf("got PTTL %s, %v for {test:gcra}, want (0, 2s]", ttl, err)
		}
	})

	t.Run("fixed_window", func(t *testing.T) {
		r := Rule{Limit: 2, Window: time.Second, Algorithm: FixedWindow}
		var d Decision
		for range 3 {
			d = mustAllow(t, rl, "fixed", r)
		}
		if d.Allowed || d.Remaining != 0 {
			t.Fatalf("got allowed=%t remaining=%d, want denied with 0", d.Allowed, d.Remaining)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > time.Second || d.Reset != d.RetryAfter {
			t.Fatalf("got RetryAfter %s Reset %s, want equal and in (0, 1s]", d.RetryAfter, d.Reset)
		}
		time.Sleep(d.RetryAfter) // waiting RetryAfter is enough, by Redis's TIME
		if d := mustAllow(t, rl, "fixed", r); !d.Allowed {
			t.Fatal("got denied after waiting RetryAfter, want allowed")
		}
		ttl, err := raw.PTTL(context.Background(), "{test:fixed}").Result()
		if err != nil || ttl <= 0 || ttl > time.Second {
			t.Fatalf("got PTTL %s, %v, want (0, 1s]", ttl, err)
		}
	})

	t.Run("sliding_window", func(t *testing.T) {
		r := Rule{Limit: 3, Window: time.Second, Algorithm: SlidingWindow}
		var d Decision
		for range 4 {
			d = mustAllow(t, rl, "sliding", r)
		}
		if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 {
			t.Fatalf("got %+v, want denied with remaining 0 and a RetryAfter", d)
		}
		time.Sleep(d.RetryAfter) // waiting RetryAfter is enough, by Redis's TIME
		if d := mustAllow(t, rl, "sliding", r); !d.Allowed {
			t.Fatalf("got denied after waiting RetryAfter, want allowed (now %s)", d.RetryAfter)
		}
		ttl, err := raw.PTTL(context.Background(), "{test:sliding}").Result()
		if err != nil || ttl <= 0 || ttl > 2*time.Second {
			t.Fatalf("got PTTL %s, %v, want (0, 2s]", ttl, err)
		}
	})
}

func TestNewRedisOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts RedisOptions
		ok   bool
	}{
		{"url", RedisOptions{URL: "redis://127.0.0.1:1/0"}, true},
		{"cluster", RedisOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, true},
		{"none", RedisOptions{}, false},
		{"both", RedisOptions{URL: "redis://127.0.0.1:1", Addrs: []string{"127.0.0.1:1"}}, false},
		{"bad url hides password", RedisOptions{URL: "http://u:hunter2@x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rl, err := NewRedis(tt.opts)
			if (err == nil) != tt.ok {
				t.Fatalf("got error %v, want ok=%t", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error %q echoes the password", err)
			}
			if rl != nil {
				_ = rl.Close()
			}
		})
	}
}

func TestRedisTimeoutBoundsCall(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rl := newTestRedis(t, srv.URL(), 50*time.Millisecond)
	mustAllow(t, rl, "warm", Rule{Limit: 1, Window: time.Second})
	// Pause every client for 2s; the decision must give up after ~50ms.
	if err := raw.Do(context.Background(), "CLIENT", "PAUSE", "2000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %s", err)
	}
	start := time.Now()
	_, err := rl.Allow(context.Background(), "slow", Rule{Limit: 1, Window: time.Second})
	took := time.Since(start)
	if err == nil {
		t.Fatal("got a decision from a paused server, want a timeout error")
	}
	if took > 500*time.Millisecond {
		t.Fatalf("got a call of %s, want it bounded near the 50ms timeout", took)
	}
}

// TestRedisClusterAddrs runs the scripts through a Cluster client (addrs)
// against a one-node Redis Cluster: hash-tagged keys, exact counts.
func TestRedisClusterAddrs(t *testing.T) {
	srv := redistest.StartCluster(t)
	ls := make([]Limiter, 3)
	for i := range ls {
		rl, err := NewRedis(RedisOptions{Addrs: []string{srv.Addr()}, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("NewRedis: %s", err)
		}
		t.Cleanup(func() { _ = rl.Close() })
		ls[i] = rl
	}
	r := Rule{Limit: 100, Window: time.Minute, Burst: 100}
	start := time.Now()
	got := exactUnderConcurrency(t, ls, "cluster", r, 300)
	refill := int64(time.Since(start) / (r.Window / time.Duration(r.Limit))) // GCRA's smooth refill
	if got < 100 || got > 100+refill {
		t.Fatalf("got %d allowed, want 100 (+%d refilled during the test)", got, refill)
	}
	raw := rawClient(t, srv.Addr())
	if n, err := raw.Exists(context.Background(), "{portico:cluster}").Result(); err != nil || n != 1 {
		t.Fatalf("got EXISTS {portico:cluster} = %d, %v, want 1 (default prefix, hash-tagged)", n, err)
	}
}
