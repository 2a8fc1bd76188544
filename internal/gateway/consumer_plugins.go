package gateway

import (
	"errors"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
)

// consumerPlugin is the one plugin a consumer may set for itself.
const consumerPlugin = "rate_limit"

// decodeConsumerPlugins decodes the plugins set on consumers
// (consumers[i].plugins) and returns each consumer's rate_limit by
// consumer name; consumers without one are absent. Only rate_limit may be
// set on a consumer: any other name is an error at
// consumers[i].plugins.NAME. The instances have pipeline.ScopeConsumer; the
// rate_limit plugin receives them in BuildEnv.ConsumerPlugins and counts
// each consumer under its own namespace (consumer:<name>). All problems
// are returned at once, joined, unlocated (Compile reports them).
func decodeConsumerPlugins(cfg *config.Config, reg *pipeline.Registry) (map[string]pipeline.Configured, error) {
	var out map[string]pipeline.Configured
	var errs []error
	for i := range cfg.Consumers {
		c := &cfg.Consumers[i]
		var set config.PluginSet
		for _, e := range c.Plugins.Entries {
			if e.Name == consumerPlugin {
				set.Entries = append(set.Entries, e)
				continue
			}
			errs = append(errs, notOnConsumer(reg, e))
		}
		if len(set.Entries) == 0 {
			continue
		}
		cs, err := reg.Decode(cfg, set, pipeline.ScopeConsumer)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, cp := range cs {
			if out == nil {
				out = make(map[string]pipeline.Configured)
			}
			out[c.Name] = cp
		}
	}
	return out, errors.Join(errs...)
}

// notOnConsumer is the error for a plugin other than rate_limit set on a
// consumer, with a did-you-mean when the name is a misspelt rate_limit.
func notOnConsumer(reg *pipeline.Registry, e config.PluginEntry) error {
	if _, known := reg.Lookup(e.Name); !known {
		if config.Suggest(e.Name, []string{consumerPlugin}) != "" {
			return e.Path.Errorf("unknown plugin %q; did you mean %q? (only %s may be set on a consumer)",
				e.Name, consumerPlugin, consumerPlugin)
		}
		return e.Path.Errorf("unknown plugin %q; only %s may be set on a consumer", e.Name, consumerPlugin)
	}
	return e.Path.Errorf("plugin %q cannot be set on a consumer: only %s can; set %s on a route, a service or in the global plugins",
		e.Name, consumerPlugin, e.Name)
}

// consumerRateLimit returns the rate_limit instance with no limits of its
// own that every route chain gets, at the least specific level, when some
// consumer sets its own rate_limit: routes without rate_limit then still
// enforce those consumers' limits (and nothing else). A route, service or
// global rate_limit replaces it, as Merge does for any pipeline. Nil when no
// consumer sets rate_limit.
func consumerRateLimit(reg *pipeline.Registry, consumerPlugins map[string]pipeline.Configured) []pipeline.Configured {
	if len(consumerPlugins) == 0 {
		return nil
	}
	r, ok := reg.Lookup(consumerPlugin)
	if !ok {
		return nil
	}
	// Spec() holds the defaults and no limits: it is never validated (a
	// config file must give limits), and builds a consumer-only limiter.
	return []pipeline.Configured{{Reg: r, Spec: r.Spec(), Scope: pipeline.ScopeGlobal,
		Path: config.Path{}.Key("plugins").Key(consumerPlugin)}}
}
