// Package upstream holds the runtime side of configured services: their
// targets, the balancer that picks one per request, and each target's pool
// of idle keep-alive connections.
//
// # Lifecycle
//
// A Registry outlives config snapshots. Compiling a snapshot calls
// Registry.Service once per configured service; it returns a new *Service
// (balancer state is per snapshot) whose *Target values are reused by
// (service name, target URL), so idle connections survive a reload. After
// the gateway swaps snapshots it calls Registry.Sweep with the services of
// the live snapshot: targets no longer referenced are closed (their idle
// connections at once; connections still in use when they are returned).
// A closed target keeps working for requests of an old snapshot that are
// still in flight, it only stops pooling. Registry.Service and Sweep must
// not run concurrently with each other for different reloads; the gateway
// serializes reloads.
//
// # Connections
//
// Targets neither start goroutines nor do I/O in the background. The
// request path takes an idle connection with Target.Get (last in, first
// out, so the warmest connection is reused and the others age out), dials
// with Target.Dial when there is none, and hands the connection back with
// Target.Put when its last exchange ended cleanly. See Target.Get for how a
// connection the upstream closed while idle is detected without blocking.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/config"
)

// Defaults used when the service config leaves a field at zero.
const (
	// DefaultMaxIdleConns is the default bound on idle connections per target.
	DefaultMaxIdleConns = 256
	// DefaultIdleConnTimeout is the default age after which an idle
	// connection is closed instead of reused.
	DefaultIdleConnTimeout = 60 * time.Second
)

// ErrNoTarget is returned by Service.Pick when no target can take the
// request. The proxy answers 503 with Retry-After.
var ErrNoTarget = errors.New("no upstream target available")

// errClosed is returned by Registry.Service after Close.
var errClosed = errors.New("upstream registry is closed")

// Registry creates services and keeps their targets alive across config
// reloads. It is safe for concurrent use.
type Registry struct {
	logger *slog.Logger

	mu      sync.Mutex
	now     func() time.Time // the idle pools' clock; see SetClock
	targets map[targetKey]*Target
	states  map[string]*serviceState
	live    []*Service // the services of the live snapshot
	closed  bool
}

type targetKey struct{ service, url string }

// NewRegistry returns an empty registry. A nil logger discards.
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{logger: logger, now: time.Now, targets: make(map[targetKey]*Target), states: make(map[string]*serviceState)}
}

// SetClock sets the clock by which the idle pools of the targets that
// later Service calls create tell how long a connection has been idle:
// for the idle timeout, and for the second after which Target.Get checks
// an idle connection for a close by the upstream. The default is time.Now,
// which the gateway keeps; tests move a clock of their own forward to age
// idle connections without waiting. Call it before the first Service.
func (r *Registry) SetClock(now func() time.Time) {
	r.mu.Lock()
	r.now = now
	r.mu.Unlock()
}

// Service returns the runtime service for cfg. cfg has its defaults
// applied (see config.Service); zero MaxIdleConns and IdleConnTimeout still
// mean DefaultMaxIdleConns and DefaultIdleConnTimeout, and a zero target
// weight means 1. Targets are reused by (service name, target URL) across
// calls, so idle connections survive a config reload; their pool limits
// take the values of the latest call. Service starts no goroutines and does
// no network I/O.
func (r *Registry) Service(cfg config.Service) (*Service, error) {
	specs := cfg.Targets
	if len(specs) == 0 && cfg.URL != "" {
		specs = []config.Target{{URL: cfg.URL, Weight: 1}}
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("service %q: no targets", cfg.Name)
	}
	type parsed struct {
		url, addr, host string
		tls             bool
		weight          int
	}
	ps := make([]parsed, len(specs))
	for i, s := range specs {
		addr, host, tls, err := parseTargetURL(s.URL)
		if err != nil {
			return nil, fmt.Errorf("service %q: target %q: %w", cfg.Name, s.URL, err)
		}
		w := s.Weight
		if w <= 0 {
			w = 1
		}
		ps[i] = parsed{url: s.URL, addr: addr, host: host, tls: tls, weight: w}
	}
	maxIdle := cfg.MaxIdleConns
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConns
	}
	idleTimeout := cfg.IdleConnTimeout.D()
	if idleTimeout <= 0 {
		idleTimeout = DefaultIdleConnTimeout
	}

	var tlsConf *tls.Config
	for _, p := range ps {
		if p.tls && tlsConf == nil {
			c, err := clientTLSConfig(cfg.TLS)
			if err != nil {
				return nil, fmt.Errorf("service %q: tls: %w", cfg.Name, err)
			}
			tlsConf = c
		}
	}

	targets := make([]*Target, len(ps))
	weights := make([]int, len(ps))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errClosed
	}
	for i, p := range ps {
		key := targetKey{service: cfg.Name, url: p.url}
		t := r.targets[key]
		if t == nil {
			t = newTarget(p.url, p.addr, p.host)
			t.TLS = p.tls
			t.now = r.now
			r.targets[key] = t
		}
		t.configure(p.weight, maxIdle, idleTimeout)
		if p.tls {
			t.setTLS(tlsConf)
		}
		targets[i] = t
		weights[i] = p.weight
	}
	st := r.state(cfg.Name)
	svc := &Service{
		name:    cfg.Name,
		cfg:     cfg,
		targets: targets,
		weights: weights,
		lb:      newBalancer(cfg.LoadBalancer, targets, weights),
		state:   st,
		breaker: r.serviceBreaker(st, cfg.CircuitBreaker),
	}
	svc.outlier = newOutlier(cfg.Name, cfg.HealthCheck.Passive, targets, r.logger, func(*Target, time.Time) {
		st.ejections.Add(1)
	})
	return svc, nil
}

