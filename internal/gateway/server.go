// Package gateway compiles a config into an immutable Snapshot and serves
// it.
//
// Life of the server: New compiles the first snapshot and loads the
// listeners' certificates; Run opens the public listeners (package
// listener) and the admin listener, marks the gateway ready and waits. A reload (SIGHUP,
// a change of the config file, or POST /reload on the admin listener) loads,
// validates and compiles the new config beside the running one and swaps it
// in with one atomic store: requests already in flight finish on the
// snapshot they started with, new requests see the new one, and an invalid
// config is logged and discarded while the old one keeps serving. When the
// context given to Run ends (SIGTERM, SIGINT), /ready turns 503, the
// listeners stop accepting, in-flight requests get drain_timeout to finish,
// and Run returns nil.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/acme"
	"github.com/portico-gateway/portico/internal/admin"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/listener"
	"github.com/portico-gateway/portico/internal/memory"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
	"github.com/portico-gateway/portico/internal/proxy"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/upstream"
)

// Options configure a Server beyond its config file.
type Options struct {
	// Logger receives the gateway's own log (not the access log).
	Logger *slog.Logger
	// Sinks are the log outputs; nil means stdout and stderr.
	Sinks *telemetry.Sinks
	// Load re-reads the config on reload. nil disables reloading (for
	// embedded configs that have no file).
	Load func() (*config.Config, error)
	// WatchFile, when set, triggers a reload when that file changes.
	WatchFile string
	// Version is reported by the admin API.
	Version string
}

// Server serves the current snapshot on the public listener and the admin
// API on the admin listener.
type Server struct {
	current atomic.Pointer[Snapshot]
	ready   atomic.Bool
	// certs are the loaded certificates of the TLS listeners, by listener
	// name, until Run opens the listeners.
	certs map[string]*listener.Certificates
	// clientAuth are the loaded client certificate policies of the TLS
	// listeners that have one, by listener name, until Run opens the
	// listeners.
	clientAuth map[string]*listener.ClientAuth
	// challenges answers the ACME challenges of the current config's
	// managers on every listener.
	challenges *acme.Challenges

	opts    Options
	log     *slog.Logger
	deps    Deps
	sinks   *telemetry.Sinks
	reloads chan chan error
	// reloaded tells the file watcher that a reload succeeded (nil when
	// nothing watches), so it follows the new config's files.
	reloaded chan struct{}
	stopped  chan struct{} // closed when the reload loop has ended
	// bgCtx and bgWG own the background goroutines (reloads, log flushing,
	// shared plugin state); set by Run before any reload can happen.
	bgCtx context.Context
	bgWG  *sync.WaitGroup

	mu        sync.Mutex
	listeners []*listener.Listener
	adminAddr string
	started   chan struct{}
}

// New compiles cfg and returns a server ready to Run.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		sinks:      opts.Sinks,
		reloads:    make(chan chan error, 1),
		challenges: &acme.Challenges{},
		started:    make(chan struct{}),
		stopped:    make(chan struct{}),
	}
	if s.sinks == nil {
		s.sinks = telemetry.NewSinks(nil, nil)
	}
	s.deps = Deps{
		Plugins:   plugins.NewRegistry(),
		Upstreams: upstream.NewRegistry(opts.Logger),
		Telemetry: telemetry.New(),
		Sinks:     s.sinks,
		Tunnels:   proxy.NewTunnels(),
		Shared:    pipeline.NewShared(),
		Logger:    opts.Logger,
	}
	s.deps.Ready = s.isReady
	s.deps.Telemetry.SetSource("upstream", s.deps.Upstreams.Report)
	s.deps.Telemetry.SetSource("tls", s.reportCertificates)
	snap, err := Compile(cfg, s.deps)
	if err != nil {
		return nil, err
	}
	var managers []*acme.Manager
	if s.certs, managers, err = s.loadCertificates(cfg); err != nil {
		return nil, err
	}
	if s.clientAuth, err = loadClientAuth(cfg); err != nil {
		return nil, err
	}
	s.challenges.Set(managers)
	s.current.Store(snap)
	s.deps.Telemetry.Reload(true) // the first load counts as a successful load
	return s, nil
}

// isReady reports readiness: serving, not draining, and every piece of
// shared plugin state (such as a JWKS key set) ready.
func (s *Server) isReady() bool { return s.ready.Load() && s.deps.Shared.Ready() }

// startShared starts the background work of shared plugin state created by
// the latest compile. Each runs until ctx ends.
func (s *Server) startShared(ctx context.Context, wg *sync.WaitGroup) {
	s.deps.Shared.Start(ctx, wg.Go)
}

// Current returns the snapshot serving new requests.
func (s *Server) Current() *Snapshot { return s.current.Load() }

