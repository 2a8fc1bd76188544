// Package h1 is the gateway's HTTP server: HTTP/1.1 on plain and TLS
// listeners, and HTTP/2 handed to golang.org/x/net/http2 (over TLS by
// ALPN, and as h2c with prior knowledge), a drop-in for the way the gateway
// used http.Server on its public listeners.
//
// It parses requests with the standard library (http.ReadRequest) and adds
// the checks net/http's server makes after parsing, so the accepted
// language is the same. What it saves is net/http's per-request work: no
// background read goroutine is started for a request unless it is still
// running after a short delay (so a client that goes away during a slow
// upstream call still cancels it), buffers are reused per connection, and
// the response head is written without sorting or intermediate maps.
//
// Requests are read by a strict RFC 9112 reader (request.go), not by the
// standard library's, so that no HTTP/1.1 request on any listener is
// framed leniently.
package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// useStd is the diagnostic switch for A/B comparisons: with
// PORTICO_HTTP_SERVER=std in the environment at start, For always returns
// a server that delegates to net/http. Read once.
var useStd = sync.OnceValue(func() bool { return os.Getenv("PORTICO_HTTP_SERVER") == "std" })

// Server serves HTTP/1.x, and HTTP/2 where enabled. Its fields mirror the
// http.Server fields of the same names; set them before Serve.
type Server struct {
	// Handler serves every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request's line and headers,
	// measured from the first byte (from the accept for the first
	// request). Zero means no limit.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Zero means no limit.
	IdleTimeout time.Duration
	// WriteTimeout bounds the wait for the client to take more response
	// bytes: a write that makes no progress for this long fails and the
	// connection closes. Unlike http.Server's, it is not a bound on the
	// whole response. Zero means no limit.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; larger requests
	// get 431. Zero means http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// ErrorLog receives handler panics and accept errors; nil means the
	// log package's standard logger.
	ErrorLog *log.Logger
	// TLSConfig is the TLS configuration for ServeTLS. HTTP/2 is offered
	// by ALPN ("h2", then "http/1.1") unless it sets NextProtos; a
	// connection that negotiates "acme-tls/1" (ACME TLS-ALPN-01
	// validation) is closed after its handshake.
	TLSConfig *tls.Config
	// H2C serves cleartext HTTP/2 to clients that start a connection with
	// the HTTP/2 preface (prior knowledge); HTTP/1.1 keeps working.
	H2C bool

	std *http.Server // when set, every call is delegated to it
	h2  *h2          // made by Serve

	inShutdown atomic.Bool
	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	date       atomic.Pointer[dateLine]
}

// For returns the server for the public listener configured as std: an
// h1 Server with std's handler, header and idle timeouts, header limit and
// error log, or, when std serves TLS or h2c or the PORTICO_HTTP_SERVER=std
// diagnostic is set, a Server that delegates every call to std.
func For(std *http.Server) *Server {
	if useStd() {
		return &Server{std: std}
	}
	return &Server{
		Handler:           std.Handler,
		ReadHeaderTimeout: std.ReadHeaderTimeout,
		IdleTimeout:       std.IdleTimeout,
		MaxHeaderBytes:    std.MaxHeaderBytes,
		ErrorLog:          std.ErrorLog,
		TLSConfig:         std.TLSConfig,
		H2C:               std.Protocols != nil && std.Protocols.UnencryptedHTTP2(),
	}
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown or Close, then returns http.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	if s.std != nil {
		return s.std.Serve(l)
	}
	if !s.trackListener(l, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(l, false)
	s.mu.Lock()
	if s.h2 == nil && (s.TLSConfig != nil || s.H2C) {
		s.h2 = newH2(s)
	}
	s.mu.Unlock()
	var delay time.Duration
	for {
		rw, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off and retry,
			// as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logf("h1: accept error: %s; retrying in %s", err.Error(), delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := newConn(s, rw)
		if !s.trackConn(c, true) {
			_ = rw.Close()
			continue
		}
		go c.serve()
	}
}

// ServeTLS serves TLS connections accepted on l with TLSConfig (the file
// names are for the standard server only and must be empty otherwise).
func (s *Server) ServeTLS(l net.Listener, certFile, keyFile string) error {
	if s.std != nil {
		return s.std.ServeTLS(l, certFile, keyFile)
	}
	if s.TLSConfig == nil || certFile != "" || keyFile != "" {
		return errors.New("h1: ServeTLS needs TLSConfig and no certificate files")
	}
	// The config is used as given (not cloned), so what its owner changes
	// later (session ticket keys) reaches new handshakes.
	cfg := s.TLSConfig
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{http2.NextProtoTLS, "http/1.1"}
	}
	return s.Serve(tls.NewListener(l, cfg))
}

// shutdownPollMax bounds the interval at which Shutdown looks for idle
// connections.
const shutdownPollMax = 500 * time.Millisecond

// Shutdown stops accepting, closes idle connections, lets active ones
// finish their current request (answered with Connection: close) and
// returns when all are closed, or ctx's error when it ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.std != nil {
		return s.std.Shutdown(ctx)
	}
	s.inShutdown.Store(true)
	s.mu.Lock()
	err := s.closeListenersLocked()
	h2 := s.h2
	s.mu.Unlock()
	if h2 != nil {
		h2.shutdown()
	}
	interval := time.Millisecond
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		if s.closeIdleConns() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			interval = min(2*interval, shutdownPollMax)
			t.Reset(interval)
		}
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	if s.std != nil {
		return s.std.Close()
	}
	s.inShutdown.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeListenersLocked()
	for c := range s.conns {
		_ = c.rwc.Close()
		delete(s.conns, c)
	}
	return err
}

func (s *Server) closeListenersLocked() error {
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newConnGrace is how long Shutdown leaves a new connection that has sent
// nothing yet (as net/http does).
const newConnGrace = 5 * time.Second

// closeIdleConns closes idle connections and reports whether none is left
// active.
func (s *Server) closeIdleConns() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	quiescent := true
	now := time.Now().Unix()
	for c := range s.conns {
		st, since := c.getState()
		if st == stateNew && since < now-int64(newConnGrace/time.Second) {
			st = stateIdle
		}
		if st != stateIdle {
			quiescent = false
			continue
		}
		_ = c.rwc.Close()
		delete(s.conns, c)
	}
	return quiescent
}

func (s *Server) trackListener(l net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.listeners == nil {
			s.listeners = make(map[net.Listener]struct{})
		}
		s.listeners[l] = struct{}{}
		return true
	}
	delete(s.listeners, l)
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		if s.conns == nil {
			s.conns = make(map[*conn]struct{})
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	return true
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

func (s *Server) maxHeaderBytes() int64 {
	if s.MaxHeaderBytes > 0 {
		return int64(s.MaxHeaderBytes)
	}
	return http.DefaultMaxHeaderBytes
}

// dateLine is a formatted Date header value and the second it is for.
type dateLine struct {
	sec int64
	b   []byte
}

// dateValue returns the Date header value for now, formatted once a
// second and shared by all connections.
func (s *Server) dateValue() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := s.date.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateLine{sec: sec, b: now.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)}
	s.date.Store(d)
	return d.b
}
