// Package demo runs the three small services behind `portico demo` and
// holds the config that routes to them.
//
// The flow of `portico demo` is:
//
//  1. Start listens on three free loopback ports and serves the auth,
//     orders and payment services there.
//  2. Env gives their base URLs under the names the embedded config
//     (Config, a copy of examples/demo.yaml) references as ${...}.
//  3. The gateway loads that config and starts; Tour is the text printed
//     for the user to try it with curl.
//  4. Close shuts the services down and waits for them.
//
// The services hold no business logic beyond an in-memory store. Every
// response is JSON and carries "service" (which service answered) and
// "caller" (the identity headers it received: X-User-ID, X-Consumer-ID,
// X-Consumer-Name, X-Request-ID and X-Forwarded-For), so a user sees what
// the gateway forwards. They expect the paths demo.yaml sends after
// strip_prefix and path_rewrite: /login, /, /{id} and /charge.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// The environment variables the demo config reads the service URLs from.
const (
	EnvAuthURL    = "PORTICO_DEMO_AUTH_URL"
	EnvOrdersURL  = "PORTICO_DEMO_ORDERS_URL"
	EnvPaymentURL = "PORTICO_DEMO_PAYMENT_URL"
)

// closeTimeout bounds the graceful part of Close; connections still busy
// after it are closed.
const closeTimeout = 5 * time.Second

//go:embed demo.yaml
var demoYAML []byte

// Config returns the demo config: the bytes of examples/demo.yaml, embedded
// from its twin internal/demo/demo.yaml. The caller owns the returned slice.
func Config() []byte { return bytes.Clone(demoYAML) }

// Services are the running demo upstreams.
type Services struct {
	// Auth, Orders and Payment are the services' base URLs,
	// "http://127.0.0.1:PORT".
	Auth, Orders, Payment string

	servers   []*http.Server
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start starts the auth, orders and payment services on 127.0.0.1:0, each
// on its own port. They run until Close is called. A nil logger discards
// the services' own log lines.
func Start(logger *slog.Logger) (*Services, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Services{}
	specs := []struct {
		name    string
		handler http.Handler
		url     *string
	}{
		{"auth", newAuth(time.Now), &s.Auth},
		{"orders", newOrders(time.Now), &s.Orders},
		{"payment", newPayment(time.Now), &s.Payment},
	}
	for _, sp := range specs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(fmt.Errorf("listen for demo %s service: %w", sp.name, err), s.Close())
		}
		*sp.url = "http://" + ln.Addr().String()
		log := logger.With("service", sp.name)
		srv := &http.Server{
			Handler:           sp.handler,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       90 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		s.servers = append(s.servers, srv)
		s.wg.Go(func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				log.Error("demo service stopped", "error", err)
			}
		})
		log.Debug("demo service listening", "url", *sp.url)
	}
	return s, nil
}

// Close shuts the three services down gracefully, closing connections
// still busy after a few seconds, and waits until they have stopped. It is
// safe to call more than once; later calls return the first result.
func (s *Services) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		errs := make([]error, len(s.servers))
		var wg sync.WaitGroup
		for i, srv := range s.servers {
			wg.Go(func() {
				if err := srv.Shutdown(ctx); err != nil {
					errs[i] = fmt.Errorf("shut down demo service: %w", errors.Join(err, srv.Close()))
				}
			})
		}
		wg.Wait()
		s.wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Env maps the environment variable names the demo config references
// (EnvAuthURL, EnvOrdersURL, EnvPaymentURL) to the services' URLs.
func (s *Services) Env() map[string]string {
	return map[string]string{
		EnvAuthURL:    s.Auth,
		EnvOrdersURL:  s.Orders,
		EnvPaymentURL: s.Payment,
	}
}
