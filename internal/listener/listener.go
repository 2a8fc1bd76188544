// Package listener opens and serves the gateway's public listeners. Each
// listener has its own address and protocol stack, served by package h1:
// HTTP/1.1 on plain TCP and over TLS, HTTP/2 by ALPN on TLS, and
// cleartext HTTP/2 (h2c) where enabled. Every listener serves the
// gateway's current snapshot, and they share one bound on open
// connections (Slots).
//
// A TLS listener picks its certificate per connection by the name the
// client asks for (SNI, certs.go), refuses with 421 a request whose Host
// would have picked another certificate (domain fronting), adds
// Strict-Transport-Security to every answer, and rotates its session
// ticket keys. With tls.client_auth it asks clients for a certificate and
// verifies it (clientauth.go). A plain listener can redirect everything
// to HTTPS.
//
// A listener's address and protocols are fixed for its life; its
// certificates and HSTS header (Update) and its client certificate policy
// (SetClientAuth) can be replaced while it serves, which a config reload
// does.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/listener/h1"
	"github.com/portico-gateway/portico/internal/problem"
)

// Options configure one listener.
type Options struct {
	// Config is the listener's address and protocols.
	Config config.Listener
	// Server holds the timeouts and limits every listener applies.
	Server config.Server
	// Handler serves every request.
	Handler http.Handler
	// Slots bounds open connections across listeners (nil: unbounded).
	Slots *Slots
	// Certificates are the TLS certificates already loaded from
	// Config.TLS; nil loads them.
	Certificates *Certificates
	// ClientAuth is the client certificate policy already loaded from
	// Config.TLS.ClientAuth; nil loads it when Config.TLS.ClientAuth is
	// set.
	ClientAuth *ClientAuth
	// HTTPSPort is the port a redirect_to_https listener redirects to
	// when Config.HTTPSPort is not set (the first TLS listener's).
	HTTPSPort int
	// ErrorLog receives the server's own errors (nil: the log package's).
	ErrorLog *log.Logger
	// Challenges answers ACME challenges: HTTP-01 on a plain listener,
	// TLS-ALPN-01 on a TLS listener (nil: none are answered).
	Challenges Challenger
	// Logger receives what the listener's background work reports, such
	// as OCSP staple failures (nil: discarded).
	Logger *slog.Logger
}

// Challenger answers the ACME challenges of the gateway's certificates.
type Challenger interface {
	// ServeHTTP01 answers an HTTP-01 challenge request and reports
	// whether it did (false: not a challenge it knows).
	ServeHTTP01(w http.ResponseWriter, r *http.Request) bool
	// TLSALPN01 returns the TLS-ALPN-01 challenge certificate for name.
	TLSALPN01(name string) (*tls.Certificate, error)
}

// acmeTLSProto is the ALPN protocol of ACME TLS-ALPN-01 validation (RFC
// 8737); challengePath starts the HTTP-01 challenge paths (RFC 8555).
const (
	acmeTLSProto  = "acme-tls/1"
	challengePath = "/.well-known/acme-challenge/"
)

// ocspTimeout bounds a fetch of an OCSP response.
const ocspTimeout = 15 * time.Second

// Listener is one open public listener.
type Listener struct {
	cfg     config.Listener
	ln      net.Listener
	srv     *h1.Server
	certs   atomic.Pointer[Certificates]
	hsts    atomic.Pointer[string] // the header value; "" for none
	tickets *ticketKeys            // nil for plain listeners
	next    http.Handler
	port    string // the HTTPS port a redirect names ("" for 443)
	// challenges answers ACME challenges (nil: none).
	challenges Challenger
	log        *slog.Logger
	// restaple wakes the staple loop when the certificates change.
	restaple chan struct{}

	// clientAuth is the client certificate policy; nil when the listener
	// asks for no certificates.
	clientAuth atomic.Pointer[ClientAuth]
}

