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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
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
	targets map[targetKey]*Target
	closed  bool
}

type targetKey struct{ service, url string }

// NewRegistry returns an empty registry. A nil logger discards.
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{logger: logger, targets: make(map[targetKey]*Target)}
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
		weight          int
	}
	ps := make([]parsed, len(specs))
	for i, s := range specs {
		addr, host, err := parseTargetURL(s.URL)
		if err != nil {
			return nil, fmt.Errorf("service %q: target %q: %w", cfg.Name, s.URL, err)
		}
		w := s.Weight
		if w <= 0 {
			w = 1
		}
		ps[i] = parsed{url: s.URL, addr: addr, host: host, weight: w}
	}
	maxIdle := cfg.MaxIdleConns
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleConns
	}
	idleTimeout := cfg.IdleConnTimeout.D()
	if idleTimeout <= 0 {
		idleTimeout = DefaultIdleConnTimeout
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
			r.targets[key] = t
		}
		t.configure(p.weight, maxIdle, idleTimeout)
		targets[i] = t
		weights[i] = p.weight
	}
	return newService(cfg.Name, targets, weights), nil
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
	r.mu.Unlock()
	for _, t := range targets {
		t.close()
	}
	return nil
}

// parseTargetURL checks a target URL ("http://host[:port]") and returns the
// dial address and the Host header value.
func parseTargetURL(raw string) (addr, host string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", errors.New("not a valid URL")
	}
	switch {
	case u.Scheme != "http":
		return "", "", errors.New("scheme must be http")
	case u.Host == "":
		return "", "", errors.New("missing host")
	case u.User != nil:
		return "", "", errors.New("credentials are not allowed in a target URL")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", "", errors.New("a target URL has no path, query or fragment")
	}
	hostname, port := u.Hostname(), u.Port()
	if hostname == "" {
		return "", "", errors.New("missing host")
	}
	if port == "" {
		port = "80"
	} else if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
		return "", "", errors.New("port must be 1..65535")
	}
	return net.JoinHostPort(hostname, port), u.Host, nil
}
