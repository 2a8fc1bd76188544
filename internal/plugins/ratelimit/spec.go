package ratelimit

import (
	"errors"
	"net/textproto"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/httpsyntax"
	"github.com/portico-gateway/portico/internal/pipeline"
	"go.yaml.in/yaml/v3"
)

// Spec configures rate_limit.
type Spec struct {
	// Limits apply together (for example 10/s and 1000/min). Required
	// unless Tier is set; with Tier they apply to callers without a tier.
	// A Spec with neither (the defaults from the Registration, which no
	// config file can give since Validate refuses it) limits nothing
	// itself: it only applies the consumers' own rate_limit settings
	// (BuildEnv.ConsumerPlugins), on routes that set no rate_limit.
	Limits []config.RateLimit `yaml:"limits"`
	// Tier takes the limits from the consumer's tier (see tiers).
	Tier bool `yaml:"tier"`
	// Key says whose requests are counted together: ip, consumer,
	// credential, route, header:NAME or claim:NAME, or a list of them for a
	// combination. Default consumer. consumer, credential, header and claim
	// fall back to the client address when the request has none.
	Key yaml.Node `yaml:"key"`
	// Share names a counter namespace shared on purpose by every instance
	// that sets the same name; by default each scope counts on its own.
	Share string `yaml:"share"`
	// Headers sends RateLimit-Limit, RateLimit-Remaining and
	// RateLimit-Reset. Default true.
	Headers bool `yaml:"headers"`
	// XHeaders also sends X-RateLimit-Limit, -Remaining and -Reset.
	XHeaders bool `yaml:"x_headers"`
	// Concurrency bounds the requests in flight per key (0: no bound);
	// requests over it get 503 with Retry-After: 1.
	Concurrency int `yaml:"concurrency"`
	// Mode is "exact" (the default: every decision in memory or one Redis
	// round trip) or "batched" (tokens taken from Redis in leases; needs
	// store.redis and fixed_window limits).
	Mode string `yaml:"mode"`
	// Lease is, with mode: batched, the number of tokens taken from Redis
	// at a time; 0 means 1% of each limit (at least 1).
	Lease int64 `yaml:"lease"`
}

var _ pipeline.Spec = (*Spec)(nil)

// IPSpec configures ip_rate_limit: limits per client address, applied
// before authentication so credential checks are shielded from floods.
type IPSpec struct {
	// Limits apply together. Required.
	Limits []config.RateLimit `yaml:"limits"`
	// Share names a counter namespace shared on purpose (see Spec.Share).
	Share string `yaml:"share"`
	// Headers sends the RateLimit-* headers. Default true.
	Headers bool `yaml:"headers"`
	// XHeaders also sends the X-RateLimit-* headers.
	XHeaders bool `yaml:"x_headers"`
}

var _ pipeline.Spec = (*IPSpec)(nil)

// keyKind is one part of a counter key.
type keyKind int

const (
	keyIP keyKind = iota
	keyConsumer
	keyCredential
	keyRoute
	keyHeader
	keyClaim
)

// keyPart is one parsed element of key.
type keyPart struct {
	kind keyKind
	name string // header (canonical) or claim name
}

const keySyntax = "must be ip, consumer, credential, route, header:NAME or claim:NAME"

// parseKeys reads key: a scalar or a list of scalars; an empty node is the
// default, consumer.
func parseKeys(n *yaml.Node, p config.Path) ([]keyPart, error) {
	var items []*yaml.Node
	switch n.Kind {
	case 0:
		return []keyPart{{kind: keyConsumer}}, nil
	case yaml.ScalarNode:
		items = []*yaml.Node{n}
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, p.Errorf("must name at least one key")
		}
		items = n.Content
	default:
		return nil, p.Errorf("%s, or a list of them", keySyntax)
	}
	var parts []keyPart
	var errs []error
	seen := make(map[keyPart]bool)
	for i, item := range items {
		ip := p
		if n.Kind == yaml.SequenceNode {
			ip = p.At(i)
		}
		if item.Kind != yaml.ScalarNode {
			errs = append(errs, ip.Errorf("%s", keySyntax))
			continue
		}
		kp, ok := parseKey(item.Value)
		if !ok {
			errs = append(errs, ip.Errorf("%s", keySyntax))
			continue
		}
		if seen[kp] {
			errs = append(errs, ip.Errorf("is listed twice"))
			continue
		}
		seen[kp] = true
		parts = append(parts, kp)
	}
	return parts, errors.Join(errs...)
}

