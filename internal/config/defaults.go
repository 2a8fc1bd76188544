package config

import (
	"strings"
	"time"
)

// Default values that ApplyDefaults fills in where a config leaves a field
// empty or zero. Documentation and other packages refer to these names.
const (
	// DefaultListen is the public listener's address.
	DefaultListen = ":8080"
	// DefaultAdminListen is the admin listener's address: loopback only.
	DefaultAdminListen = "127.0.0.1:9901"
	// DefaultReadHeaderTimeout bounds reading request headers.
	DefaultReadHeaderTimeout = Duration(10 * time.Second)
	// DefaultIdleTimeout closes idle keep-alive client connections.
	DefaultIdleTimeout = Duration(75 * time.Second)
	// DefaultReadBodyTimeout bounds the wait for request body bytes.
	DefaultReadBodyTimeout = Duration(30 * time.Second)
	// DefaultMinBodyRate is the lowest average request body rate, bytes
	// a second.
	DefaultMinBodyRate = ByteSize(500)
	// DefaultWriteTimeout bounds the wait for a client to read.
	DefaultWriteTimeout = Duration(60 * time.Second)
	// DefaultMaxHeaderBytes bounds the request line plus headers.
	DefaultMaxHeaderBytes = ByteSize(32 << 10)
	// DefaultMaxConnections bounds concurrent client connections.
	DefaultMaxConnections = 10000
	// DefaultDrainTimeout is the grace period for in-flight requests on
	// shutdown.
	DefaultDrainTimeout = Duration(30 * time.Second)
	// DefaultHealthPath answers liveness probes on the public listener.
	DefaultHealthPath = "/health"
	// DefaultReadyPath answers readiness probes on the public listener.
	DefaultReadyPath = "/ready"
	// DefaultTLSMinVersion is the oldest TLS version accepted.
	DefaultTLSMinVersion = "1.2"
	// DefaultTargetWeight is a target's share of traffic.
	DefaultTargetWeight = 1
	// DefaultConnectTimeout bounds establishing an upstream connection.
	DefaultConnectTimeout = Duration(5 * time.Second)
	// DefaultResponseHeaderTimeout bounds waiting for upstream response
	// headers.
	DefaultResponseHeaderTimeout = Duration(60 * time.Second)
	// DefaultMaxIdleConns bounds idle upstream connections per target.
	DefaultMaxIdleConns = 256
	// DefaultIdleConnTimeout closes idle upstream connections.
	DefaultIdleConnTimeout = Duration(60 * time.Second)
	// DefaultRedisTimeout bounds each call to the Redis store.
	DefaultRedisTimeout = Duration(50 * time.Millisecond)
	// DefaultRedisOnError is what rate limits do while Redis is unreachable.
	DefaultRedisOnError = "fail_open"
	// DefaultRedisInstances is the number of gateway instances assumed to
	// share the limits.
	DefaultRedisInstances = 1
	// DefaultRedisKeyPrefix starts every Redis key Portico writes.
	DefaultRedisKeyPrefix = "portico:"
	// DefaultRateLimitAlgorithm is the algorithm of a rate limit.
	DefaultRateLimitAlgorithm = "gcra"
)

// DefaultAdminPublicPaths returns the admin paths answered without a
// token: the probes.
func DefaultAdminPublicPaths() []string { return []string{"/health", "/ready"} }

// ApplyDefaults fills every empty or zero field that has a default (see
// the Default constants). A service with a URL and no Targets gets the
// single target {URL, weight 1}. Timeouts.Total stays 0: unbounded.
// ApplyDefaults is idempotent; Parse calls it before Validate.
func (c *Config) ApplyDefaults() {
	c.applyListenerDefaults()
	setDefault(&c.Admin.Listen, DefaultAdminListen)
	if c.Admin.PublicPaths == nil { // a written empty list opens no path
		c.Admin.PublicPaths = DefaultAdminPublicPaths()
	}
	s := &c.Server
	setDefault(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&s.IdleTimeout, DefaultIdleTimeout)
	setDefault(&s.ReadBodyTimeout, DefaultReadBodyTimeout)
	if _, written := c.pos["server.min_body_rate"]; !written {
		setDefault(&s.MinBodyRate, DefaultMinBodyRate) // a written 0 turns the check off
	}
	setDefault(&s.WriteTimeout, DefaultWriteTimeout)
	setDefault(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&s.MaxConnections, DefaultMaxConnections)
	setDefault(&s.DrainTimeout, DefaultDrainTimeout)
	setDefault(&s.HealthPath, DefaultHealthPath)
	setDefault(&s.ReadyPath, DefaultReadyPath)
	setDefault(&s.UnderscoresInHeaders, UnderscoresProtected)
	for i := range c.Services {
		svc := &c.Services[i]
		if svc.URL != "" && len(svc.Targets) == 0 {
			svc.Targets = []Target{{URL: svc.URL, Weight: DefaultTargetWeight}}
		}
		for j := range svc.Targets {
			setDefault(&svc.Targets[j].Weight, DefaultTargetWeight)
		}
		setDefault(&svc.Timeouts.Connect, DefaultConnectTimeout)
		setDefault(&svc.Timeouts.ResponseHeader, DefaultResponseHeaderTimeout)
		setDefault(&svc.MaxIdleConns, DefaultMaxIdleConns)
		setDefault(&svc.IdleConnTimeout, DefaultIdleConnTimeout)
		svc.applyResilienceDefaults()
	}
	for i := range c.Routes {
		rt := &c.Routes[i]
		if rt.Retries != nil {
			rt.Retries.ApplyDefaults()
		}
		if rt.Fallback != nil {
			setDefault(&rt.Fallback.Status, DefaultFallbackStatus)
		}
	}
	if c.Store != nil && c.Store.Redis != nil {
		r := c.Store.Redis
		setDefault(&r.Timeout, DefaultRedisTimeout)
		setDefault(&r.OnError, DefaultRedisOnError)
		setDefault(&r.Instances, DefaultRedisInstances)
		setDefault(&r.KeyPrefix, DefaultRedisKeyPrefix)
	}
	for name, t := range c.Tiers {
		for i := range t.RateLimit.Limits {
			t.RateLimit.Limits[i].ApplyDefaults()
		}
		c.Tiers[name] = t
	}
}

// ApplyDefaults fills a rate limit's empty fields: Algorithm "gcra", Burst
// = Limit, and Name = the window ("1m0s" is written "1m"). Plugins call it
// for the limits in their own settings.
func (r *RateLimit) ApplyDefaults() {
	setDefault(&r.Algorithm, DefaultRateLimitAlgorithm)
	setDefault(&r.Burst, r.Limit)
	if r.Name == "" && r.Window > 0 {
		r.Name = WindowName(r.Window.D())
	}
}

// WindowName writes a window compactly: "1s", "1m", "1h", "90s", "1h30m".
func WindowName(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
