// Package redisclient builds the one Redis client that Portico's shared
// state uses (rate limiting and the response cache) from the config's
// store.redis: a single node (url: redis:// or rediss:// for TLS) or a Redis
// Cluster (addrs).
//
// The client never retries a command and dials at most once per command:
// every caller bounds each call with its own context deadline (the client
// honours context deadlines on the socket), and decides itself what a
// failure means (rate limiting's on_error policy; a cache miss). A slow or
// dead Redis therefore costs a caller its timeout, never more.
package redisclient

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// New returns a client for cfg: a *redis.Client for URL, a
// *redis.ClusterClient for Addrs (exactly one is required). It does not
// contact Redis: the first command does. The caller owns the client and
// closes it. Errors never echo the URL or the password.
func New(cfg *config.Redis) (redis.UniversalClient, error) {
	if cfg == nil {
		return nil, errors.New("redis: no store.redis configured")
	}
	switch {
	case cfg.URL != "" && len(cfg.Addrs) > 0:
		return nil, errors.New("redis: set url or addrs, not both")
	case cfg.URL != "":
		o, err := redis.ParseURL(cfg.URL.Value())
		if err != nil {
			// The URL may hold a password: do not echo it.
			return nil, errors.New("redis: url is not a valid redis:// or rediss:// url")
		}
		o.ContextTimeoutEnabled = true
		o.MaxRetries = -1
		o.DialerRetries = 1
		if cfg.PoolSize > 0 {
			o.PoolSize = cfg.PoolSize
		}
		return redis.NewClient(o), nil
	case len(cfg.Addrs) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 cfg.Addrs,
			Password:              cfg.Password.Value(),
			PoolSize:              cfg.PoolSize,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1,
			DialerRetries:         1,
		}), nil
	default:
		return nil, errors.New("redis: url or addrs is required")
	}
}

// Key identifies the connection cfg describes (URL, Addrs, Password,
// PoolSize; not the settings callers apply per call), so that users of one
// store can share one client, for example under a pipeline.Shared key. It
// holds a hash, never a secret.
func Key(cfg *config.Redis) string {
	if cfg == nil {
		return "redis:none"
	}
	id := sha256.Sum256([]byte(cfg.URL.Value() + "\x00" + strings.Join(cfg.Addrs, ",") + "\x00" +
		cfg.Password.Value() + "\x00" + strconv.Itoa(cfg.PoolSize)))
	return "redis:" + hex.EncodeToString(id[:8])
}

// conn is a client kept in pipeline.Shared, or the error that kept it from
// being made. Shared closes it once no config names its store.
type conn struct {
	c   redis.UniversalClient
	err error
}

// Close closes the client.
func (c *conn) Close() error {
	if c.c == nil {
		return nil
	}
	return c.c.Close()
}

// Shared returns the one client for cfg kept in shared, making it the
// first time: every feature that keeps state in the same store (rate
// limiting, the cache) uses one connection pool, which lives as long as a
// config names the store. Callers must not close it.
func Shared(shared *pipeline.Shared, cfg *config.Redis) (redis.UniversalClient, error) {
	c := pipeline.Get(shared, pipeline.NewKey[*conn](Key(cfg)), func() *conn {
		cl, err := New(cfg)
		return &conn{c: cl, err: err}
	})
	return c.c, c.err
}