// Sweep closes the targets that no service in keep references: their idle
// connections are closed now, connections in use are closed when they are
// returned. The gateway calls it after swapping in a new snapshot, with
// that snapshot's services.
func (r *Registry) Sweep(keep []*Service) {
	used := make(map[*Target]struct{})
	for _, s := range keep {
		if s == nil {
			continue
		}
		for _, t := range s.targets {
			used[t] = struct{}{}
		}
	}
	var stale []*Target
	r.mu.Lock()
	for k, t := range r.targets {
		if _, ok := used[t]; !ok {
			delete(r.targets, k)
			stale = append(stale, t)
		}
	}
	r.mu.Unlock()
	for _, t := range stale {
		r.logger.Debug("upstream target removed", slog.String("upstream", t.Addr))
		t.close()
	}
}

// Close closes every target and makes further Service calls fail. Requests
// in flight finish on their connections, which are then closed.
func (r *Registry) Close() error {
	r.mu.Lock()
	r.closed = true
	targets := r.targets
	r.targets = make(map[targetKey]*Target)
	var stops []func()
	for _, st := range r.states {
		if st.checks != nil {
			stops = append(stops, st.checks.stop)
			st.checks = nil
		}
	}
	r.live = nil
	r.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	for _, t := range targets {
		t.close()
	}
	return nil
}

// parseTargetURL checks a target URL ("http://host[:port]" or https) and
// returns the dial address, the Host header value and whether it is https.
func parseTargetURL(raw string) (addr, host string, https bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", false, errors.New("not a valid URL")
	}
	https = u.Scheme == "https"
	switch {
	case u.Scheme != "http" && !https:
		return "", "", false, errors.New("scheme must be http or https")
	case u.Host == "":
		return "", "", false, errors.New("missing host")
	case u.User != nil:
		return "", "", false, errors.New("credentials are not allowed in a target URL")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", "", false, errors.New("a target URL has no path, query or fragment")
	}
	hostname, port := u.Hostname(), u.Port()
	if hostname == "" {
		return "", "", false, errors.New("missing host")
	}
	if port == "" {
		port = "80"
		if https {
			port = "443"
		}
	} else if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
		return "", "", false, errors.New("port must be 1..65535")
	}
	return net.JoinHostPort(hostname, port), u.Host, https, nil
}

// serviceState is what a service keeps across config snapshots, under its
// name: the service breaker, the running active checks, and counters.
type serviceState struct {
	name       string
	breaker    *Breaker
	breakerCfg config.CircuitBreaker
	checks     *activeRun

	retries     atomic.Int64
	failures    atomic.Int64
	ejections   atomic.Int64
	transitions [3]atomic.Int64 // by state entered
}

// activeRun is a service's running active health checks.
type activeRun struct {
	cfg     config.ActiveHealthCheck
	targets []*Target
	stop    func()
}

// state returns the state kept for a service name, creating it. r.mu is
// held.
func (r *Registry) state(name string) *serviceState {
	st := r.states[name]
	if st == nil {
		st = &serviceState{name: name}
		r.states[name] = st
	}
	return st
}

// serviceBreaker returns the service breaker for cfg (nil when off),
// keeping the existing one, and its state, when the settings did not
// change. r.mu is held.
func (r *Registry) serviceBreaker(st *serviceState, cfg *config.CircuitBreaker) *Breaker {
	if cfg == nil {
		return nil
	}
	if st.breaker != nil && st.breakerCfg == *cfg {
		return st.breaker
	}
	st.breakerCfg = *cfg
	st.breaker = newBreaker(*cfg, r.onBreakerChange(st, ""))
	return st.breaker
}