// ServeHTTP serves r with the current snapshot, loaded exactly once, as
// the first listener would.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.current.Load().ServeOn(0, w, r)
}

// forListener is the handler of the i-th public listener: the current
// snapshot, loaded exactly once per request, with the routes that take
// requests from that listener.
func (s *Server) forListener(i int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.current.Load().ServeOn(i, w, r)
	})
}

// Addr returns the bound address of the first public listener once Run
// has opened it ("" when Run failed to open the listeners).
func (s *Server) Addr() string {
	<-s.started
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) == 0 {
		return ""
	}
	return s.listeners[0].Addr()
}

// Addrs returns the bound address of every public listener by name, once
// Run has opened them.
func (s *Server) Addrs() map[string]string {
	<-s.started
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.listeners))
	for _, l := range s.listeners {
		out[l.Name()] = l.Addr()
	}
	return out
}

// AdminAddr returns the bound admin address ("" when disabled).
func (s *Server) AdminAddr() string {
	<-s.started
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.adminAddr
}

// Reload loads, compiles and swaps in the config, or returns why not. The
// running snapshot is untouched on error.
func (s *Server) Reload() error {
	reply := make(chan error, 1)
	select {
	case s.reloads <- reply:
	case <-s.stopped:
		return errors.New("the gateway is shutting down")
	}
	select {
	case err := <-reply:
		return err
	case <-s.stopped:
		return errors.New("the gateway is shutting down")
	}
}

// requestReload queues a reload without waiting for its result; a reload
// already queued covers this request too.
func (s *Server) requestReload() {
	select {
	case s.reloads <- make(chan error, 1):
	default:
	}
}

func (s *Server) reload() error {
	if s.opts.Load == nil {
		return errors.New("this gateway runs an embedded config and cannot reload")
	}
	cfg, err := s.opts.Load()
	if err != nil {
		s.deps.Telemetry.Reload(false)
		return err
	}
	old := s.current.Load().cfg
	if err := restartOnly(old, cfg); err != nil {
		s.deps.Telemetry.Reload(false)
		return err
	}
	// Compile first: it begins the generation of shared state that the
	// ACME managers of the certificates belong to.
	snap, err := Compile(cfg, s.deps)
	if err != nil {
		s.deps.Telemetry.Reload(false)
		return err
	}
	certs, managers, err := s.loadCertificates(cfg)
	if err != nil {
		s.deps.Telemetry.Reload(false)
		return err
	}
	clientAuth, err := loadClientAuth(cfg)
	if err != nil {
		s.deps.Telemetry.Reload(false)
		return err
	}
	s.mu.Lock()
	lcs := cfg.PublicListeners()
	for i, l := range s.listeners {
		l.Update(lcs[i], certs[l.Name()])
		l.SetClientAuth(clientAuth[l.Name()])
	}
	s.mu.Unlock()
	s.current.Store(snap)
	if len(old.Admin.Tokens) > 0 {
		s.warnOpenAdmin(cfg)
	}
	s.challenges.Set(managers)
	for _, m := range managers {
		m.Resync() // a certificate revoked and deleted meanwhile is ordered again
	}
	s.deps.Shared.Retire()
	s.startShared(s.bgCtx, s.bgWG)
	s.deps.Upstreams.Activate(snap.services)
	s.deps.Telemetry.Reload(true)
	if s.reloaded != nil {
		select {
		case s.reloaded <- struct{}{}:
		default:
		}
	}
	return nil
}

// pluginEndpoints are the admin endpoints the plugins serve, bound to the
// running gateway: they see the shared plugin state and the routes of the
// snapshot serving when the request arrives.
func (s *Server) pluginEndpoints() []admin.Endpoint {
	env := pipeline.AdminEnv{
		Shared: s.deps.Shared,
		HasRoute: func(name string) bool {
			return slices.ContainsFunc(s.current.Load().Routes(), func(r RouteInfo) bool { return r.Name == name })
		},
	}
	return adminEndpoints(s.deps.Plugins, &env)
}

// adminEndpoints lists the admin endpoints the plugins of reg serve. With
// env, each is bound to it and can serve; without, the list only says
// what exists (for checking admin.public_paths).
func adminEndpoints(reg *pipeline.Registry, env *pipeline.AdminEnv) []admin.Endpoint {
	var out []admin.Endpoint
	for _, r := range reg.All() {
		for _, e := range r.Admin {
			ep := admin.Endpoint{Method: e.Method, Path: e.Path, Write: e.Write}
			if env != nil {
				ep.Serve = func(r *http.Request) (any, error) { return e.Serve(r, *env) }
			}
			out = append(out, ep)
		}
	}
	return out
}

