// Package listener opens and serves the gateway's public listeners. Each
// listener has its own address and protocol stack: the lean HTTP/1.1
// server (package h1) on plain TCP; the standard library's server for TLS
// (HTTP/1.1 and HTTP/2 by ALPN) and for cleartext HTTP/2 (h2c). Every
// listener serves the same handler (the gateway's current snapshot) and
// shares one bound on open connections (Slots).
//
// A listener's address and protocols are fixed for its life; its
// certificate can be replaced while it serves (SetCertificate), which a
// config reload does.
package listener

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/listener/h1"
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
	// Certificate is the TLS certificate already loaded from Config.TLS;
	// nil loads it.
	Certificate *tls.Certificate
	// ErrorLog receives the server's own errors (nil: the log package's).
	ErrorLog *log.Logger
}

// Listener is one open public listener.
type Listener struct {
	cfg  config.Listener
	ln   net.Listener
	srv  *h1.Server
	cert atomic.Pointer[tls.Certificate]
}

// Open loads the listener's certificate (if it serves TLS) and binds its
// address; Serve then serves it.
func Open(o Options) (*Listener, error) {
	l := &Listener{cfg: o.Config}
	if t := o.Config.TLS; t != nil {
		cert := o.Certificate
		if cert == nil {
			var err error
			if cert, err = LoadCertificate(t); err != nil {
				return nil, err
			}
		}
		l.cert.Store(cert)
	}
	ln, err := net.Listen("tcp", o.Config.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s (listener %s): %w", o.Config.Listen, o.Config.Name, err)
	}
	l.ln = o.Slots.limit(ln)
	l.srv = h1.For(l.stdServer(o))
	l.srv.WriteTimeout = o.Server.WriteTimeout.D()
	return l, nil
}

// stdServer is the standard library's server for the listener; h1.For
// keeps it for TLS and h2c and takes its settings otherwise.
func (l *Listener) stdServer(o Options) *http.Server {
	srv := &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: o.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       o.Server.IdleTimeout.D(),
		MaxHeaderBytes:    int(o.Server.MaxHeaderBytes),
		ErrorLog:          o.ErrorLog,
		// "OPTIONS *" reaches the gateway, which refuses the asterisk-form
		// as the lean server's listeners do, instead of net/http answering
		// 200 on its own.
		DisableGeneralOptionsHandler: true,
	}
	if t := o.Config.TLS; t != nil {
		min := uint16(tls.VersionTLS12)
		if t.MinVersion == "1.3" {
			min = tls.VersionTLS13
		}
		srv.TLSConfig = &tls.Config{
			MinVersion: min,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return l.cert.Load(), nil
			},
		}
	}
	if o.Config.H2C && o.Config.TLS == nil {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// Name is the listener's name.
func (l *Listener) Name() string { return l.cfg.Name }

// Addr is the bound address ("127.0.0.1:8080").
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Serve serves until Shutdown or Close, then returns http.ErrServerClosed.
func (l *Listener) Serve() error {
	if l.cfg.TLS != nil {
		return l.srv.ServeTLS(l.ln, "", "")
	}
	return l.srv.Serve(l.ln)
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// and closes idle connections.
func (l *Listener) Shutdown(ctx context.Context) error { return l.srv.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (l *Listener) Close() error { return l.srv.Close() }

// SetCertificate replaces the certificate for new TLS handshakes;
// connections already open keep theirs.
func (l *Listener) SetCertificate(c *tls.Certificate) { l.cert.Store(c) }

// LoadCertificate reads t's certificate chain and key.
func LoadCertificate(t *config.TLS) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s: %w", t.CertFile, err)
	}
	return &cert, nil
}

// RestartOnly returns the errors for changes between two configs that a
// reload cannot apply: a listener added, removed or renamed, or one whose
// address or protocols changed. Each error is located at the new
// config's keys and says that a restart is needed.
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
		}
	}
	return errs
}
