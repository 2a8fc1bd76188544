package cache

import (
	"fmt"
	"strconv"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/httpcache"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/redisclient"
)

// redisStore is a Redis store in use; it leaves the registry when no
// config uses it any more.
type redisStore struct {
	*httpcache.Redis
	reg *registry
	key string
}

// Close forgets the store (the client is shared and retired on its own).
func (s *redisStore) Close() error {
	s.reg.remove(s.key)
	return nil
}

// redisFor returns the long-lived Redis store for rc, compressed or not.
// Cache keys live under rc's key prefix followed by "cache:".
func redisFor(shared *pipeline.Shared, reg *registry, rc *config.Redis, compress bool) (httpcache.Store, error) {
	id := "cache:" + redisclient.Key(rc)
	client, err := redisclient.Shared(shared, rc)
	if err != nil {
		return nil, fmt.Errorf("cache store: %w", err)
	}
	prefix := httpcache.DefaultRedisKeyPrefix
	if rc.KeyPrefix != "" {
		prefix = rc.KeyPrefix + "cache:"
	}
	key := id + ":store:" + strconv.FormatBool(compress) + ":" + prefix
	st := pipeline.Get(shared, pipeline.NewKey[*redisStore](key), func() *redisStore {
		s := &redisStore{Redis: httpcache.NewRedis(client, httpcache.RedisOptions{KeyPrefix: prefix, Compress: compress}),
			reg: reg, key: key}
		reg.add(key, s.Redis)
		return s
	})
	return st.Redis, nil
}