// warnOpenAdmin warns when cfg leaves the admin API open: served, and no
// tokens set. Validation allows that on loopback, or elsewhere with
// admin.insecure.
func (s *Server) warnOpenAdmin(cfg *config.Config) {
	s.mu.Lock()
	addr := s.adminAddr
	s.mu.Unlock()
	if addr == "" || len(cfg.Admin.Tokens) > 0 {
		return
	}
	if cfg.Admin.OnLoopback() {
		s.log.Warn("the admin API is open: admin.tokens is empty, so every process and user on this host "+
			"can call it, POST /reload included; set admin.tokens to require a token", "admin", addr)
		return
	}
	s.log.Warn("the admin API is open on a non-loopback address (admin.insecure): anyone who can reach it "+
		"can call it, POST /reload included; set admin.tokens to require a token", "admin", addr)
}

// restartOnly refuses changes that need a restart: the listeners and the
// server limits.
func restartOnly(old, cfg *config.Config) error {
	errs := listener.RestartOnly(old, cfg)
	if old.Admin.Listen != cfg.Admin.Listen {
		errs = append(errs, config.Path{}.Key("admin").Key("listen").Errorf("cannot change on reload; restart portico"))
	}
	if old.Server.RestartOnlyDiffers(&cfg.Server) {
		errs = append(errs, config.Path{}.Key("server").Errorf("cannot change on reload; restart portico"))
	}
	return cfg.Locate(errors.Join(errs...))
}

// loadCertificates loads the certificates of every TLS listener of cfg,
// by listener name, with the ACME managers of their tls.acme (made or
// found in the shared state, so a reload keeps them); the first failure
// is returned, located at the listener's tls key. Call it after Compile
// has begun the generation.
func (s *Server) loadCertificates(cfg *config.Config) (map[string]*listener.Certificates, []*acme.Manager, error) {
	out := make(map[string]*listener.Certificates)
	var managers []*acme.Manager
	for _, l := range cfg.PublicListeners() {
		if l.TLS == nil {
			continue
		}
		var sources []listener.NamedSource
		if l.TLS.ACME != nil {
			m, err := s.acmeManager(cfg, l.TLS.ACME)
			if err != nil {
				return nil, nil, cfg.Locate(l.Path().Key("tls").Key("acme").Errorf("%s", err.Error()))
			}
			managers = append(managers, m)
			for _, d := range m.Domains() {
				sources = append(sources, listener.NamedSource{Name: d.Name(), Source: d})
			}
		}
		c, err := listener.NewCertificates(l.TLS, sources)
		if err != nil {
			return nil, nil, cfg.Locate(l.Path().Key("tls").Errorf("%s", err.Error()))
		}
		out[l.Name] = c
	}
	return out, managers, nil
}

// reportCertificates emits the time left on every certificate of the TLS
// listeners, at scrape time.
func (s *Server) reportCertificates(e *telemetry.Emitter) {
	s.mu.Lock()
	certs := make(map[string]*listener.Certificates, len(s.certs)+len(s.listeners))
	for name, c := range s.certs {
		certs[name] = c
	}
	for _, l := range s.listeners {
		if c := l.Certificates(); c != nil {
			certs[l.Name()] = c
		}
	}
	s.mu.Unlock()
	now := time.Now()
	for name, c := range certs {
		c.Each(func(cn string, cert *tls.Certificate) {
			if cert.Leaf != nil {
				e.Emit(telemetry.TLSCertificateExpiry, cert.Leaf.NotAfter.Sub(now).Seconds(), name, cn)
			}
		})
	}
}

// loadClientAuth loads the client certificate policies (CA and CRL
// files) of every TLS listener of cfg that has tls.client_auth, by
// listener name; the first failure is returned, located at the file's
// key.
func loadClientAuth(cfg *config.Config) (map[string]*listener.ClientAuth, error) {
	out := make(map[string]*listener.ClientAuth)
	for _, l := range cfg.PublicListeners() {
		if l.TLS == nil || l.TLS.ClientAuth == nil {
			continue
		}
		a, err := listener.LoadClientAuth(l.TLS.ClientAuth, l.Path().Key("tls").Key("client_auth"))
		if err != nil {
			return nil, cfg.Locate(err)
		}
		out[l.Name] = a
	}
	return out, nil
}

