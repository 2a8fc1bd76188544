package config

import (
	"errors"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Bounds of a rate limit's window and of the Redis timeout.
const (
	minWindow       = time.Second
	maxWindow       = 24 * time.Hour
	maxRedisTimeout = 10 * time.Second
)

// RateLimitAlgorithms are the accepted values of RateLimit.Algorithm.
var RateLimitAlgorithms = []string{"gcra", "sliding_window", "fixed_window"}

// ValidateRateLimits checks limits written at p (a sequence): each limit
// is at least 1 per window, the window is 1s to 24h, the burst is at least
// 1, the algorithm is known, and names are unique. Call ApplyDefaults on
// each limit first. Plugins use it for the limits in their settings.
func ValidateRateLimits(p Path, limits []RateLimit) error {
	var errs []error
	errf := func(p Path, format string, args ...any) { errs = append(errs, p.Errorf(format, args...)) }
	names := make(map[string]int)
	for i, l := range limits {
		lp := p.At(i)
		if l.Limit < 1 {
			errf(lp.Key("limit"), "must be at least 1")
		}
		switch w := l.Window.D(); {
		case w == 0:
			errf(lp.Key("window"), `is required, like "1s" or "1m"`)
		case w < minWindow || w > maxWindow:
			errf(lp.Key("window"), "must be between 1s and 24h")
		case w%time.Millisecond != 0:
			errf(lp.Key("window"), "must be a whole number of milliseconds")
		}
		if l.Burst < 1 && l.Limit >= 1 {
			errf(lp.Key("burst"), "must be at least 1")
		}
		if !slices.Contains(RateLimitAlgorithms, l.Algorithm) {
			errf(lp.Key("algorithm"), "must be one of %s", strings.Join(RateLimitAlgorithms, ", "))
		}
		if l.Algorithm != "gcra" && l.Burst != l.Limit && l.Burst >= 1 {
			errf(lp.Key("burst"), "applies to the gcra algorithm only")
		}
		switch {
		case l.Name == "":
		case !validName(l.Name):
			errf(lp.Key("name"), `must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`)
		default:
			if j, dup := names[l.Name]; dup {
				errf(lp.Key("name"), "duplicate limit name %q; [%d] has it too; give each limit its own name", l.Name, j)
			} else {
				names[l.Name] = i
			}
		}
	}
	return errors.Join(errs...)
}

// rateLimits checks store and tiers.
func (v *validator) rateLimits() {
	v.store()
	names := make([]string, 0, len(v.c.Tiers))
	for name := range v.c.Tiers {
		names = append(names, name)
	}
	slices.Sort(names) // a stable order for errors without positions
	for _, name := range names {
		t, p := v.c.Tiers[name], Path{}.Key("tiers").Key(name)
		if !validName(name) {
			v.errf(p, `tier name must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit`)
		}
		rl := p.Key("rate_limit")
		switch {
		case t.RateLimit.Unlimited && len(t.RateLimit.Limits) > 0:
			v.errf(rl.Key("limits"), "must be empty when unlimited is true")
		case !t.RateLimit.Unlimited && len(t.RateLimit.Limits) == 0:
			v.errf(rl.Key("limits"), "at least one limit is required (or unlimited: true)")
		}
		if err := ValidateRateLimits(rl.Key("limits"), t.RateLimit.Limits); err != nil {
			v.errs = append(v.errs, unjoin(err)...)
		}
	}
}

// tierRef checks a consumer's tier.
func (v *validator) tierRef(p Path, name string) {
	if name == "" {
		return
	}
	if _, ok := v.c.Tiers[name]; ok {
		return
	}
	tiers := make([]string, 0, len(v.c.Tiers))
	for t := range v.c.Tiers {
		tiers = append(tiers, t)
	}
	slices.Sort(tiers)
	switch {
	case len(tiers) == 0:
		v.errf(p, "unknown tier %s; no tiers are defined (tier must name a key of tiers)", v.q(p, name))
	case Suggest(name, tiers) != "" && !v.c.envPaths[p.s]:
		v.errf(p, "unknown tier %q; did you mean %q?", name, Suggest(name, tiers))
	default:
		v.errf(p, "unknown tier %s; tier must name a key of tiers: %s", v.q(p, name), strings.Join(tiers, ", "))
	}
}

func (v *validator) store() {
	if v.c.Store == nil || v.c.Store.Redis == nil {
		return
	}
	r, p := v.c.Store.Redis, Path{}.Key("store").Key("redis")
	switch {
	case r.URL == "" && len(r.Addrs) == 0:
		v.errf(p, "one of url or addrs is required")
	case r.URL != "" && len(r.Addrs) > 0:
		v.errf(p.Key("addrs"), "set url or addrs, not both")
	case r.URL != "":
		// The URL may hold a password: never echo it.
		u, err := url.Parse(r.URL.Value())
		switch {
		case err != nil || u.Opaque != "":
			v.errf(p.Key("url"), `must be a URL like "redis://host:6379/0" or "rediss://host:6380"`)
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.errf(p.Key("url"), `scheme must be redis or rediss`)
		case u.Hostname() == "":
			v.errf(p.Key("url"), "must have a host")
		}
		if r.Password != "" {
			v.errf(p.Key("password"), "put the password in url, or use addrs")
		}
	default:
		for i, a := range r.Addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil || host == "" || !validPort(port) {
				v.errf(p.Index("addrs", i), `must be host:port, like "10.0.0.1:6379"`)
			}
		}
	}
	if t := r.Timeout.D(); t <= 0 || t > maxRedisTimeout {
		v.errf(p.Key("timeout"), "must be between 1ms and 10s")
	}
	if r.OnError != "fail_open" && r.OnError != "fail_closed" {
		v.errf(p.Key("on_error"), "must be fail_open or fail_closed")
	}
	if r.Instances < 1 || r.Instances > 10000 {
		v.errf(p.Key("instances"), "must be between 1 and 10000")
	}
	if r.PoolSize < 0 || r.PoolSize > 10000 {
		v.errf(p.Key("pool_size"), "must be between 0 and 10000")
	}
	if strings.ContainsAny(r.KeyPrefix, "{}\r\n ") {
		v.errf(p.Key("key_prefix"), `must not contain "{", "}", spaces or line breaks`)
	}
}

// unjoin flattens a joined error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
