package limiter

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/redisclient"
)

// Defaults for RedisOptions.
const (
	defaultRedisTimeout = 50 * time.Millisecond
	defaultKeyPrefix    = "portico:"
)

// RedisOptions configures a Redis limiter. Exactly one of Client, URL and
// Addrs is required.
type RedisOptions struct {
	// Client is an existing client to use (the store's shared one); the
	// limiter does not close it. Without it, NewRedis makes its own from
	// URL or Addrs and closes it on Close.
	Client redis.UniversalClient
	// URL is redis://[user:password@]host:port[/db] or rediss:// for one node.
	URL string
	// Addrs are Redis Cluster seed nodes ("host:port").
	Addrs []string
	// Password authenticates to Addrs (URL carries its own).
	Password string
	// Timeout bounds each decision (one round trip); default 50ms.
	Timeout time.Duration
	// KeyPrefix starts every key; default "portico:".
	KeyPrefix string
	// PoolSize bounds connections per node; default go-redis's (10 per CPU).
	// It also bounds the pipelines in flight.
	PoolSize int
	// NoPipeline sends every decision as its own round trip. By default
	// concurrent decisions are gathered into pipelines (see Redis).
	NoPipeline bool
	// MaxBatch bounds the decisions in one pipeline; default 128.
	MaxBatch int
}

// Redis is a Limiter whose state lives in Redis, exact across every
// gateway instance sharing it (see the package doc). Close releases its
// connections.
//
// Unless NoPipeline is set, decisions are pipelined automatically: a
// decision that finds one of PoolSize connection slots free goes out at
// once on its own; decisions that arrive while every slot is busy queue and
// leave together, as one pipeline of up to MaxBatch scripts, as soon as a
// slot is free again. There is no delay: at low load latency is that of one
// round trip, and under load one round trip carries many decisions. With
// Redis Cluster, go-redis splits each pipeline by the node owning each
// key's slot and sends the parts in parallel.
type Redis struct {
	client  redis.UniversalClient
	owned   bool // the client is the limiter's own: Close closes it
	prefix  string
	timeout time.Duration
	pipe    *pipeliner // nil with NoPipeline
}

// NewRedis returns a Redis limiter. It does not contact Redis: the first
// decision does. Commands are not retried and a failed dial is not
// repeated: a decision has a budget of Timeout, and Resilient decides what
// a failure means.
func NewRedis(opts RedisOptions) (*Redis, error) {
	client, owned := opts.Client, false
	if client == nil {
		c, err := redisclient.New(&config.Redis{
			URL:      config.Secret(opts.URL),
			Addrs:    opts.Addrs,
			Password: config.Secret(opts.Password),
			PoolSize: opts.PoolSize,
		})
		if err != nil {
			return nil, err
		}
		client, owned = c, true
	}
	r := &Redis{client: client, owned: owned, prefix: opts.KeyPrefix, timeout: opts.Timeout}
	if r.prefix == "" {
		r.prefix = defaultKeyPrefix
	}
	if r.timeout <= 0 {
		r.timeout = defaultRedisTimeout
	}
	if !opts.NoPipeline {
		slots := opts.PoolSize
		if slots <= 0 {
			slots = 10 * runtime.GOMAXPROCS(0) // go-redis's default pool size
		}
		batch := opts.MaxBatch
		if batch <= 0 {
			batch = defaultMaxBatch
		}
		r.pipe = newPipeliner(client, r.timeout, slots, batch)
	}
	return r, nil
}

// Close fails the decisions still queued and closes the connections to
// Redis (unless the client was given in RedisOptions.Client); it returns
// once no pipeline is in flight.
func (rl *Redis) Close() error {
	var err error
	if rl.pipe != nil {
		rl.pipe.shut()
	}
	if rl.owned {
		err = rl.client.Close()
	}
	if rl.pipe != nil {
		rl.pipe.wg.Wait()
	}
	return err
}

// Stats returns the pipelining counters (all zero with NoPipeline).
func (rl *Redis) Stats() RedisStats {
	if rl.pipe == nil {
		return RedisStats{}
	}
	return RedisStats{
		Direct:    rl.pipe.direct.Load(),
		Pipelines: rl.pipe.pipelines.Load(),
		Pipelined: rl.pipe.commands.Load(),
	}
}

// Allow decides one request for key under r with one atomic script call,
// bounded by the configured Timeout.
func (rl *Redis) Allow(ctx context.Context, key string, r Rule) (Decision, error) {
	if err := r.Validate(); err != nil {
		return Decision{}, err
	}
	script := gcraScript
	switch r.Algorithm {
	case FixedWindow:
		script = fixedScript
	case SlidingWindow:
		script = slidingScript
	}
	keys := []string{"{" + rl.prefix + key + "}"}
	winUS := max(1, r.Window.Microseconds())
	args := []any{strconv.FormatInt(r.Limit, 10), strconv.FormatInt(winUS, 10), strconv.FormatInt(r.burst(), 10)}
	var res []int64
	var err error
	if rl.pipe != nil {
		res, err = rl.pipe.do(&scriptCall{ctx: ctx, script: script, keys: keys, args: args})
	} else {
		cctx, cancel := context.WithTimeout(ctx, rl.timeout)
		res, err = script.Run(cctx, rl.client, keys, args...).Int64Slice()
		cancel()
	}
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit: %w", err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("redis rate limit: script returned %d values, want 4", len(res))
	}
	return Decision{
		Allowed:    res[0] == 1,
		Limit:      r.Limit,
		Remaining:  max(0, res[1]),
		Reset:      time.Duration(res[2]) * time.Microsecond,
		RetryAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}