// onBreakerChange logs a breaker's transitions and counts them.
func (r *Registry) onBreakerChange(st *serviceState, target string) func(from, to BreakerState) {
	return func(from, to BreakerState) {
		if int(to) < len(st.transitions) {
			st.transitions[to].Add(1)
		}
		level := slog.LevelInfo
		if to == BreakerOpen {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("service", st.name), slog.String("from", from.String()), slog.String("to", to.String())}
		if target != "" {
			attrs = append(attrs, slog.String("target", target))
		}
		r.logger.LogAttrs(context.Background(), level, "circuit breaker state changed", attrs...)
	}
}

// Activate makes the services of the snapshot now serving live: it starts
// their active health checks (restarting those whose settings or targets
// changed, stopping those of services no longer configured), installs or
// removes per-target breakers, and closes the targets no service
// references any more (see Sweep). The gateway calls it after every
// snapshot swap.
func (r *Registry) Activate(live []*Service) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.live = live
	var stops []func()
	keep := make(map[string]bool, len(live))
	type start struct {
		st  *serviceState
		svc *Service
	}
	var starts []start
	for _, s := range live {
		keep[s.name] = true
		st := r.state(s.name)
		a := s.cfg.HealthCheck.Active
		run := st.checks
		if run != nil && (a == nil || !reflect.DeepEqual(run.cfg, *a) || !slices.Equal(run.targets, s.targets)) {
			stops = append(stops, run.stop)
			st.checks = nil
		}
		if a != nil && st.checks == nil {
			starts = append(starts, start{st, s})
		}
		for _, t := range s.targets {
			if s.cfg.CircuitBreaker != nil && s.cfg.CircuitBreaker.PerTarget {
				if b := t.breaker.Load(); b == nil {
					t.breaker.Store(newBreaker(*s.cfg.CircuitBreaker, r.onBreakerChange(st, t.URL)))
				} else {
					b.reconfigure(*s.cfg.CircuitBreaker)
				}
			} else {
				t.breaker.Store(nil)
			}
			if a == nil {
				t.setActiveHealthy(true)
			}
		}
	}
	for name, st := range r.states {
		if !keep[name] {
			if st.checks != nil {
				stops = append(stops, st.checks.stop)
			}
			delete(r.states, name)
		}
	}
	for _, s := range starts {
		a := *s.svc.cfg.HealthCheck.Active
		stop := startActive(s.svc.name, &a, s.svc.targets, s.svc.cfg.Timeouts.Connect.D(), r.logger, nil)
		s.st.checks = &activeRun{cfg: a, targets: s.svc.targets, stop: stop}
	}
	r.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	r.Sweep(live)
}

// TargetStatus is one target in the admin API's GET /upstreams.
type TargetStatus struct {
	URL           string  `json:"url"`
	Weight        int     `json:"weight"`
	Available     bool    `json:"available"`
	ActiveHealthy bool    `json:"active_healthy"`
	EjectedUntil  string  `json:"ejected_until,omitempty"`
	Breaker       string  `json:"breaker,omitempty"`
	InFlight      int64   `json:"in_flight"`
	IdleConns     int     `json:"idle_connections"`
	LatencyMillis float64 `json:"latency_ewma_ms"`
}

// ServiceStatus is one service in GET /upstreams.
type ServiceStatus struct {
	Name        string         `json:"name"`
	Balancer    string         `json:"load_balancer"`
	Breaker     string         `json:"breaker,omitempty"`
	Retries     int64          `json:"retries_total"`
	Failures    int64          `json:"failed_attempts_total"`
	Ejections   int64          `json:"ejections_total"`
	ActiveCheck bool           `json:"active_health_checks"`
	Targets     []TargetStatus `json:"targets"`
}

// Status describes the live services and their targets now.
func (r *Registry) Status() []ServiceStatus {
	r.mu.Lock()
	live := r.live
	r.mu.Unlock()
	now := time.Now()
	out := make([]ServiceStatus, 0, len(live))
	for _, s := range live {
		ss := ServiceStatus{
			Name: s.name, Balancer: s.cfg.LoadBalancer.Algorithm, Breaker: s.BreakerState(now),
			Retries: s.state.retries.Load(), Failures: s.state.failures.Load(), Ejections: s.state.ejections.Load(),
			ActiveCheck: s.cfg.HealthCheck.Active != nil,
		}
		for _, t := range s.targets {
			ts := TargetStatus{
				URL: t.URL, Weight: t.Weight(), Available: t.available(now.UnixNano()),
				ActiveHealthy: t.ActiveHealthy(), InFlight: t.Inflight(), IdleConns: t.Idle(),
				LatencyMillis: float64(t.Latency().Microseconds()) / 1000,
			}
			if u := t.EjectedUntil(); u.After(now) {
				ts.EjectedUntil = u.UTC().Format(time.RFC3339)
			}
			if b := t.breaker.Load(); b != nil {
				ts.Breaker = b.State(now).String()
			}
			ss.Targets = append(ss.Targets, ts)
		}
		out = append(out, ss)
	}
	return out
}
