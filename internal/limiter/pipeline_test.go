package limiter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/redistest"
)

func newPipelinedRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	opts.KeyPrefix = "test:"
	rl, err := NewRedis(opts)
	if err != nil {
		t.Fatalf("NewRedis: %s", err)
	}
	t.Cleanup(func() { _ = rl.Close() })
	return rl
}

// evalCalls returns how many EVALSHA and EVAL calls the server has run
// successfully (an EVALSHA refused with NOSCRIPT is a failed call).
func evalCalls(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %s", err)
	}
	var n int64
	for line := range strings.Lines(info) {
		for _, name := range []string{"cmdstat_evalsha:", "cmdstat_eval:"} {
			rest, ok := strings.CutPrefix(line, name)
			if !ok {
				continue
			}
			for field := range strings.SplitSeq(strings.TrimSpace(rest), ",") {
				k, v, _ := strings.Cut(field, "=")
				sign := int64(0)
				switch k {
				case "calls":
					sign = 1
				case "failed_calls":
					sign = -1
				}
				if sign == 0 {
					continue
				}
				x, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("parse %q: %s", line, err)
				}
				n += sign * x
			}
		}
	}
	return n
}

// pollUntil calls f until it returns nil, and fails the test with f's
// last error after 10 s. It is the one poll of these tests, for state that
// signals nothing: the pipeliner's slots and queue (a hook on the path of
// every decision only for tests is not worth its cost) and a restarted
// redis-server.
func pollUntil(t *testing.T, f func() error) {
	t.Helper()
	const within = 10 * time.Second
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, err)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

// queuedIs reports an error unless n calls wait in rl's queue.
func queuedIs(rl *Redis, n int) func() error {
	return func() error {
		if got := rl.pipe.queued(); got != n {
			return fmt.Errorf("queued calls: got %d, want %d", got, n)
		}
		return nil
	}
}

// directIs reports an error unless rl has sent n decisions alone.
func directIs(rl *Redis, n uint64) func() error {
	return func() error {
		if got := rl.Stats().Direct; got != n {
			return fmt.Errorf("decisions sent alone: got %d, want %d", got, n)
		}
		return nil
	}
}

func (p *pipeliner) queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// TestRedisPipelineExact is 64 goroutines deciding 1,000 requests through
// one pipelined limiter with few connection slots: the counts stay exact,
// every decision reaches Redis exactly once, and most of them share round
// trips. It runs against a single node and a Redis Cluster.
func TestRedisPipelineExact(t *testing.T) {
	single := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	rules := []struct {
		name      string
		rule      Rule
		tolerance int64
	}{
		{"fixed_window", Rule{Limit: 300, Window: time.Minute, Algorithm: FixedWindow}, 0},
		{"gcra", Rule{Limit: 300, Window: time.Minute, Burst: 300}, 0},
		{"sliding_window", Rule{Limit: 300, Window: time.Minute, Algorithm: SlidingWindow}, 3},
	}
	for _, node := range []struct {
		name string
		opts RedisOptions
		raw  redis.UniversalClient
	}{
		{"single", RedisOptions{URL: single.URL()}, rawClient(t, single.Addr())},
		{"cluster", RedisOptions{Addrs: []string{cluster.Addr()}}, rawClient(t, cluster.Addr())},
	} {
		for _, tt := range rules {
			t.Run(node.name+"/"+tt.name, func(t *testing.T) {
				opts := node.opts
				opts.Timeout, opts.PoolSize = 10*time.Second, 2
				rl := newPipelinedRedis(t, opts)
				awayFromEdge(t, rawClient(t, single.Addr()), time.Minute, 3*time.Second)
				before := evalCalls(t, node.raw)
				got := exactUnder64(t, rl, "pipe:"+tt.name, tt.rule, 1000)
				if d := got - 300; d < -tt.tolerance || d > tt.tolerance {
					t.Fatalf("got %d allowed, want 300 (±%d)", got, tt.tolerance)
				}
				if n := evalCalls(t, node.raw) - before; n != 1000 {
					t.Fatalf("got %d script calls in Redis, want 1000 (one per decision)", n)
				}
				st := rl.Stats()
				t.Logf("%s", st)
				if st.Direct+st.Pipelined != 1000 {
					t.Fatalf("got %s, want direct+pipelined = 1000", st)
				}
				// Round trips: one per direct decision, one per pipeline.
				if trips := st.Direct + st.Pipelines; trips*2 > 1000 {
					t.Fatalf("got %d round trips for 1000 decisions (%s), want at most 500", trips, st)
				}
			})
		}
	}
}

