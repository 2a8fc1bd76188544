// Package basicauth implements the basic_auth plugin: callers send a
// username and password with HTTP Basic authentication (RFC 7617), checked
// against the consumers' bcrypt password hashes.
//
// bcrypt is slow on purpose, so a verified username and password are
// remembered for cache_ttl (60s by default): the cache is keyed by the
// SHA-256 of "username:password", never holds a password, is bounded in
// size, and outlives config reloads. A cached result counts only while the
// user still has the same password hash, so a changed password takes effect
// on the next reload.
//
// Like every authentication plugin, basic_auth only records what it found;
// the auth gate that follows it admits or refuses the request.
package basicauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"golang.org/x/crypto/bcrypt"
)

// Name is the plugin's config key.
const Name = "basic_auth"

// Challenge is the WWW-Authenticate value sent with a 401.
const Challenge = `Basic realm="portico", charset="UTF-8"`

// DefaultCacheTTL is how long a verified password is remembered by default.
const DefaultCacheTTL = 60 * time.Second

// maxCacheTTL bounds cache_ttl.
const maxCacheTTL = time.Hour

// MaxCacheEntries bounds the verified-password cache of one route.
const MaxCacheEntries = 10000

// Spec configures basic_auth.
type Spec struct {
	// HideCredentials removes the Authorization header before the request
	// is forwarded upstream. Default false.
	HideCredentials bool `yaml:"hide_credentials"`
	// CacheTTL is how long a verified username and password are remembered
	// so that bcrypt does not run on every request. Default 60s; 0 turns
	// the cache off; at most 1h.
	CacheTTL config.Duration `yaml:"cache_ttl"`
}

var _ pipeline.Spec = (*Spec)(nil)

// Validate bounds cache_ttl.
func (s *Spec) Validate(p config.Path) error {
	if s.CacheTTL.D() > maxCacheTTL {
		return p.Key("cache_ttl").Errorf("must be at most 1h")
	}
	return nil
}

// Registration declares the basic_auth pipeline.
func Registration() pipeline.Registration {
	return pipeline.Registration{
		Name:  Name,
		Phase: pipeline.PhaseAuthenticate,
		Spec:  func() pipeline.Spec { return &Spec{CacheTTL: config.Duration(DefaultCacheTTL)} },
		Build: build,
	}
}

var (
	missing = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "no basic credentials found in request"}
	invalid = pipeline.AuthFailure{Status: http.StatusUnauthorized, Challenge: Challenge,
		Detail: "invalid username or password", Presented: true}
)

type basicAuth struct {
	hide      bool
	consumers *consumer.Registry
	cache     *Cache // nil when off
}

// CacheKey is the Shared key of the verified-credential cache of the
// plugin instance at scope on route.
func CacheKey(scope pipeline.Scope, route string) pipeline.Key[*Cache] {
	return pipeline.NewKey[*Cache]("basic_auth:cache:" + scope.String() + ":" + route)
}

func build(s pipeline.Spec, env *pipeline.BuildEnv) (pipeline.Middleware, error) {
	spec := s.(*Spec)
	b := &basicAuth{hide: spec.HideCredentials, consumers: env.Consumers}
	if ttl := spec.CacheTTL.D(); ttl > 0 {
		newCache := func() *Cache { return NewCache(MaxCacheEntries) }
		var c *Cache
		if env.Shared != nil {
			c = pipeline.Get(env.Shared, CacheKey(env.Scope, env.Route), newCache)
		} else {
			c = newCache()
		}
		c.SetTTL(ttl)
		b.cache = c
	}
	return b.middleware, nil
}

func (b *basicAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		if ex == nil {
			next.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, _, _ := strings.Cut(auth, " ")
		switch {
		case !strings.EqualFold(scheme, "Basic"):
			ex.AuthFailed(missing)
		default:
			if b.hide {
				r.Header.Del("Authorization")
			}
			user, pass, ok := parseBasic(auth)
			if !ok {
				ex.AuthFailed(invalid)
			} else if u := b.verify(user, pass); u != nil {
				ex.AuthPassed(u.Consumer, "basic_auth:"+u.Username)
			} else {
				ex.AuthFailed(invalid)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// parseBasic decodes a Basic Authorization value.
func parseBasic(auth string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", "", false
	}
	c, err := base64.StdEncoding.DecodeString(auth[len(prefix):])
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(c), ":")
	if !ok {
		return "", "", false
	}
	return user, pass, true
}

// dummyHash is compared against when the username is unknown, so that an
// unknown user costs as much as a wrong password.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("portico-unknown-user"), bcrypt.DefaultCost)
	if err != nil {
		return nil
	}
	return h
})

// verify returns the user whose password pass is, or nil.
func (b *basicAuth) verify(user, pass string) *consumer.BasicUser {
	u, known := b.consumers.Basic(user)
	if !known {
		if h := dummyHash(); h != nil {
			_ = bcrypt.CompareHashAndPassword(h, []byte(pass))
		}
		return nil
	}
	var key [sha256.Size]byte
	if b.cache != nil {
		key = cacheKey(user, pass)
		if b.cache.Has(key, u.PasswordHash) {
			return u
		}
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(pass)) != nil {
		return nil
	}
	if b.cache != nil {
		b.cache.Add(key, u.PasswordHash)
	}
	return u
}

func cacheKey(user, pass string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{':'})
	h.Write([]byte(pass))
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// Cache remembers verified credentials: the SHA-256 of "user:password"
// mapped to the bcrypt hash it was verified against and an expiry. It is
// safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	entries map[[sha256.Size]byte]cacheEntry
	now     func() time.Time
}

type cacheEntry struct {
	hash    []byte
	expires time.Time
}

// NewCache returns an empty cache holding at most max entries.
func NewCache(max int) *Cache {
	return &Cache{max: max, ttl: DefaultCacheTTL, entries: make(map[[sha256.Size]byte]cacheEntry), now: time.Now}
}

// SetTTL sets how long new entries live.
func (c *Cache) SetTTL(ttl time.Duration) {
	c.mu.Lock()
	c.ttl = ttl
	c.mu.Unlock()
}

// Len returns the number of entries, expired ones included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Has reports whether key was verified against hash and has not expired.
func (c *Cache) Has(key [sha256.Size]byte, hash []byte) bool {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok || c.now().After(e.expires) {
		return false
	}
	return subtle.ConstantTimeCompare(e.hash, hash) == 1
}

// Add remembers key as verified against hash. When the cache is full,
// expired entries are dropped first, then arbitrary ones.
func (c *Cache) Add(key [sha256.Size]byte, hash []byte) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cacheEntry{hash: hash, expires: now.Add(c.ttl)}
}
