package pipeline

import (
	"errors"
	"net/http"
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

// Merge combines plugin instances from the least to the most specific
// level: for the same plugin name, a later level replaces an earlier one.
func Merge(levels ...[]Configured) []Configured {
	var out []Configured
	for _, level := range levels {
		for _, c := range level {
			i := slices.IndexFunc(out, func(o Configured) bool { return o.Reg.Name == c.Reg.Name })
			if i >= 0 {
				out[i] = c
			} else {
				out = append(out, c)
			}
		}
	}
	return out
}

// Chain builds every instance of cs for one route and composes them around
// terminal in phase order, once. The result is immutable and serves any
// number of requests concurrently. env.Scope is set per instance.
func Chain(cs []Configured, env BuildEnv, terminal http.Handler) (http.Handler, error) {
	sorted := slices.Clone(cs)
	slices.SortStableFunc(sorted, func(a, b Configured) int { return int(a.Reg.Phase - b.Reg.Phase) })
	mws := make([]Middleware, 0, len(sorted))
	for _, c := range sorted {
		e := env
		e.Scope = c.Scope
		mw, err := c.Reg.Build(c.Spec, &e)
		if err != nil {
			return nil, c.Path.Errorf("%s", err.Error())
		}
		if mw != nil {
			mws = append(mws, mw)
		}
	}
	h := terminal
	for _, mw := range slices.Backward(mws) {
		h = mw(h)
	}
	return h, nil
}