// exactUnder64 runs n decisions for key from 64 goroutines and returns how
// many were allowed.
func exactUnder64(t *testing.T, l Limiter, key string, r Rule, n int) int64 {
	t.Helper()
	var mu sync.Mutex
	var allowed int64
	var firstErr error
	var wg sync.WaitGroup
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	for range 64 {
		wg.Go(func() {
			for range work {
				d, err := l.Allow(context.Background(), key, r)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if d.Allowed {
					allowed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("Allow: %s", firstErr)
	}
	return allowed
}

// TestRedisPipelineLowLoad checks that decisions made one at a time are
// sent at once on their own, never held for a batch.
func TestRedisPipelineLowLoad(t *testing.T) {
	srv := redistest.Start(t)
	rl := newPipelinedRedis(t, RedisOptions{URL: srv.URL(), Timeout: time.Second})
	for i := range 10 {
		mustAllow(t, rl, "low:"+strconv.Itoa(i), Rule{Limit: 5, Window: time.Second})
	}
	if st := rl.Stats(); st.Direct != 10 || st.Pipelines != 0 {
		t.Fatalf("got %s, want 10 direct and no pipelines", st)
	}
}

// TestRedisPipelineNoScript sends a pipeline after the server lost its
// script cache: the decisions fall back to EVAL and are right.
func TestRedisPipelineNoScript(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rl := newPipelinedRedis(t, RedisOptions{URL: srv.URL(), Timeout: 5 * time.Second})
	mustAllow(t, rl, "warm", Rule{Limit: 5, Window: time.Second}) // the script is loaded
	if err := raw.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %s", err)
	}
	r := Rule{Limit: 2, Window: time.Minute, Algorithm: FixedWindow}
	var batch []*scriptCall
	for range 3 {
		batch = append(batch, &scriptCall{ctx: context.Background(), script: fixedScript,
			keys: []string{"{test:noscript}"}, args: []any{"2", strconv.FormatInt(r.Window.Microseconds(), 10), "2"},
			done: make(chan scriptResult, 1)})
	}
	rl.pipe.exec(batch)
	for i, c := range batch {
		res := <-c.done
		if res.err != nil {
			t.Fatalf("call %d: %s", i, res.err)
		}
		if want := int64(1); i == 2 {
			want = 0
			if res.vals[0] != want {
				t.Fatalf("call %d: got allowed=%d, want %d", i, res.vals[0], want)
			}
		} else if res.vals[0] != want {
			t.Fatalf("call %d: got allowed=%d, want %d", i, res.vals[0], want)
		}
	}
	if st := rl.Stats(); st.Pipelines != 2 {
		t.Fatalf("got %s, want 2 pipelines (EVALSHA, then EVAL after NOSCRIPT)", st)
	}
}

// TestRedisPipelineCancel checks that a caller waiting for a pipeline
// returns as soon as its context ends, and that the others still get
// their answers.
func TestRedisPipelineCancel(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rl := newPipelinedRedis(t, RedisOptions{URL: srv.URL(), Timeout: 10 * time.Second, PoolSize: 1})
	mustAllow(t, rl, "warm", Rule{Limit: 5, Window: time.Second}) // a connection is open
	// Redis runs no script until the test lets it (WRITE mode holds every
	// script and lets CLIENT UNPAUSE through): the first call holds the
	// only slot, the others queue.
	if err := raw.Do(context.Background(), "CLIENT", "PAUSE", "20000", "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %s", err)
	}
	r := Rule{Limit: 100, Window: time.Minute}
	results := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := rl.Allow(context.Background(), "cancel:"+strconv.Itoa(i), r)
			results <- err
		}()
		if i == 0 {
			pollUntil(t, directIs(rl, 2)) // the first call took the slot
		}
	}
	pollUntil(t, queuedIs(rl, 3))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := rl.Allow(ctx, "cancel:me", r)
		got <- err
	}()
	pollUntil(t, queuedIs(rl, 4))
	cancel()
	select {
	case err := <-got:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("a cancelled caller still waits for the paused pipeline")
	}
	if err := raw.Do(context.Background(), "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatalf("CLIENT UNPAUSE: %s", err)
	}
	for range 4 {
		if err := <-results; err != nil {
			t.Fatalf("a caller that did not cancel got %s, want its decision", err)
		}
	}
	if n, err := raw.Exists(context.Background(), "{test:cancel:me}").Result(); err != nil || n != 0 {
		t.Fatalf("got EXISTS %d, %v for the cancelled key, want 0: a cancelled queued call is not sent", n, err)
	}
}

