package acme

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisTimeout bounds each call to Redis. ACME state is read and written
// in the background, so it does not use store.redis.timeout, which is
// sized for the request path.
const redisTimeout = 5 * time.Second

// Redis is a Storage in Redis, shared by every gateway instance that uses
// the same store: keys under prefix, locks as SET NX PX with a random
// value, released only by their holder.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns the storage in c under prefix (store.redis.key_prefix
// followed by "acme:").
func NewRedis(c redis.UniversalClient, prefix string) *Redis { return &Redis{c: c, prefix: prefix} }

// Get reads key.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	b, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("acme storage: %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("acme storage: redis get: %w", err)
	}
	return b, nil
}

// Put sets key, expiring after ttl when ttl > 0.
func (r *Redis) Put(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	if err := r.c.Set(ctx, r.prefix+key, data, ttl).Err(); err != nil {
		return fmt.Errorf("acme storage: redis set: %w", err)
	}
	return nil
}

// Delete removes key.
func (r *Redis) Delete(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	if err := r.c.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("acme storage: redis del: %w", err)
	}
	return nil
}

// unlock deletes a lock only while it still holds the caller's value.
var unlock = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// TryLock sets the lock key if no one holds it, expiring after ttl.
func (r *Redis) TryLock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	id := lockID()
	ok, err := r.c.SetNX(ctx, r.prefix+key, id, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("acme storage: redis lock: %w", err)
	}
	if !ok {
		return nil, errLocked
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		defer cancel()
		_ = unlock.Run(ctx, r.c, []string{r.prefix + key}, id).Err()
	}, nil
}
