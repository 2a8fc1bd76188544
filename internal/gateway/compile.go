package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/portico-gateway/portico/internal/admin"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/edge"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
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

// Compile turns a validated config into a Snapshot: it decodes and
// validates every plugin's settings, resolves route → service references to
// runtime objects, compiles the router and builds every route's chain. It
// starts no goroutines. All problems are returned at once, located in the
// config file.
func Compile(cfg *config.Config, d Deps) (*Snapshot, error) {
	var errs []error
	global, err := d.Plugins.Decode(cfg, cfg.Plugins, pipeline.ScopeGlobal)
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
	consumerPlugins, err := d.Plugins.DecodeConsumers(cfg)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, cfg.Report(err)
	}

	consumers, err := consumer.New(cfg.Consumers)
	if err != nil {
		return nil, err
	}
	shared := d.Shared
	if shared == nil {
		shared = pipeline.NewShared()
	}
	shared.Begin()
	var chains [][]pipeline.Configured // every route's, for the identity headers

	s := &Snapshot{
		cfg:        cfg,
		healthPath: pathOrOff(cfg.Server.HealthPath),
		readyPath:  pathOrOff(cfg.Server.ReadyPath),
		ready:      d.Ready,
	}
	s.edge = edge.Edge{
		Body:      edge.BodyLimits{Idle: cfg.Server.ReadBodyTimeout.D(), MinRate: int64(cfg.Server.MinBodyRate)},
		Unmatched: d.Telemetry.Route("", ""),
		InFlight:  d.Telemetry.InFlightAdd,
		Logger:    d.Logger,
		Next:      s,
	}
	if s.ready == nil {
		s.ready = func() bool { return true }
	}
	for _, t := range cfg.TrustedProxies {
		p, err := parsePrefix(t)
		if err != nil {
			return nil, cfg.Report(config.Path{}.Key("trusted_proxies").Errorf("invalid address or CIDR %q", t))
		}
		s.edge.Trusted = append(s.edge.Trusted, p)
	}

	// Checked with the routes, so that one run reports both.
	s.admin, err = admin.NewAccess(&cfg.Admin, adminEndpoints(d.Plugins, nil))
	errs = append(errs, err)

	ups, err := compileServices(cfg, d)
	if err != nil {
		return nil, cfg.Report(errors.Join(append(errs, err)...))
	}
	s.services = ups.list

	rules := make([]router.Rule[*route], 0, len(cfg.Routes))
	var ruleListeners [][]string // each rule's routes[].listeners
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		p := config.Path{}.Index("routes", i)
		term, err := ups.terminalFor(rc, p, d)
		if err != nil {
			errs = append(errs, err)
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
		rt.terminal = term
		chain := d.Plugins.Assemble(pipeline.Levels{Global: global, Service: svcPlugins[rc.Service],
			Route: routePlugins[i], Consumers: consumerPlugins})
		chains = append(chains, chain)
		h, err := pipeline.Chain(chain, pipeline.BuildEnv{
			Route: rc.Name, Service: rc.Service, Logger: d.Logger, Sinks: d.Sinks,
			Listeners: routeListeners(cfg, rc), Consumers: consumers, Shared: shared,
			Store: cfg.Store, Tiers: cfg.Tiers, Telemetry: d.Telemetry,
			ConsumerSettings: consumerPlugins,
		}, term)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rt.handler = h
		rt.preflight = pipeline.AnswersPreflight(chain)
		ruleListeners = append(ruleListeners, rc.Listeners)
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
	if s.tables, err = listenerTables(cfg, table, rules, ruleListeners); err != nil {
		return nil, err
	}

	// Requests that match no route still pass the global plugins that need
	// no route (request id, access log).
	unrouted := d.Plugins.Unrouted(global)
	env := pipeline.BuildEnv{Logger: d.Logger, Sinks: d.Sinks, Consumers: consumers, Shared: shared,
		Store: cfg.Store, Tiers: cfg.Tiers, Telemetry: d.Telemetry}
	for _, u := range []struct {
		h      *http.Handler
		status int
		detail string
	}{
		{&s.badPath, http.StatusBadRequest, "the request target is malformed, or a path a backend could read as another"},
		{&s.notFound, http.StatusNotFound, "no route matches the request"},
		{&s.notAllowed, http.StatusMethodNotAllowed, "the route does not allow this method"},
		{&s.badCredential, http.StatusBadRequest, "the request carries the Authorization header more than once; send one credential"},
	} {
		h, err := pipeline.Chain(unrouted, env, &problemTerminal{status: u.status, detail: u.detail})
		if err != nil {
			return nil, cfg.Report(err)
		}
		*u.h = h
	}
	s.edge.Headers = edge.NewHeaders(d.Plugins.IdentityHeaders(chains...), cfg.Server.ProxyHeaders,
		cfg.Server.UnderscoresInHeaders)
	return s, nil
}

// routeListeners returns the public listeners rc takes requests from:
// those its listeners key names, or every one.
func routeListeners(cfg *config.Config, rc *config.Route) []config.Listener {
	all := cfg.PublicListeners()
	if len(rc.Listeners) == 0 {
		return all
	}
	out := make([]config.Listener, 0, len(rc.Listeners))
	for _, l := range all {
		if slices.Contains(rc.Listeners, l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// pluginNames lists the chain's plugins in the order a request meets them.
func pluginNames(cs []pipeline.Configured) []string {
	sorted := slices.Clone(cs)
	slices.SortStableFunc(sorted, func(a, b pipeline.Configured) int { return int(a.Reg.Phase - b.Reg.Phase) })
	out := make([]string, 0, len(sorted))
	for _, c := range sorted {
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
	_, err := reg.Decode(cfg, cfg.Plugins, pipeline.ScopeGlobal)
	errs := []error{err}
	for _, sc := range cfg.Services {
		_, err := reg.Decode(cfg, sc.Plugins, pipeline.ScopeService)
		errs = append(errs, err)
	}
	for _, rc := range cfg.Routes {
		_, err := reg.Decode(cfg, rc.Plugins, pipeline.ScopeRoute)
		errs = append(errs, err)
	}
	_, err = reg.DecodeConsumers(cfg)
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

// listenerTables returns the route table of each public listener, by
// index: all holds every route; where some route takes requests from
// named listeners only (routes[].listeners), each listener gets a table
// of the routes it takes.
func listenerTables(cfg *config.Config, all *router.Table[*route], rules []router.Rule[*route],
	ruleListeners [][]string) ([]*router.Table[*route], error) {
	lcs := cfg.PublicListeners()
	tables := make([]*router.Table[*route], len(lcs))
	restricted := slices.ContainsFunc(ruleListeners, func(ls []string) bool { return len(ls) > 0 })
	for i, lc := range lcs {
		if !restricted {
			tables[i] = all
			continue
		}
		var subset []router.Rule[*route]
		for j, r := range rules {
			if ls := ruleListeners[j]; len(ls) == 0 || slices.Contains(ls, lc.Name) {
				subset = append(subset, r)
			}
		}
		t, err := router.Compile(subset)
		if err != nil {
			return nil, fmt.Errorf("compile the routes of listener %s: %w", lc.Name, err)
		}
		tables[i] = t
	}
	return tables, nil
}