// TestRedisPipelineServerKilled kills Redis while a pipeline is in flight
// and more decisions are queued: every waiter gets an error promptly, long
// before the limiter's timeout.
func TestRedisPipelineServerKilled(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rl := newPipelinedRedis(t, RedisOptions{URL: srv.URL(), Timeout: 30 * time.Second, PoolSize: 2})
	mustAllow(t, rl, "warm", Rule{Limit: 5, Window: time.Second})
	if err := raw.Do(context.Background(), "CLIENT", "PAUSE", "20000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %s", err)
	}
	r := Rule{Limit: 100, Window: time.Minute}
	// Two callers with short deadlines hold both slots, then give them up
	// to the queue: the queued decisions leave as pipelines that Redis,
	// paused, does not answer. (A deadline, not a cancel: the Redis client
	// gives up a read in flight only at a deadline.)
	openers := make(chan error, 2)
	for i := range 2 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := rl.Allow(ctx, "opener:"+strconv.Itoa(i), r)
			openers <- err
		}()
	}
	pollUntil(t, directIs(rl, 3)) // both slots taken
	const waiters = 62
	results := make(chan error, waiters)
	for i := range waiters {
		go func() {
			_, err := rl.Allow(context.Background(), "killed:"+strconv.Itoa(i), r)
			results <- err
		}()
	}
	pollUntil(t, queuedIs(rl, waiters))
	for range 2 {
		<-openers
	}
	pollUntil(t, func() error {
		if rl.Stats().Pipelines == 0 {
			return errors.New("no pipeline in flight")
		}
		return nil
	})
	killed := time.Now()
	srv.Stop()
	for i := range waiters {
		select {
		case err := <-results:
			if err == nil {
				t.Fatalf("waiter %d: got a decision from a killed server, want an error", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d waiters answered within 5s of the kill (timeout 30s)", i, waiters)
		}
	}
	if d := time.Since(killed); d > 5*time.Second {
		t.Fatalf("waiters answered %s after the kill, want promptly", d)
	}
}

// TestRedisPipelineClose fails queued decisions when the limiter closes.
func TestRedisPipelineClose(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv.Addr())
	rl, err := NewRedis(RedisOptions{URL: srv.URL(), Timeout: 10 * time.Second, PoolSize: 1})
	if err != nil {
		t.Fatalf("NewRedis: %s", err)
	}
	mustAllow(t, rl, "warm", Rule{Limit: 5, Window: time.Second})
	if err := raw.Do(context.Background(), "CLIENT", "PAUSE", "1000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %s", err)
	}
	r := Rule{Limit: 100, Window: time.Minute}
	results := make(chan error, 3)
	for i := range 3 {
		go func() {
			_, err := rl.Allow(context.Background(), "close:"+strconv.Itoa(i), r)
			results <- err
		}()
	}
	pollUntil(t, queuedIs(rl, 2))
	_ = rl.Close()
	for range 3 {
		if err := <-results; err == nil {
			t.Fatal("got a decision after Close, want an error")
		}
	}
	if _, err := rl.Allow(context.Background(), "after", r); err == nil {
		t.Fatal("got a decision from a closed limiter, want an error")
	}
}
