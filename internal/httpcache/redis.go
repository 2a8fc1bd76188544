package httpcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for RedisOptions.
const (
	// DefaultRedisKeyPrefix starts every key of a Redis store by default.
	DefaultRedisKeyPrefix = "portico:cache:"
	// DefaultRedisTimeout bounds each Redis call by default. It is higher
	// than rate limiting's 50ms: a cache call moves a whole response, and a
	// miss after it costs an upstream request anyway.
	DefaultRedisTimeout = 100 * time.Millisecond
	// DefaultRedisPurgeTimeout bounds a whole DeletePrefix by default.
	DefaultRedisPurgeTimeout = 30 * time.Second
	// DefaultRedisMaxEntryBytes is the largest encoded entry stored by
	// default (8 MiB).
	DefaultRedisMaxEntryBytes = 8 << 20

	// redisScanCount is the COUNT hint of each SCAN, and so about the
	// number of keys unlinked per call.
	redisScanCount = 500
)

// RedisOptions configure a Redis store.
type RedisOptions struct {
	// KeyPrefix starts every key in Redis (the store's keys follow it).
	// Default DefaultRedisKeyPrefix.
	KeyPrefix string
	// Timeout bounds each Redis call (GET, SET, UNLINK, one SCAN step).
	// Default DefaultRedisTimeout (100ms).
	Timeout time.Duration
	// PurgeTimeout bounds a whole DeletePrefix, which takes a SCAN and an
	// UNLINK call per ~500 keys on every node. Default
	// DefaultRedisPurgeTimeout (30s).
	PurgeTimeout time.Duration
	// Compress stores entries compressed with zstd when that makes them
	// smaller (EncodeEntryCompressed). Entries are read either way, so it
	// can be switched on a live Redis.
	Compress bool
	// MaxEntryBytes is the largest encoded (after compression) entry Set
	// stores; larger ones are refused with ErrTooLarge. Default
	// DefaultRedisMaxEntryBytes (8 MiB).
	MaxEntryBytes int
}

// Redis is a Store in Redis (single node or Cluster, or Valkey), shared by
// every gateway instance that uses the same server and key prefix. Entries
// are stored as one string each (EncodeEntry's record) under KeyPrefix+key,
// with the entry's TTL as a millisecond expiry (SET PX); Redis evicts them
// by its own maxmemory policy.
//
// Every call is bounded by Timeout and every failure is returned, never
// retried: the caller treats it as a miss, so a slow or dead Redis costs
// a request at most Timeout per call. Redis does not own the client.
type Redis struct {
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	purge    time.Duration
	compress bool
	maxBytes int
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Redis store on client (see internal/redisclient),
// which it uses but does not close. It does not contact Redis.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	r := &Redis{
		client:   client,
		prefix:   opts.KeyPrefix,
		timeout:  opts.Timeout,
		purge:    opts.PurgeTimeout,
		compress: opts.Compress,
		maxBytes: opts.MaxEntryBytes,
	}
	if r.prefix == "" {
		r.prefix = DefaultRedisKeyPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	if r.purge <= 0 {
		r.purge = DefaultRedisPurgeTimeout
	}
	if r.maxBytes <= 0 {
		r.maxBytes = DefaultRedisMaxEntryBytes
	}
	return r
}

// Get returns the entry under key, ErrNotFound when there is none, or the
// error of the call or of a corrupt value.
func (r *Redis) Get(ctx context.Context, key string) (*Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("redis cache get: %w", err)
	}
	e, err := DecodeEntry(b)
	if err != nil {
		return nil, fmt.Errorf("redis cache get: %w", err)
	}
	return e, nil
}

// Set stores e under key for ttl (in whole milliseconds, at least one;
// nothing is stored for ttl <= 0). An entry over MaxEntryBytes once encoded is not
// stored and the error wraps ErrTooLarge.
func (r *Redis) Set(ctx context.Context, key string, e *Entry, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	ttl = max(ttl.Truncate(time.Millisecond), time.Millisecond)
	var b []byte
	if r.compress {
		b = EncodeEntryCompressed(e)
	} else {
		b = EncodeEntry(e)
	}
	if len(b) > r.maxBytes {
		return fmt.Errorf("redis cache set: %d bytes: %w", len(b), ErrTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.client.Set(ctx, r.prefix+key, b, ttl).Err(); err != nil {
		return fmt.Errorf("redis cache set: %w", err)
	}
	return nil
}

// Delete removes the entries under keys with UNLINK (Redis frees the
// memory in the background), in one call: one command on a single node,
// one pipeline (split by node) on a Cluster.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	_, isSingle := r.client.(*redis.Client)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var err error
	if isSingle || len(full) == 1 {
		err = r.client.Unlink(ctx, full...).Err()
	} else {
		_, err = unlinkEach(ctx, r.client, full)
	}
	if err != nil {
		return fmt.Errorf("redis cache delete: %w", err)
	}
	return nil
}

// DeletePrefix removes every entry whose key starts with prefix: it SCANs
// for the glob-escaped prefix on every node (every master of a Cluster,
// every shard of a Ring) and UNLINKs each batch of about 500 keys found.
// Each call is bounded by Timeout and the whole by PurgeTimeout. It returns
// the number of entries removed, also when it fails part way. Entries
// stored while it runs may survive it.
func (r *Redis) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.purge)
	defer cancel()
	pattern := redisGlobEscape(r.prefix+prefix) + "*"
	var removed atomic.Int64
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return r.purgeNode(ctx, node, pattern, true, &removed)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			return r.purgeNode(ctx, node, pattern, false, &removed)
		})
	default:
		err = r.purgeNode(ctx, r.client, pattern, false, &removed)
	}
	if err != nil {
		return int(removed.Load()), fmt.Errorf("redis cache delete prefix: %w", err)
	}
	return int(removed.Load()), nil
}

// purgeNode scans one node for pattern and unlinks what it finds, adding
// the count to removed. On a Cluster node the keys of one batch may lie in
// different slots, which one UNLINK refuses (CROSSSLOT), so each key is
// its own command in one pipeline (perKey).
func (r *Redis) purgeNode(ctx context.Context, c redis.Cmdable, pattern string, perKey bool, removed *atomic.Int64) error {
	var cursor uint64
	for {
		cctx, cancel := context.WithTimeout(ctx, r.timeout)
		keys, next, err := c.Scan(cctx, cursor, pattern, redisScanCount).Result()
		cancel()
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if len(keys) > 0 {
			cctx, cancel := context.WithTimeout(ctx, r.timeout)
			var n int64
			if perKey {
				n, err = unlinkEach(cctx, c, keys)
			} else {
				n, err = c.Unlink(cctx, keys...).Result()
			}
			cancel()
			removed.Add(n)
			if err != nil {
				return fmt.Errorf("unlink: %w", err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// unlinkEach unlinks keys one command each, in one pipeline, and returns
// how many existed.
func unlinkEach(ctx context.Context, c redis.Cmdable, keys []string) (int64, error) {
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Unlink(ctx, k)
		}
		return nil
	})
	var n int64
	for _, cmd := range cmds {
		if cmd != nil {
			n += cmd.Val()
		}
	}
	return n, err
}

// redisGlobEscape escapes the characters special in a Redis MATCH glob
// (* ? [ ] \), so that s matches only itself.
func redisGlobEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
