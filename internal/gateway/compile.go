package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/textproto"
	"regexp"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
	"github.com/portico-gateway/portico/internal/plugins/bodylimit"
	"github.com/portico-gateway/portico/internal/plugins/requestid"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/router"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/upstream"
)

// Deps are the long-lived registries a snapshot is compiled against. They
// outlive every snapshot: state kept in them (idle upstream connections,
// metrics, log files) carries over a reload by name.
type Deps struct {
	Plugins   *pipeline.Registry
	Upstreams *upstream.Registry
	Telemetry *telemetry.Telemetry
	Sinks     pipeline.LogSinks
	Tunnels   *proxy.Tunnels
	Shared    *pipeline.Shared
	Logger    *slog.Logger
	// Ready reports readiness for the ready path; nil means always ready.
	Ready func() bool
}

// implicit are the plugins every chain gets with their defaults unless the
// config sets them: every request has an id and a body limit.
var implicit = []string{requestid.Registration().Name, bodylimit.Registration().Name}

// Compile turns a validated config into a Snapshot: it decodes and
// validates every plugin's settings, resolves route → service references to
// runtime objects, compiles the router and builds every route's chain. It
// starts no goroutines. All problems are returned at once, located in the
// config file.
func Compile(cfg *config.Config, d Deps) (*Snapshot, error) {
	var errs []error
	global, err := decodeGlobal(cfg, d.Plugins)
	errs = append(errs, err)

	svcPlugins := make(map[string][]pipeline.Configured, len(cfg.Services))
	for i, sc := range cfg.Services {
		cs, err := d.Plugins.Decode(cfg, sc.Plugins, pipeline.ScopeService)
		errs = append(errs, err)
		svcPlugins[sc.Name] = cs
		_ = i
	}
	routePlugins := make([][]pipeline.Configured, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		cs, err := d.Plugins.Decode(cfg, rc.Plugins, pipeline.ScopeRoute)
		errs = append(errs, err)
		routePlugins[i] = cs
	}
	consumerPlugins, err := decodeConsumerPlugins(cfg, d.Plugins)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, cfg.Report(err)
	}
	consumerOnly := consumerRateLimit(d.Plugins, consumerPlugins)

	consumers, err := consumer.New(cfg.Consumers)
	if err != nil {
		return nil, err
	}
	shared := d.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	shared.Begin()
	// The gate's default identity headers are removed on every route, even
	// when no route authenticates, so no upstream can be fooled by them.
	identity := make(map[string]bool)
	if r, ok := d.Plugins.Lookup(authGate); ok {
		collectIdentityHeaders(identity, []pipeline.Configured{{Reg: r, Spec: r.Spec()}})
	}

	s := &Snapshot{
		cfg:        cfg,
		healthPath: pathOrOff(cfg.Server.HealthPath),
		readyPath:  pathOrOff(cfg.Server.ReadyPath),
		ready:      d.Ready,
		metrics:    d.Telemetry,
		logger:     d.Logger,
		unmatched:  d.Telemetry.Route("", ""),
	}
	if s.ready == nil {
		s.ready = func() bool { return true }
	}
	for _, t := range cfg.TrustedProxies {
		p, err := parsePrefix(t)
		if err != nil {
			return nil, cfg.Report(config.Path{}.Key("trusted_proxies").Errorf("invalid address or CIDR %q", t))
		}
		s.trusted = append(s.trusted, p)
	}

	services := make(map[string]*config.Service, len(cfg.Services))
	runtime := make(map[string]*upstream.Service, len(cfg.Services))
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		svc, err := d.Upstreams.Service(*sc)
		if err != nil {
			errs = append(errs, config.Path{}.Index("services", i).Errorf("%s", err.Error()))
			continue
		}
		services[sc.Name] = sc
		runtime[sc.Name] = svc
		s.services = append(s.services, svc)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, cfg.Report(err)
	}

	// Retry budgets are per service (a route with its own retries has its
	// own), per snapshot.
	budgets := make(map[string]*upstream.RetryBudget)
	for i := range cfg.Services {
		if r := cfg.Services[i].Retries; r != nil {
			budgets[cfg.Services[i].Name] = upstream.NewRetryBudget(r.Budget)
		}
	}

	rules := make([]router.Rule[*route], 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		p := config.Path{}.Index("routes", i)
		sc := services[rc.Service]
		svc := runtime[rc.Service]
		if sc == nil || svc == nil {
			errs = append(errs, p.Key("service").Errorf("unknown service %q", rc.Service))
			continue
		}
		rt := &route{
			name:        rc.Name,
			service:     rc.Service,
			stripPrefix: rc.StripPrefix,
			metrics:     d.Telemetry.Route(rc.Name, rc.Service),
		}
		if rc.PathRewrite != nil {
			re, err := regexp.Compile(rc.PathRewrite.Pattern)
			if err != nil {
				errs = append(errs, p.Key("path_rewrite").Key("pattern").Errorf("invalid regular expression"))
				continue
			}
			rt.rewrite, rt.replacement = re, rc.PathRewrite.Replacement
		}
		retries, budget := sc.Retries, budgets[sc.Name]
		if rc.Retries != nil {
			retries, budget = rc.Retries, upstream.NewRetryBudget(rc.Retries.Budget)
		}
		po := proxy.Options{
			Service:      svc,
			Timeouts:     sc.Timeouts,
			PreserveHost: sc.PreserveHost,
			HostHeader:   sc.HostHeader,
			Logger:       d.Logger,
			Tunnels:      d.Tunnels,
			Retries:      retries,
			Fallback:     rc.Fallback,
		}
		if budget != nil {
			po.Budget = budget
		}
		px := proxy.New(po)
		chain := withAuthGate(d.Plugins, pipeline.Merge(consumerOnly, global, svcPlugins[rc.Service], routePlugins[i]))
		collectIdentityHeaders(identity, chain)
		h, err := pipeline.Chain(chain, pipeline.BuildEnv{
			Route: rc.Name, Service: rc.Service, Logger: d.Logger, Sinks: d.Sinks,
			Consumers: consumers, Shared: shared,
			Store: cfg.Store, Tiers: cfg.Tiers, Telemetry: d.Telemetry,
			ConsumerPlugins: consumerPlugins,
		}, px)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rt.handler = h
		for _, c := range chain {
			rt.cors = rt.cors || c.Reg.Name == "cors"
		}
		rules = append(rules, router.Rule[*route]{
			Value:   rt,
			Hosts:   rc.Match.Hosts,
			Methods: rc.Match.Methods,
			Paths:   rc.Match.Paths,
			Headers: rc.Match.Headers,
			Query:   rc.Match.Query,
		})
		s.routes = append(s.routes, RouteInfo{
			Name: rc.Name, Service: rc.Service, Hosts: rc.Match.Hosts,
			Methods: rc.Match.Methods, Paths: rc.Match.Paths, Plugins: pluginNames(chain),
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, cfg.Report(err)
	}
	table, err := router.Compile(rules)
	if err != nil {
		return nil, cfg.Report(routerErrors(err))
	}
	s.table = table

	// Requests that match no route still pass the global plugins that need
	// no route (request id, access log).
	var unrouted []pipeline.Configured
	for _, c := range global {
		if c.Reg.Global {
			unrouted = append(unrouted, c)
		}
	}
	env := pipeline.BuildEnv{Logger: d.Logger, Sinks: d.Sinks, Consumers: consumers, Shared: shared,
		Store: cfg.Store, Tiers: cfg.Tiers, Telemetry: d.Telemetry}
	for _, u := range []struct {
		h      *http.Handler
		status int
		detail string
	}{
		{&s.badPath, http.StatusBadRequest, "the request path is malformed or contains encoded separators"},
		{&s.notFound, http.StatusNotFound, "no route matches the request"},
		{&s.notAllowed, http.StatusMethodNotAllowed, "the route does not allow this method"},
	} {
		h, err := pipeline.Chain(unrouted, env, terminal(u.status, u.detail))
		if err != nil {
			return nil, cfg.Report(err)
		}
		*u.h = h
	}
	for name := range identity {
		s.identity = append(s.identity, name)
	}
	slices.Sort(s.identity)
	return s, nil
}

// authGate is the plugin that admits or refuses a request after the
// authentication plugins of its route have run.
const authGate = "auth"

// withAuthGate adds the auth gate with its defaults to a chain that has
// authentication plugins but does not configure the gate.
func withAuthGate(reg *pipeline.Registry, chain []pipeline.Configured) []pipeline.Configured {
	hasAuth := slices.ContainsFunc(chain, func(c pipeline.Configured) bool { return c.Reg.Phase == pipeline.PhaseAuthenticate })
	if !hasAuth || hasPlugin(chain, authGate) {
		return chain
	}
	r, ok := reg.Lookup(authGate)
	if !ok {
		return chain
	}
	return append(slices.Clone(chain), pipeline.Configured{Reg: r, Spec: r.Spec(), Scope: pipeline.ScopeGlobal,
		Path: config.Path{}.Key("plugins").Key(authGate)})
}

// collectIdentityHeaders adds the identity headers the chain's plugins set.
func collectIdentityHeaders(into map[string]bool, chain []pipeline.Configured) {
	for _, c := range chain {
		if c.Reg.IdentityHeaders == nil {
			continue
		}
		for _, h := range c.Reg.IdentityHeaders(c.Spec) {
			into[textproto.CanonicalMIMEHeaderKey(h)] = true
		}
	}
}

// decodeGlobal decodes the global plugins and adds the implicit ones the
// config does not set.
func decodeGlobal(cfg *config.Config, reg *pipeline.Registry) ([]pipeline.Configured, error) {
	cs, err := reg.Decode(cfg, cfg.Plugins, pipeline.ScopeGlobal)
	for _, name := range implicit {
		if hasPlugin(cs, name) || hasEntry(cfg.Plugins, name) {
			continue
		}
		r, ok := reg.Lookup(name)
		if !ok {
			continue
		}
		cs = append(cs, pipeline.Configured{Reg: r, Spec: r.Spec(), Scope: pipeline.ScopeGlobal,
			Path: config.Path{}.Key("plugins").Key(name)})
	}
	return cs, err
}

func hasPlugin(cs []pipeline.Configured, name string) bool {
	for _, c := range cs {
		if c.Reg.Name == name {
			return true
		}
	}
	return false
}

func hasEntry(set config.PluginSet, name string) bool {
	for _, e := range set.Entries {
		if e.Name == name {
			return true
		}
	}
	return false
}

func pluginNames(cs []pipeline.Configured) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Reg.Name)
	}
	return out
}