// Open loads the listener's certificates (if it serves TLS) and binds its
// address; Serve then serves it.
func Open(o Options) (*Listener, error) {
	l := &Listener{cfg: o.Config, next: o.Handler, challenges: o.Challenges, log: o.Logger,
		restaple: make(chan struct{}, 1)}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if t := o.Config.TLS; t != nil {
		certs := o.Certificates
		if certs == nil {
			var err error
			if certs, err = LoadCertificates(t); err != nil {
				return nil, err
			}
		}
		l.certs.Store(certs)
		l.setHSTS(t.HSTS)
		l.tickets = newTicketKeys()
		ca := o.ClientAuth
		if ca == nil && t.ClientAuth != nil {
			var err error
			if ca, err = LoadClientAuth(t.ClientAuth, o.Config.Path().Key("tls").Key("client_auth")); err != nil {
				return nil, err
			}
		}
		l.clientAuth.Store(ca)
	}
	if o.Config.RedirectToHTTPS {
		port := o.Config.HTTPSPort
		if port == 0 {
			port = o.HTTPSPort
		}
		if port != 443 {
			l.port = ":" + strconv.Itoa(port)
		}
	}
	ln, err := net.Listen("tcp", o.Config.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s (listener %s): %w", o.Config.Listen, o.Config.Name, err)
	}
	l.ln = o.Slots.limit(NewSlots(o.Config.MaxConnections).limit(ln))
	l.srv = h1.For(l.stdServer(o))
	l.srv.WriteTimeout = o.Server.WriteTimeout.D()
	return l, nil
}

// stdServer is the standard library's server for the listener; h1.For
// takes its settings (and keeps it for PORTICO_HTTP_SERVER=std).
func (l *Listener) stdServer(o Options) *http.Server {
	srv := &http.Server{
		Handler:           l,
		ReadHeaderTimeout: o.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       o.Server.IdleTimeout.D(),
		MaxHeaderBytes:    int(o.Server.MaxHeaderBytes),
		ErrorLog:          o.ErrorLog,
		// OPTIONS * goes to the router, as on every listener.
		DisableGeneralOptionsHandler: true,
	}
	if t := o.Config.TLS; t != nil {
		srv.TLSConfig = l.tlsConfig(t)
	}
	if o.Config.H2C && o.Config.TLS == nil {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// tlsConfig is the listener's TLS configuration: TLS 1.2 with AEAD cipher
// suites only (ECDHE key exchange, AES-GCM or ChaCha20-Poly1305; no CBC,
// RSA key exchange or 3DES), or TLS 1.3 as Go negotiates it; the
// certificate chosen by SNI; session ticket keys rotated hourly.
func (l *Listener) tlsConfig(t *config.TLS) *tls.Config {
	min := uint16(tls.VersionTLS12)
	if t.MinVersion == "1.3" {
		min = tls.VersionTLS13
	}
	cfg := &tls.Config{
		MinVersion: min,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// h2 and HTTP/1.1 for clients; acme-tls/1 only for ACME
		// validation, which only an ACME server offers, alone.
		NextProtos:     []string{"h2", "http/1.1", acmeTLSProto},
		GetCertificate: l.getCertificate,
	}
	l.tickets.install(cfg)
	l.installClientAuth(cfg)
	return cfg
}

// isACMEValidation reports whether hello is an ACME server's TLS-ALPN-01
// validation: it offers acme-tls/1 alone (RFC 8737 §3).
func isACMEValidation(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSProto
}

// getCertificate is the certificate for a handshake: a TLS-ALPN-01
// challenge certificate when an ACME server validates, else the one the
// name selects.
func (l *Listener) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if isACMEValidation(hello) {
		if l.challenges == nil {
			return nil, errors.New("no acme challenge is pending")
		}
		return l.challenges.TLSALPN01(hello.ServerName)
	}
	if cert := l.certs.Load().Select(hello.ServerName); cert != nil {
		return cert, nil
	}
	return nil, errors.New("no certificate for this name yet")
}

// ServeHTTP applies the listener's own rules, then the gateway's handler:
// the HTTPS redirect of a redirect_to_https listener; on TLS, the domain
// fronting check and the HSTS header.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil && l.challenges != nil && strings.HasPrefix(r.URL.Path, challengePath) && l.challenges.ServeHTTP01(w, r) {
		return
	}
	if l.cfg.RedirectToHTTPS && !strings.HasPrefix(r.URL.Path, challengePath) {
		l.redirect(w, r)
		return
	}
	if r.TLS != nil && l.certs.Load() != nil {
		if sni := r.TLS.ServerName; sni != "" {
			certs := l.certs.Load()
			if certs.selectSource(sni) != certs.selectSource(hostOnly(r.Host)) {
				problem.Write(w, r, http.StatusMisdirectedRequest, "",
					"the request's host is served with another certificate than the name the connection was opened for")
				return
			}
		}
		if v := *l.hsts.Load(); v != "" {
			w.Header()["Strict-Transport-Security"] = []string{v}
		}
		if !l.clientAuth.Load().Accepts(r.TLS) {
			w.Header()["Connection"] = []string{"close"}
			problem.Write(w, r, http.StatusMisdirectedRequest, "",
				"the connection's client certificate is no longer accepted; open a new connection")
			return
		}
	}
	l.next.ServeHTTP(w, r)
}

