package pipeline

import (
	"errors"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
)

// Configured is one plugin instance: its registration, its decoded and
// validated Spec, and the scope it was written at.
type Configured struct {
	Reg   *Registration
	Spec  Spec
	Scope Scope
	// Path is where the settings were written (plugins.NAME,
	// routes[i].plugins.NAME, ...), so build errors point at them.
	Path config.Path
	// Implicit reports that the gateway added the instance, with its
	// defaults, by the registration's Implicit rule.
	Implicit bool
}

// Registry is the fixed set of plugins this build of Portico has.
type Registry struct {
	byName  map[string]*Registration
	names   []string
	planned map[string]string
}

// NewRegistry indexes regs. planned names plugins that later versions will
// offer, mapped to a short description, so a config naming one gets a clear
// "not available yet" error instead of a did-you-mean.
func NewRegistry(regs []Registration, planned map[string]string) *Registry {
	r := &Registry{byName: make(map[string]*Registration, len(regs)), planned: planned}
	for i := range regs {
		r.byName[regs[i].Name] = &regs[i]
		r.names = append(r.names, regs[i].Name)
	}
	slices.Sort(r.names)
	return r
}

// Lookup returns the registration for name.
func (r *Registry) Lookup(name string) (*Registration, bool) {
	reg, ok := r.byName[name]
	return reg, ok
}

// Names returns the registered plugin names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// All returns the registrations, sorted by name.
func (r *Registry) All() []*Registration {
	out := make([]*Registration, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.byName[n])
	}
	return out
}

// Decode decodes and validates every entry of set strictly into its
// plugin's Spec. All problems are returned at once, joined.
func (r *Registry) Decode(c *config.Config, set config.PluginSet, scope Scope) ([]Configured, error) {
	var out []Configured
	var errs []error
	for _, e := range set.Entries {
		reg, ok := r.byName[e.Name]
		if !ok {
			errs = append(errs, r.unknown(e))
			continue
		}
		spec := reg.Spec()
		if err := c.DecodeNode(e.Node, e.Path, spec); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := spec.Validate(e.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Configured{Reg: reg, Spec: spec, Scope: scope, Path: e.Path})
	}
	return out, errors.Join(errs...)
}

// ConsumerPlugins are the plugin instances set on consumers: by plugin
// name, then by consumer name.
type ConsumerPlugins map[string]map[string]Configured

// DecodeConsumers decodes the plugins set on consumers
// (consumers[i].plugins). Only plugins with OnConsumer may be set there;
// any other name is an error at consumers[i].plugins.NAME. All problems
// are returned at once, joined. The result is nil when no consumer sets a
// plugin.
func (r *Registry) DecodeConsumers(c *config.Config) (ConsumerPlugins, error) {
	var out ConsumerPlugins
	var errs []error
	for i := range c.Consumers {
		cons := &c.Consumers[i]
		var set config.PluginSet
		for _, e := range cons.Plugins.Entries {
			if reg, ok := r.byName[e.Name]; ok && reg.OnConsumer {
				set.Entries = append(set.Entries, e)
				continue
			}
			errs = append(errs, r.notOnConsumer(e))
		}
		cs, err := r.Decode(c, set, ScopeConsumer)
		errs = append(errs, err)
		for _, cp := range cs {
			if out == nil {
				out = make(ConsumerPlugins)
			}
			if out[cp.Reg.Name] == nil {
				out[cp.Reg.Name] = make(map[string]Configured)
			}
			out[cp.Reg.Name][cons.Name] = cp
		}
	}
	return out, errors.Join(errs...)
}

// onConsumer lists the plugins that may be set on a consumer.
func (r *Registry) onConsumer() []string {
	var out []string
	for _, n := range r.names {
		if r.byName[n].OnConsumer {
			out = append(out, n)
		}
	}
	return out
}

// notOnConsumer is the error for a plugin that cannot be set on a
// consumer, with a did-you-mean when the name is a misspelt one that can.
func (r *Registry) notOnConsumer(e config.PluginEntry) error {
	allowed := r.onConsumer()
	list := strings.Join(allowed, ", ")
	if _, known := r.byName[e.Name]; !known {
		if s := config.Suggest(e.Name, allowed); s != "" {
			return e.Path.Errorf("unknown plugin %q; did you mean %q? (only %s may be set on a consumer)", e.Name, s, list)
		}
		return e.Path.Errorf("unknown plugin %q; only %s may be set on a consumer", e.Name, list)
	}
	return e.Path.Errorf("plugin %q cannot be set on a consumer: only %s can; set %s on a route, a service or in the global plugins",
		e.Name, list, e.Name)
}

func (r *Registry) unknown(e config.PluginEntry) error {
	if what, ok := r.planned[e.Name]; ok {
		return e.Path.Errorf("plugin %q (%s) is not available in this version; available plugins: %s",
			e.Name, what, strings.Join(r.names, ", "))
	}
	if s := config.Suggest(e.Name, r.names); s != "" {
		return e.Path.Errorf("unknown plugin %q; did you mean %q?", e.Name, s)
	}
	return e.Path.Errorf("unknown plugin %q; available plugins: %s", e.Name, strings.Join(r.names, ", "))
}