func parseKey(s string) (keyPart, bool) {
	switch s {
	case "ip":
		return keyPart{kind: keyIP}, true
	case "consumer":
		return keyPart{kind: keyConsumer}, true
	case "credential":
		return keyPart{kind: keyCredential}, true
	case "route":
		return keyPart{kind: keyRoute}, true
	}
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return keyPart{}, false
	}
	switch kind {
	case "header":
		if !httpsyntax.IsToken(name) {
			return keyPart{}, false
		}
		return keyPart{kind: keyHeader, name: textproto.CanonicalMIMEHeaderKey(name)}, true
	case "claim":
		if strings.ContainsAny(name, " \t\r\n") {
			return keyPart{}, false
		}
		return keyPart{kind: keyClaim, name: name}, true
	}
	return keyPart{}, false
}

// Validate checks the limits, the key, the namespace and the bounds.
func (s *Spec) Validate(p config.Path) error {
	errs := []error{validateLimits(p, s.Limits, !s.Tier)}
	_, err := parseKeys(&s.Key, p.Key("key"))
	errs = append(errs, err, validateShare(p, s.Share))
	if s.Concurrency < 0 || s.Concurrency > 1_000_000 {
		errs = append(errs, p.Key("concurrency").Errorf("must be between 0 (off) and 1000000"))
	}
	switch s.Mode {
	case "", modeExact:
		if s.Lease != 0 {
			errs = append(errs, p.Key("lease").Errorf("is only used with mode: batched"))
		}
	case modeBatched:
		if s.Lease < 0 || s.Lease > maxLease {
			errs = append(errs, p.Key("lease").Errorf("must be between 0 (1%% of each limit) and %d", maxLease))
		}
		for i, l := range s.Limits {
			if l.Algorithm != "fixed_window" {
				errs = append(errs, p.Index("limits", i).Key("algorithm").Errorf(
					"must be fixed_window with mode: batched (got %s)", l.Algorithm))
			}
		}
	default:
		errs = append(errs, p.Key("mode").Errorf("must be exact or batched"))
	}
	return errors.Join(errs...)
}

// The modes of rate_limit.
const (
	modeExact   = "exact"
	modeBatched = "batched"
	maxLease    = 1_000_000
)

// checkBatched reports why s cannot run in batched mode with env: it needs
// store.redis, and the tier limits it may use must be fixed_window too
// (its own limits are checked by Validate).
func checkBatched(s settings, env *pipeline.BuildEnv) error {
	if s.mode != modeBatched {
		return nil
	}
	if env.Store == nil || env.Store.Redis == nil {
		return errors.New("rate_limit: mode: batched requires store.redis (leases are taken from Redis); remove mode or configure store.redis")
	}
	if !s.tier {
		return nil
	}
	names := make([]string, 0, len(env.Tiers))
	for name := range env.Tiers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for i, l := range env.Tiers[name].RateLimit.Limits {
			l.ApplyDefaults()
			if l.Algorithm != "fixed_window" {
				return config.Path{}.Key("tiers").Key(name).Key("rate_limit").Index("limits", i).Key("algorithm").Errorf(
					"must be fixed_window: a rate_limit with tier: true uses it in mode: batched (got %s)", l.Algorithm)
			}
		}
	}
	return nil
}

// Validate checks the limits and the namespace.
func (s *IPSpec) Validate(p config.Path) error {
	return errors.Join(validateLimits(p, s.Limits, true), validateShare(p, s.Share))
}

func validateLimits(p config.Path, limits []config.RateLimit, required bool) error {
	if required && len(limits) == 0 {
		return p.Key("limits").Errorf("at least one limit is required")
	}
	for i := range limits {
		limits[i].ApplyDefaults()
	}
	return config.ValidateRateLimits(p.Key("limits"), limits)
}

func validateShare(p config.Path, share string) error {
	for i := 0; i < len(share); i++ {
		c := share[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return p.Key("share").Errorf(`must be letters, digits, ".", "_" or "-"`)
		}
	}
	if len(share) > 63 {
		return p.Key("share").Errorf("must be at most 63 characters")
	}
	return nil
}
