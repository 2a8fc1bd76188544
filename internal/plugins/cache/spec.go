package cache

import (
	"errors"
	"net/textproto"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/httpcache"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// Defaults of the cache pipeline.
const (
	DefaultMemoryMaxBytes  = httpcache.DefaultMemoryBytes
	DefaultMaxObjectSize   = 1 << 20
	DefaultCoalesceTimeout = httpcache.DefaultCoalesceWait
)

// The values of store and authenticated.
const (
	storeMemory      = "memory"
	storeRedis       = "redis"
	authBypass       = "bypass"
	authPerConsumer  = "per_consumer"
	minMemoryBytes   = 1 << 20
	maxCoalesceLimit = time.Minute
)

// Spec configures the cache pipeline.
type Spec struct {
	// Store is where responses are kept: memory (default: in this
	// process, shared by every route that uses it) or redis (the
	// config's store.redis, shared by every gateway instance).
	Store string `yaml:"store"`
	// MemoryMaxBytes bounds the memory store (default 64MiB, at least
	// 1MiB). One memory store serves every route: the largest value among
	// the routes that use it wins.
	MemoryMaxBytes config.ByteSize `yaml:"memory_max_bytes"`
	// MaxObjectSize is the largest response body stored (default 1MiB;
	// with the memory store at most memory_max_bytes/16). Larger bodies
	// stream to the client and are not stored.
	MaxObjectSize config.ByteSize `yaml:"max_object_size"`
	// DefaultTTL is the freshness lifetime of responses that carry none
	// (no max-age, s-maxage or Expires). Default 0: such responses are
	// not stored.
	DefaultTTL config.Duration `yaml:"default_ttl"`
	// MaxTTL caps every freshness lifetime. Default 0: no cap.
	MaxTTL config.Duration `yaml:"max_ttl"`
	// StaleWhileRevalidate and StaleIfError are the RFC 5861 windows for
	// responses that do not set their own. Default 0.
	StaleWhileRevalidate config.Duration `yaml:"stale_while_revalidate"`
	StaleIfError         config.Duration `yaml:"stale_if_error"`
	// HonorRequestDirectives obeys the client's Cache-Control: no-cache
	// and max-age force revalidation, no-store bypasses the cache,
	// only-if-cached answers 504 on a miss. Default false.
	HonorRequestDirectives bool `yaml:"honor_request_directives"`
	// Query selects the query parameters in the key: include (only
	// those) or exclude (all but those). Default: all, in any order.
	Query QuerySpec `yaml:"query"`
	// KeyHeaders are request headers whose values join the key.
	KeyHeaders []string `yaml:"key_headers"`
	// Authenticated decides what happens to a response to an
	// authenticated request that is not public, s-maxage or
	// must-revalidate: bypass (default: not stored) or per_consumer
	// (stored under a key of the consumer's own).
	Authenticated string `yaml:"authenticated"`
	// XCacheHeader also sends X-Cache: HIT or MISS.
	XCacheHeader bool `yaml:"x_cache_header"`
	// CoalesceTimeout bounds how long a request waits for another request
	// fetching the same response (default 5s, at most 1m; 0: no
	// coalescing).
	CoalesceTimeout config.Duration `yaml:"coalesce_timeout"`
	// Compress stores entries zstd-compressed (store: redis only).
	Compress bool `yaml:"compress"`
}

// QuerySpec lists query parameter names.
type QuerySpec struct {
	// Include keeps only these parameters in the key.
	Include []string `yaml:"include"`
	// Exclude leaves these parameters out of the key.
	Exclude []string `yaml:"exclude"`
}

var _ pipeline.Spec = (*Spec)(nil)

// newSpec returns a Spec holding the defaults.
func newSpec() *Spec {
	return &Spec{
		Store:           storeMemory,
		MemoryMaxBytes:  DefaultMemoryMaxBytes,
		MaxObjectSize:   DefaultMaxObjectSize,
		Authenticated:   authBypass,
		CoalesceTimeout: config.Duration(DefaultCoalesceTimeout),
	}
}

// Validate checks every setting and reports every problem.
func (s *Spec) Validate(p config.Path) error {
	var errs []error
	switch s.Store {
	case storeMemory:
		if s.Compress {
			errs = append(errs, p.Key("compress").Errorf("is only used with store: redis"))
		}
		if s.MemoryMaxBytes < minMemoryBytes {
			errs = append(errs, p.Key("memory_max_bytes").Errorf("must be at least 1MiB"))
		} else if s.MaxObjectSize > s.MemoryMaxBytes/16 {
			errs = append(errs, p.Key("max_object_size").Errorf(
				"must be at most memory_max_bytes/16 (%d bytes) with the memory store", int64(s.MemoryMaxBytes/16)))
		}
	case storeRedis:
		// Headers and framing come on top of the body; keep well under the
		// store's entry bound so a stored object always fits.
		if limit := int64(httpcache.DefaultRedisMaxEntryBytes) / 2; int64(s.MaxObjectSize) > limit {
			errs = append(errs, p.Key("max_object_size").Errorf(
				"must be at most %d bytes with the redis store", limit))
		}
	default:
		errs = append(errs, p.Key("store").Errorf("must be memory or redis"))
	}
	if s.MaxObjectSize <= 0 {
		errs = append(errs, p.Key("max_object_size").Errorf("must be more than 0"))
	}
	for _, d := range []struct {
		name string
		v    config.Duration
	}{{"default_ttl", s.DefaultTTL}, {"max_ttl", s.MaxTTL},
		{"stale_while_revalidate", s.StaleWhileRevalidate}, {"stale_if_error", s.StaleIfError}} {
		if d.v < 0 {
			errs = append(errs, p.Key(d.name).Errorf("must not be negative"))
		}
	}
	if s.MaxTTL > 0 && s.DefaultTTL > s.MaxTTL {
		errs = append(errs, p.Key("default_ttl").Errorf("must not be more than max_ttl"))
	}
	if s.CoalesceTimeout < 0 || s.CoalesceTimeout.D() > maxCoalesceLimit {
		errs = append(errs, p.Key("coalesce_timeout").Errorf("must be between 0 (no coalescing) and 1m"))
	}
	if len(s.Query.Include) > 0 && len(s.Query.Exclude) > 0 {
		errs = append(errs, p.Key("query").Errorf("set include or exclude, not both"))
	}
	errs = append(errs, names(p.Key("query").Key("include"), s.Query.Include, false),
		names(p.Key("query").Key("exclude"), s.Query.Exclude, false),
		names(p.Key("key_headers"), s.KeyHeaders, true))
	switch s.Authenticated {
	case authBypass, authPerConsumer:
	default:
		errs = append(errs, p.Key("authenticated").Errorf("must be bypass or per_consumer"))
	}
	return errors.Join(errs...)
}

// names checks a list of query parameter or header names: non-empty,
// listed once, and header names well formed.
func names(p config.Path, list []string, header bool) error {
	var errs []error
	seen := make(map[string]bool, len(list))
	for i, n := range list {
		k := n
		if header {
			if !config.IsHeaderName(n) {
				errs = append(errs, p.At(i).Errorf("must be a header name (letters, digits, - and _)"))
				continue
			}
			k = textproto.CanonicalMIMEHeaderKey(n)
		} else if n == "" {
			errs = append(errs, p.At(i).Errorf("must not be empty"))
			continue
		}
		if seen[k] {
			errs = append(errs, p.At(i).Errorf("is listed twice"))
			continue
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}
