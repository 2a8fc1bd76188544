package cache

import (
	"fmt"
	"strconv"

	core "github.com/portico-gateway/portico/internal/cache"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/plugin"
	"github.com/portico-gateway/portico/internal/redisclient"
	"github.com/redis/go-redis/v9"
)

// redisConn is the cache's Redis client for one store.redis, or the error
// that kept it from being made. plugin.Shared closes it once no config
// names that store.
type redisConn struct {
	c   redis.UniversalClient
	err error
}

// Close closes the client.
func (c *redisConn) Close() error {
	if c.c == nil {
		return nil
	}
	return c.c.Close()
}

// redisStore is a Redis store in use; it leaves the registry when no
// config uses it any more.
type redisStore struct {
	*core.Redis
	reg *registry
	key string
}

// Close forgets the store (the client is closed by its redisConn).
func (s *redisStore) Close() error {
	s.reg.remove(s.key)
	return nil
}

// redisFor returns the long-lived Redis store for rc, compressed or not.
// Cache keys live under rc's key prefix followed by "cache:".
func redisFor(shared *plugin.Shared, reg *registry, rc *config.Redis, compress bool) (core.Store, error) {
	id := "cache:" + redisclient.Key(rc)
	conn := shared.Get(id+":conn", func() any {
		c, err := redisclient.New(rc)
		if err != nil {
			return &redisConn{err: fmt.Errorf("cache store: %w", err)}
		}
		return &redisConn{c: c}
	}).(*redisConn)
	if conn.err != nil {
		return nil, conn.err
	}
	prefix := core.DefaultRedisKeyPrefix
	if rc.KeyPrefix != "" {
		prefix = rc.KeyPrefix + "cache:"
	}
	key := id + ":store:" + strconv.FormatBool(compress) + ":" + prefix
	st := shared.Get(key, func() any {
		s := &redisStore{Redis: core.NewRedis(conn.c, core.RedisOptions{KeyPrefix: prefix, Compress: compress}),
			reg: reg, key: key}
		reg.add(key, s.Redis)
		return s
	}).(*redisStore)
	return st.Redis, nil
}
