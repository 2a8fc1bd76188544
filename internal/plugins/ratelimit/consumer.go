package ratelimit

import (
	"maps"
	"slices"
	"sync"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// consumersKey is the Shared key of the cache of consumer limiters.
var consumersKey = pipeline.NewKey[*consumerSet]("ratelimit:consumers")

// consumerSet caches the limiters of the consumers' own rate_limit
// settings, so that every route of a snapshot uses the same ones: they are
// built once per consumer per snapshot. A new snapshot decodes new specs,
// which rebuilds the set; the counters live in the store, keyed by
// consumer, so a reload keeps them.
type consumerSet struct {
	mu    sync.Mutex
	specs map[string]pipeline.Spec // what lims were built from
	store *config.Store
	lims  map[string]*rateLimiter
	err   error
}

// consumerLimiters returns the limiters of env.ConsumerPlugins by consumer
// name (nil when no consumer sets rate_limit).
func consumerLimiters(env *pipeline.BuildEnv) (map[string]*rateLimiter, error) {
	if len(env.ConsumerPlugins) == 0 {
		return nil, nil
	}
	if env.Shared == nil {
		return buildConsumers(env)
	}
	set := pipeline.Get(env.Shared, consumersKey, func() *consumerSet { return &consumerSet{} })
	set.mu.Lock()
	defer set.mu.Unlock()
	if !set.builtFrom(env) {
		set.lims, set.err = buildConsumers(env)
		set.store = env.Store
		set.specs = make(map[string]pipeline.Spec, len(env.ConsumerPlugins))
		for name, c := range env.ConsumerPlugins {
			set.specs[name] = c.Spec
		}
	}
	return set.lims, set.err
}

// builtFrom reports whether the set was built from env's consumer specs
// (the same decoded values, not equal ones) and store.
func (s *consumerSet) builtFrom(env *pipeline.BuildEnv) bool {
	if s.specs == nil || s.store != env.Store || len(s.specs) != len(env.ConsumerPlugins) {
		return false
	}
	for name, c := range env.ConsumerPlugins {
		if s.specs[name] != c.Spec {
			return false
		}
	}
	return true
}

// onRoute returns views of the consumers' limiters that count their
// decisions on env's route (nil when there are none).
func onRoute(lims map[string]*rateLimiter, env *pipeline.BuildEnv) map[string]*rateLimiter {
	if lims == nil {
		return nil
	}
	out := make(map[string]*rateLimiter, len(lims))
	for name, l := range lims {
		out[name] = l.on(env.Telemetry, env.Route)
	}
	return out
}

func buildConsumers(env *pipeline.BuildEnv) (map[string]*rateLimiter, error) {
	lims := make(map[string]*rateLimiter, len(env.ConsumerPlugins))
	for _, name := range slices.Sorted(maps.Keys(env.ConsumerPlugins)) {
		c := env.ConsumerPlugins[name]
		sp, ok := c.Spec.(*Spec)
		if !ok {
			return nil, c.Path.Errorf("only rate_limit may be set on a consumer")
		}
		keys, err := parseKeys(&sp.Key, c.Path.Key("key"))
		if err != nil {
			return nil, err
		}
		s := specSettings(sp, keys)
		s.consumer = name
		e := *env
		e.Scope = pipeline.ScopeConsumer
		e.Route, e.Service = "", ""
		l, err := build(s, &e)
		if err != nil {
			return nil, c.Path.Errorf("%s", err.Error())
		}
		lims[name] = l
	}
	return lims, nil
}