// redirect answers 308 to the same host, path and query over HTTPS.
func (l *Listener) redirect(w http.ResponseWriter, r *http.Request) {
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") { // absolute-form: keep its path and query only
		target = r.URL.RequestURI()
	}
	w.Header()["Location"] = []string{"https://" + hostOnly(r.Host) + l.port + target}
	w.Header()["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusPermanentRedirect)
}

// hostOnly strips the port from a Host value.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// setHSTS sets the Strict-Transport-Security value from h.
func (l *Listener) setHSTS(h *config.HSTS) {
	v := ""
	if h != nil && h.MaxAge > 0 {
		v = "max-age=" + strconv.FormatInt(int64(h.MaxAge.D()/time.Second), 10)
		if h.IncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.Preload {
			v += "; preload"
		}
	}
	l.hsts.Store(&v)
}

// Name is the listener's name.
func (l *Listener) Name() string { return l.cfg.Name }

// Addr is the bound address ("127.0.0.1:8080").
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Port is the bound port.
func (l *Listener) Port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// TLS reports whether the listener serves HTTPS.
func (l *Listener) TLS() bool { return l.cfg.TLS != nil }

// Serve serves until Shutdown or Close, then returns http.ErrServerClosed.
// A TLS listener rotates its session ticket keys meanwhile.
func (l *Listener) Serve() error {
	if l.cfg.TLS == nil {
		return l.srv.Serve(l.ln)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.tickets.rotate(ctx)
	go l.staple(ctx)
	return l.srv.ServeTLS(l.ln, "", "")
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// and closes idle connections.
func (l *Listener) Shutdown(ctx context.Context) error { return l.srv.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (l *Listener) Close() error { return l.srv.Close() }

// Update applies what a reload may change: the certificates and the HSTS
// header. New handshakes get the new certificates; connections already
// open keep theirs.
func (l *Listener) Update(cfg config.Listener, certs *Certificates) {
	if certs != nil {
		certs.adopt(l.certs.Load())
		l.certs.Store(certs)
		select {
		case l.restaple <- struct{}{}:
		default:
		}
	}
	if cfg.TLS != nil {
		l.setHSTS(cfg.TLS.HSTS)
	}
}

// RestartOnly returns the errors for changes between two configs that a
// reload cannot apply: a listener added, removed or renamed, or one whose
// address, protocols, redirect or connection bound changed. Each error is
// located at the new config's keys and says that a restart is needed.
func RestartOnly(old, cfg *config.Config) []error {
	was, now := old.PublicListeners(), cfg.PublicListeners()
	var errs []error
	if len(was) != len(now) {
		p := config.Path{}.Key("listeners")
		if len(cfg.Listeners) == 0 {
			p = config.Path{}.Key("listen")
		}
		return append(errs, p.Errorf("adding or removing a listener needs a restart of portico (%d listeners now, %d in the new config)", len(was), len(now)))
	}
	for i := range now {
		a, b := &was[i], &now[i]
		p := b.Path()
		switch {
		case a.Name != b.Name:
			errs = append(errs, p.Key("name").Errorf("renaming a listener needs a restart of portico (was %q)", a.Name))
		case a.Listen != b.Listen:
			errs = append(errs, p.Key("listen").Errorf("cannot change on reload; restart portico"))
		case (a.TLS == nil) != (b.TLS == nil) || a.H2C != b.H2C:
			errs = append(errs, p.Key("tls").Errorf("turning TLS or h2c on or off needs a restart"))
		case a.TLS != nil && a.TLS.MinVersion != b.TLS.MinVersion:
			errs = append(errs, p.Key("tls").Key("min_version").Errorf("cannot change on reload; restart portico"))
		case a.RedirectToHTTPS != b.RedirectToHTTPS || a.HTTPSPort != b.HTTPSPort:
			errs = append(errs, p.Key("redirect_to_https").Errorf("cannot change on reload; restart portico"))
		case a.MaxConnections != b.MaxConnections:
			errs = append(errs, p.Key("max_connections").Errorf("cannot change on reload; restart portico"))
		}
	}
	return errs
}

// Certificates returns the certificates the listener serves (nil for a
// plain listener).
func (l *Listener) Certificates() *Certificates { return l.certs.Load() }

// staple keeps the OCSP staples of the listener's certificate files
// fresh until ctx ends (the ACME manager staples its own certificates).
func (l *Listener) staple(ctx context.Context) {
	hc := &http.Client{Timeout: ocspTimeout}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-l.restaple:
			timer.Stop()
		}
		next := l.certs.Load().refreshStaples(ctx, hc, l.log)
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}