// Run serves until ctx ends, then drains and returns.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.current.Load().cfg
	publics, adm, err := s.listen(cfg)
	if err != nil {
		close(s.started)
		return err
	}
	var adminSrv *http.Server
	if adm != nil {
		adminSrv = &http.Server{
			Handler: admin.New(admin.Options{
				Metrics:   s.deps.Telemetry.Handler(),
				Ready:     s.isReady,
				Reload:    s.Reload,
				Routes:    func() any { return s.current.Load().Routes() },
				Upstreams: func() any { return s.deps.Upstreams.Status() },
				Endpoints: s.pluginEndpoints(),
				Version:   s.opts.Version,
				Access:    func() *admin.Access { return s.current.Load().admin },
				Logger:    s.log,
			}),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}

	bg, stopBg := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.sinks.Run(bg) })
	wg.Go(func() { (&memory.Reclaimer{}).Run(bg) })
	s.bgCtx, s.bgWG = bg, &wg
	s.startShared(bg, &wg)
	s.deps.Upstreams.Activate(s.current.Load().services)
	if s.opts.WatchFile != "" {
		if w, set := s.newWatcher(); w != nil {
			s.reloaded = make(chan struct{}, 1)
			wg.Go(func() { s.watch(bg, w, set, s.reloaded) })
		}
	}
	wg.Go(func() { s.reloadLoop(bg) })

	serveErr := make(chan error, len(publics)+1)
	bound := make([]string, 0, len(publics))
	for _, l := range publics {
		go func() { serveErr <- l.Serve() }()
		bound = append(bound, l.Name()+"="+l.Addr())
	}
	if adminSrv != nil {
		go func() { serveErr <- adminSrv.Serve(adm) }()
	}
	close(s.started)
	s.ready.Store(true)
	s.warnOpenAdmin(cfg)
	s.log.Info("portico started", "listen", publics[0].Addr(), "listeners", strings.Join(bound, " "),
		"admin", s.adminAddr, "routes", len(cfg.Routes))

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("serve: %w", err)
		}
	}

	// Drain: not ready, stop accepting, let in-flight requests finish.
	s.ready.Store(false)
	drain := cfg.Server.DrainTimeout.D()
	s.log.Info("draining", "timeout", drain.String())
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var drained sync.WaitGroup
	for _, l := range publics {
		drained.Go(func() {
			if err := l.Shutdown(dctx); err != nil {
				s.log.Warn("drain timeout: closing remaining connections", "listener", l.Name(), "error", err)
				_ = l.Close()
			}
		})
	}
	drained.Wait()
	s.deps.Tunnels.CloseAll()
	if adminSrv != nil {
		_ = adminSrv.Shutdown(dctx)
	}
	stopBg()
	wg.Wait()
	_ = s.deps.Upstreams.Close()
	_ = s.sinks.Close()
	s.log.Info("stopped")
	return runErr
}

// listen opens every public listener and the admin listener; on a
// failure it closes what it opened.
func (s *Server) listen(cfg *config.Config) ([]*listener.Listener, net.Listener, error) {
	slots := listener.NewSlots(cfg.Server.MaxConnections)
	errorLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	var publics []*listener.Listener
	closeAll := func() {
		for _, l := range publics {
			if l != nil {
				_ = l.Close()
			}
		}
	}
	// TLS listeners open first: a redirect_to_https listener names the
	// first one's bound port.
	lcs := cfg.PublicListeners()
	publics = make([]*listener.Listener, len(lcs))
	httpsPort := 0
	for _, tlsPass := range []bool{true, false} {
		for i, lc := range lcs {
			if (lc.TLS != nil) != tlsPass {
				continue
			}
			l, err := listener.Open(listener.Options{Config: lc, Server: cfg.Server, Handler: s.forListener(i),
				Slots: slots, Certificates: s.certs[lc.Name], ClientAuth: s.clientAuth[lc.Name],
				HTTPSPort: httpsPort, ErrorLog: errorLog, Challenges: s.challenges, Logger: s.log})
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			publics[i] = l
			if tlsPass && httpsPort == 0 {
				httpsPort = l.Port()
			}
		}
	}
	var adm net.Listener
	if cfg.Admin.Listen != "off" && cfg.Admin.Listen != "" {
		var err error
		if adm, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("listen admin %s: %w", cfg.Admin.Listen, err)
		}
	}
	s.mu.Lock()
	s.listeners = publics
	s.certs = nil
	s.clientAuth = nil
	if adm != nil {
		s.adminAddr = adm.Addr().String()
	}
	s.mu.Unlock()
	return publics, adm, nil
}

// reloadLoop runs reloads one at a time; requests that arrive while one is
// queued share its result (they would read the same file).
func (s *Server) reloadLoop(ctx context.Context) {
	defer close(s.stopped)
	for {
		select {
		case <-ctx.Done():
			return
		case reply := <-s.reloads:
			err := s.reload()
			if err != nil {
				s.log.Error("config reload failed; still serving the previous config", "error", err)
			} else {
				s.log.Info("config reloaded", "routes", len(s.current.Load().cfg.Routes))
			}
			reply <- err
		}
	}
}
