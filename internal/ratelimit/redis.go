package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for RedisOptions.
const (
	defaultRedisTimeout = 50 * time.Millisecond
	defaultKeyPrefix    = "portico:"
)

// RedisOptions configures a Redis limiter. Exactly one of URL and Addrs is
// required.
type RedisOptions struct {
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
	PoolSize int
}

// Redis is a Limiter whose state lives in Redis, exact across every
// gateway instance sharing it (see the package doc). Close releases its
// connections.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// NewRedis returns a Redis limiter. It does not contact Redis: the first
// decision does. Commands are not retried and a failed dial is not
// repeated: a decision has a budget of Timeout, and Resilient decides what
// a failure means.
func NewRedis(opts RedisOptions) (*Redis, error) {
	var client redis.UniversalClient
	switch {
	case opts.URL != "" && len(opts.Addrs) > 0:
		return nil, errors.New("redis: set url or addrs, not both")
	case opts.URL != "":
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			// The URL may hold a password: do not echo it.
			return nil, errors.New("redis: url is not a valid redis:// or rediss:// url")
		}
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1
		o.DialerRetries = 1
		if opts.PoolSize > 0 {
			o.PoolSize = opts.PoolSize
		}
		client = redis.NewClient(o)
	case len(opts.Addrs) > 0:
		client = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 opts.Addrs,
			Password:              opts.Password,
			PoolSize:              opts.PoolSize,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			DialerRetries:         1,
		})
	default:
		return nil, errors.New("redis: url or addrs is required")
	}
	r := &Redis{client: client, prefix: opts.KeyPrefix, timeout: opts.Timeout}
	if r.prefix == "" {
		r.prefix = defaultKeyPrefix
	}
	if r.timeout <= 0 {
		r.timeout = defaultRedisTimeout
	}
	return r, nil
}

// Close closes the connections to Redis.
func (rl *Redis) Close() error {
	return rl.client.Close()
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
	ctx, cancel := context.WithTimeout(ctx, rl.timeout)
	defer cancel()
	keys := []string{"{" + rl.prefix + key + "}"}
	winUS := max(1, r.Window.Microseconds())
	res, err := script.Run(ctx, rl.client, keys,
		strconv.FormatInt(r.Limit, 10), strconv.FormatInt(winUS, 10), strconv.FormatInt(r.burst(), 10)).Int64Slice()
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