func pathOrOff(p string) string {
	if p == "off" {
		return "\x00off" // never equal to a request path
	}
	return p
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// CheckPlugins decodes and validates every plugin's settings in cfg without
// compiling anything else. `portico validate` uses it to report plugin
// errors together with the errors of a config that failed validation.
func CheckPlugins(cfg *config.Config, reg *pipeline.Registry) error {
	_, err := decodeGlobal(cfg, reg)
	errs := []error{err}
	for _, sc := range cfg.Services {
		_, err := reg.Decode(cfg, sc.Plugins, pipeline.ScopeService)
		errs = append(errs, err)
	}
	for _, rc := range cfg.Routes {
		_, err := reg.Decode(cfg, rc.Plugins, pipeline.ScopeRoute)
		errs = append(errs, err)
	}
	_, err = decodeConsumerPlugins(cfg, reg)
	errs = append(errs, err)
	return errors.Join(errs...)
}

// Check compiles cfg against throwaway registries and discards the result:
// `portico validate` is run without start. It opens no listeners and starts
// nothing, but it does open access log files, as run would.
func Check(cfg *config.Config, logger *slog.Logger) (*Snapshot, error) {
	ups := upstream.NewRegistry(logger)
	defer ups.Close()
	sinks := telemetry.NewSinks(nil, nil)
	defer sinks.Close()
	return Compile(cfg, Deps{
		Plugins:   plugins.NewRegistry(),
		Upstreams: ups,
		Telemetry: telemetry.New(),
		Sinks:     sinks,
		Tunnels:   proxy.NewTunnels(),
		Logger:    logger,
	})
}

// routerErrors turns the router's compile errors into config errors at the
// route's match key (rules are built in config order, one per route).
func routerErrors(err error) error {
	var leaves []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		leaves = j.Unwrap()
	} else {
		leaves = []error{err}
	}
	out := make([]error, 0, len(leaves))
	for _, e := range leaves {
		var ce *router.CompileError
		if errors.As(e, &ce) {
			out = append(out, config.Path{}.Index("routes", ce.Rule).Key("match").Errorf("%s", ce.Error()))
			continue
		}
		out = append(out, fmt.Errorf("compile routes: %w", e))
	}
	return errors.Join(out...)
}
