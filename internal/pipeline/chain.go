package pipeline

import (
	"net/http"
	"net/textproto"
	"slices"

	"github.com/portico-gateway/portico/internal/config"
)

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

// Levels are the plugin instances configured for one route, by scope.
type Levels struct {
	// Global, Service and Route are the instances written at each scope.
	Global, Service, Route []Configured
	// Consumers are the instances set on consumers (DecodeConsumers).
	Consumers ConsumerPlugins
}

// Assemble returns the plugin instances of one route's chain: the levels
// merged, the most specific winning, plus the plugins the chain needs
// that nobody configured, each added with its defaults by its
// registration's Implicit rule. The gateway's compiler and the plugin
// test harness both call it, so a plugin is tested in the chain it runs
// in.
func (r *Registry) Assemble(l Levels) []Configured {
	var consumerSet []Configured
	for _, reg := range r.All() {
		if reg.Implicit == WhenConsumersSetIt && len(l.Consumers[reg.Name]) > 0 {
			consumerSet = append(consumerSet, implicit(reg))
		}
	}
	chain := Merge(consumerSet, r.WithImplicitGlobals(l.Global), l.Service, l.Route)
	hasAuth := slices.ContainsFunc(chain, func(c Configured) bool { return c.Reg.Phase == PhaseAuthenticate })
	for _, reg := range r.All() {
		if reg.Implicit == WithAuthentication && hasAuth && !has(chain, reg.Name) {
			chain = append(chain, implicit(reg))
		}
	}
	return chain
}

// WithImplicitGlobals returns the global instances plus, with their
// defaults, the plugins that are Always implicit and not configured.
func (r *Registry) WithImplicitGlobals(global []Configured) []Configured {
	out := global
	for _, reg := range r.All() {
		if reg.Implicit == Always && !has(global, reg.Name) {
			out = append(slices.Clip(out), implicit(reg))
		}
	}
	return out
}

// Unrouted returns the instances of the chain around requests that match
// no route: the global ones (with the implicit ones) whose plugin runs
// without a route.
func (r *Registry) Unrouted(global []Configured) []Configured {
	var out []Configured
	for _, c := range r.WithImplicitGlobals(global) {
		if c.Reg.Global {
			out = append(out, c)
		}
	}
	return out
}

// IdentityHeaders returns the sorted canonical names of the headers that
// the gateway strips from every client request: those that the chains'
// plugin instances set, and those that every plugin sets with its default
// settings (so an upstream behind a route without authentication cannot
// be fooled by a forged X-Consumer-ID either).
func (r *Registry) IdentityHeaders(chains ...[]Configured) []string {
	seen := make(map[string]bool)
	add := func(reg *Registration, s Spec) {
		if reg.IdentityHeaders == nil {
			return
		}
		for _, h := range reg.IdentityHeaders(s) {
			seen[textproto.CanonicalMIMEHeaderKey(h)] = true
		}
	}
	for _, reg := range r.All() {
		if reg.IdentityHeaders != nil {
			add(reg, reg.Spec())
		}
	}
	for _, chain := range chains {
		for _, c := range chain {
			add(c.Reg, c.Spec)
		}
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// AnswersPreflight reports whether a plugin of chain answers CORS
// preflight requests.
func AnswersPreflight(chain []Configured) bool {
	return slices.ContainsFunc(chain, func(c Configured) bool { return c.Reg.Preflight })
}

// Chain builds every instance of cs for one route and composes them around
// terminal in phase order, once. The result is immutable and serves any
// number of requests concurrently. env.Scope is set per instance, and
// env.ConsumerPlugins, when env.ConsumerSettings is set, to the consumer
// settings of the instance's plugin.
func Chain(cs []Configured, env BuildEnv, terminal http.Handler) (http.Handler, error) {
	sorted := slices.Clone(cs)
	slices.SortStableFunc(sorted, func(a, b Configured) int { return int(a.Reg.Phase - b.Reg.Phase) })
	mws := make([]Middleware, 0, len(sorted))
	for _, c := range sorted {
		e := env
		e.Scope = c.Scope
		e.Chain = sorted
		if env.ConsumerSettings != nil {
			e.ConsumerPlugins = env.ConsumerSettings[c.Reg.Name]
		}
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

// implicit is reg's instance with its defaults, as if written in the
// global plugins.
func implicit(reg *Registration) Configured {
	return Configured{Reg: reg, Spec: reg.Spec(), Scope: ScopeGlobal,
		Path: config.Path{}.Key("plugins").Key(reg.Name), Implicit: true}
}

func has(cs []Configured, name string) bool {
	return slices.ContainsFunc(cs, func(c Configured) bool { return c.Reg.Name == name })
}
