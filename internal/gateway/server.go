// Package gateway compiles a config into an immutable Snapshot and serves
// it.
//
// Life of the server: New compiles the first snapshot; Run opens the public
// and admin listeners, marks the gateway ready and waits. A reload (SIGHUP,
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

	"github.com/portico-gateway/portico/internal/admin"
	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/listener/h1"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins"
	"github.com/portico-gateway/portico/internal/plugins/cache"
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
	cert    atomic.Pointer[tls.Certificate]
	ready   atomic.Bool

	opts    Options
	log     *slog.Logger
	deps    Deps
	sinks   *telemetry.Sinks
	reloads chan chan error
	stopped chan struct{} // closed when the reload loop has ended
	// bgCtx and bgWG own the background goroutines (reloads, log flushing,
	// shared plugin state); set by Run before any reload can happen.
	bgCtx context.Context
	bgWG  *sync.WaitGroup

	mu        sync.Mutex
	publicLn  net.Listener
	adminLn   net.Listener
	boundAddr string
	adminAddr string
	started   chan struct{}
}

// New compiles cfg and returns a server ready to Run.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		sinks:   opts.Sinks,
		reloads: make(chan chan error, 1),
		started: make(chan struct{}),
		stopped: make(chan struct{}),
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
	snap, err := Compile(cfg, s.deps)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		cert, err := loadCert(cfg.TLS)
		if err != nil {
			return nil, err
		}
		s.cert.Store(cert)
	}
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

// ServeHTTP serves r with the current snapshot, loaded exactly once.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.current.Load().ServeHTTP(w, r)
}

// Addr returns the bound public address once Run has opened it.
func (s *Server) Addr() string {
	<-s.started
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boundAddr
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
	var cert *tls.Certificate
	if cfg.TLS != nil {
		if cert, err = loadCert(cfg.TLS); err != nil {
			s.deps.Telemetry.Reload(false)
			return err
		}
	}
	snap, err := Compile(cfg, s.deps)
	if err != nil {
		s.deps.Telemetry.Reload(false)
		return err
	}
	if cert != nil {
		s.cert.Store(cert)
	}
	s.current.Store(snap)
	s.deps.Shared.Retire()
	s.startShared(s.bgCtx, s.bgWG)
	s.deps.Upstreams.Activate(snap.services)
	s.deps.Telemetry.Reload(true)
	return nil
}

// purge removes stored responses for the admin API's POST /cache/purge.
func (s *Server) purge(req admin.PurgeRequest) (int, error) {
	if !slices.ContainsFunc(s.current.Load().Routes(), func(r RouteInfo) bool { return r.Name == req.Route }) {
		return 0, &admin.UnknownRouteError{Route: req.Route}
	}
	path, query, prefix := req.URL, "", false
	if req.Prefix != "" {
		path, prefix = req.Prefix, true
	} else if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	return cache.Purge(s.deps.Shared, req.Route, path, query, prefix)
}

// restartOnly refuses changes that need a restart: the listeners.
func restartOnly(old, cfg *config.Config) error {
	var errs []error
	if old.Listen != cfg.Listen {
		errs = append(errs, config.Path{}.Key("listen").Errorf("cannot change on reload; restart portico"))
	}
	if old.Admin.Listen != cfg.Admin.Listen {
		errs = append(errs, config.Path{}.Key("admin").Key("listen").Errorf("cannot change on reload; restart portico"))
	}
	if (old.TLS == nil) != (cfg.TLS == nil) || old.H2C != cfg.H2C {
		errs = append(errs, config.Path{}.Key("tls").Errorf("turning TLS or h2c on or off needs a restart"))
	} else if old.TLS != nil && old.TLS.MinVersion != cfg.TLS.MinVersion {
		errs = append(errs, config.Path{}.Key("tls").Key("min_version").Errorf("cannot change on reload; restart portico"))
	}
	if old.Server != cfg.Server {
		errs = append(errs, config.Path{}.Key("server").Errorf("cannot change on reload; restart portico"))
	}
	return cfg.Locate(errors.Join(errs...))
}

func loadCert(t *config.TLS) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", t.CertFile, err)
	}
	return &cert, nil
}

// Run serves until ctx ends, then drains and returns. listen and admin, when
// non-empty, override the config's addresses (the demo uses this).
func (s *Server) Run(ctx context.Context) error {
	cfg := s.current.Load().cfg
	pub, adm, err := s.listen(cfg)
	if err != nil {
		close(s.started)
		return err
	}
	public := h1.For(s.newPublicServer(cfg))
	var adminSrv *http.Server
	if adm != nil {
		adminSrv = &http.Server{
			Handler: admin.New(admin.Options{
				Metrics:   s.deps.Telemetry.Handler(),
				Ready:     s.isReady,
				Reload:    s.Reload,
				Routes:    func() any { return s.current.Load().Routes() },
				Upstreams: func() any { return s.deps.Upstreams.Status() },
				Purge:     s.purge,
				Version:   s.opts.Version,
			}),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}

	bg, stopBg := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.sinks.Run(bg) })
	s.bgCtx, s.bgWG = bg, &wg
	s.startShared(bg, &wg)
	s.deps.Upstreams.Activate(s.current.Load().services)
	wg.Go(func() { s.reloadLoop(bg) })
	if s.opts.WatchFile != "" {
		if w := s.newWatcher(s.opts.WatchFile); w != nil {
			wg.Go(func() { s.watch(bg, w, s.opts.WatchFile) })
		}
	}

	serveErr := make(chan error, 2)
	go func() {
		var err error
		if cfg.TLS != nil {
			err = public.ServeTLS(pub, "", "")
		} else {
			err = public.Serve(pub)
		}
		serveErr <- err
	}()
	if adminSrv != nil {
		go func() { serveErr <- adminSrv.Serve(adm) }()
	}
	close(s.started)
	s.ready.Store(true)
	s.log.Info("portico started", "listen", pub.Addr().String(), "admin", s.adminAddr, "routes", len(cfg.Routes))

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
	if err := public.Shutdown(dctx); err != nil {
		s.log.Warn("drain timeout: closing remaining connections", "error", err)
		_ = public.Close()
	}
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

func (s *Server) newPublicServer(cfg *config.Config) *http.Server {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if cfg.TLS != nil {
		min := uint16(tls.VersionTLS12)
		if cfg.TLS.MinVersion == "1.3" {
			min = tls.VersionTLS13
		}
		srv.TLSConfig = &tls.Config{
			MinVersion: min,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return s.cert.Load(), nil
			},
		}
	}
	if cfg.H2C && cfg.TLS == nil {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

func (s *Server) listen(cfg *config.Config) (net.Listener, net.Listener, error) {
	pub, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	pub = limitListener(pub, cfg.Server.MaxConnections)
	var adm net.Listener
	if cfg.Admin.Listen != "off" && cfg.Admin.Listen != "" {
		adm, err = net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			_ = pub.Close()
			return nil, nil, fmt.Errorf("listen admin %s: %w", cfg.Admin.Listen, err)
		}
	}
	s.mu.Lock()
	s.publicLn, s.adminLn = pub, adm
	s.boundAddr = pub.Addr().String()
	if adm != nil {
		s.adminAddr = adm.Addr().String()
	}
	s.mu.Unlock()
	return pub, adm, nil
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
