package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/limiter"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/redisclient"
)

// MemoryKey is the Shared key of the in-memory limiter; tests may put
// their own limiter there before building.
var MemoryKey = pipeline.NewKey[limiter.Limiter]("ratelimit:memory")

// built is a Redis limiter (exact or batched) behind its resilient
// wrapper. The server runs it to sweep the local fallback limiter.
type built struct {
	lim   limiter.Limiter
	local sweptMemory
}

// Run sweeps the local fallback limiter until ctx ends.
func (b *built) Run(ctx context.Context) {
	if b.local.Memory != nil {
		b.local.Run(ctx)
	}
}

// limiterFor returns the long-lived limiter for store and s's mode: the
// in-memory one, or a Redis one (exact, or batched with s's lease) behind
// the resilient wrapper, named by its settings.
func limiterFor(shared *pipeline.Shared, env *pipeline.BuildEnv, s settings) (limiter.Limiter, error) {
	if err := checkBatched(s, env); err != nil {
		return nil, err
	}
	store := env.Store
	if store == nil || store.Redis == nil {
		return pipeline.Get(shared, MemoryKey, func() limiter.Limiter {
			return sweptMemory{limiter.NewMemory(limiter.MemoryOptions{SweepInterval: -1})}
		}), nil
	}
	rc := store.Redis
	// One limiter per connection (a hash, never a secret) and per setting
	// that shapes its decisions.
	key := "ratelimit:" + redisclient.Key(rc) + ":" + rc.KeyPrefix + ":" + rc.OnError + ":" +
		strconv.Itoa(rc.Instances) + ":" + rc.Timeout.D().String()
	client, err := redisclient.Shared(shared, rc)
	if err != nil {
		return nil, fmt.Errorf("rate limit store: %w", err)
	}
	conn := pipeline.Get(shared, pipeline.NewKey[*redisConn](key+":conn"), func() *redisConn {
		r, err := limiter.NewRedis(limiter.RedisOptions{
			Client:    client,
			Timeout:   rc.Timeout.D(),
			KeyPrefix: rc.KeyPrefix,
			PoolSize:  rc.PoolSize,
		})
		if err != nil {
			return &redisConn{err: fmt.Errorf("rate limit store: %w", err)}
		}
		return &redisConn{r: r}
	})
	if conn.err != nil {
		return nil, conn.err
	}
	if s.mode == modeBatched {
		key += ":batched:" + strconv.FormatInt(s.lease, 10)
	}
	b := pipeline.Get(shared, pipeline.NewKey[*built](key), func() *built {
		var primary limiter.Limiter = conn.r
		if s.mode == modeBatched {
			primary = limiter.NewBatched(conn.r, limiter.BatchedOptions{LeaseSize: s.lease})
		}
		local := limiter.NewMemory(limiter.MemoryOptions{SweepInterval: -1})
		return &built{lim: limiter.NewResilient(primary, limiter.ResilientOptions{
			Timeout:    rc.Timeout.D(),
			FailClosed: rc.OnError == "fail_closed",
			Instances:  rc.Instances,
			Local:      local,
		}), local: sweptMemory{local}}
	})
	return b.lim, nil
}

// redisConn is the Redis limiter shared by the exact and batched limiters
// of one store (on the store's shared client), or the error that kept it
// from being made.
type redisConn struct {
	r   *limiter.Redis
	err error
}

// Close stops the limiter once no config names its store any more
// (pipeline.Shared retires it after a reload; the client is retired with it).
func (c *redisConn) Close() error {
	if c.r == nil {
		return nil
	}
	return c.r.Close()
}

// sweepInterval is how often the shared memory limiter drops idle keys.
const sweepInterval = 10 * time.Second

// sweptMemory is the shared memory limiter; the server runs its sweeper
// (Build starts no goroutines).
type sweptMemory struct{ *limiter.Memory }

// Run drops idle keys every sweepInterval until ctx ends.
func (m sweptMemory) Run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// inflight counts requests in flight per key, for concurrency limits.
// Keys at zero are removed, so the map holds only active callers.
type inflight struct {
	mu sync.Mutex
	n  map[string]int64
}

func newInflight() *inflight { return &inflight{n: make(map[string]int64)} }

// inflightKey is the Shared key of the concurrency counters.
var inflightKey = pipeline.NewKey[*inflight]("ratelimit:inflight")

func (f *inflight) acquire(key string, limit int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] >= limit {
		return false
	}
	f.n[key]++
	return true
}

func (f *inflight) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[key] <= 1 {
		delete(f.n, key)
		return
	}
	f.n[key]--
}
