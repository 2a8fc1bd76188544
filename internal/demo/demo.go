// Package demo runs the small services behind `portico demo` and holds the
// config that routes to them.
//
// The flow of `portico demo` is:
//
//  1. Start listens on free loopback ports and serves the auth service,
//     two replicas of the orders service (orders-1 and orders-2), the
//     payment service and the products service there. The two orders replicas share one in-memory
//     store, as replicas of one service share one database.
//  2. Env gives their base URLs under the names the embedded config
//     (Config, a copy of examples/demo.yaml) references as ${...}.
//  3. ListenControl optionally opens the demo's control listener, which
//     stops and starts an orders replica on request, so a user can watch
//     the gateway route around a replica that is down.
//  4. The gateway loads that config and starts; Tour is the text printed
//     for the user to try it with curl.
//  5. Close shuts the services and the control listener down and waits
//     for them.
//
// The services hold no business logic beyond an in-memory store. Every
// response is JSON and carries "service" (which service answered) and
// "caller" (the identity headers it received: X-User-ID, X-Consumer-ID,
// X-Consumer-Name, X-Request-ID and X-Forwarded-For), so a user sees what
// the gateway forwards; the orders replicas add "replica" (which replica
// answered). They expect the paths demo.yaml sends after strip_prefix and
// path_rewrite: /login, /, /{id}, /charge and /products, and every service
// answers GET /health. The products service's lists say the gateway may
// cache them, and carry "generated_at" and "served" (how many lists it has
// built), so a user sees when an answer came from the gateway's cache.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// The environment variables the demo config reads the service URLs from.
// EnvOrdersURL holds the URL of the first orders replica (orders-1) and
// EnvOrders2URL that of the second (orders-2).
const (
	EnvAuthURL     = "PORTICO_DEMO_AUTH_URL"
	EnvOrdersURL   = "PORTICO_DEMO_ORDERS_URL"
	EnvOrders2URL  = "PORTICO_DEMO_ORDERS_2_URL"
	EnvPaymentURL  = "PORTICO_DEMO_PAYMENT_URL"
	EnvProductsURL = "PORTICO_DEMO_PRODUCTS_URL"
)

// The names of the orders replicas, as the control listener and the
// responses' "replica" field spell them.
const (
	replicaOrders1 = "orders-1"
	replicaOrders2 = "orders-2"
)

// closeTimeout bounds the graceful part of Close; connections still busy
// after it are closed.
const closeTimeout = 5 * time.Second

//go:embed demo.yaml
var demoYAML []byte

// Config returns the demo config: the bytes of examples/demo.yaml, embedded
// from its twin internal/demo/demo.yaml. The caller owns the returned slice.
func Config() []byte { return bytes.Clone(demoYAML) }

// errClosed is returned by calls made after Close.
var errClosed = errors.New("the demo services are closed")

// Services are the running demo upstreams.
type Services struct {
	// Auth, Orders, Orders2, Payment and Products are the services' base
	// URLs, "http://127.0.0.1:PORT". Orders is the orders-1 replica and
	// Orders2 the orders-2 replica; both serve the same orders.
	Auth, Orders, Orders2, Payment, Products string

	logger   *slog.Logger
	replicas []*node // orders-1, orders-2: the nodes the control may stop

	mu      sync.Mutex
	nodes   []*node // every server: the services, then the control listener
	control *node   // nil until ListenControl
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts the auth service, the orders-1 and orders-2 replicas, the
// payment service and the products service on 127.0.0.1:0, each on its own port. They run until
// Close is called. A nil logger discards the services' own log lines.
func Start(logger *slog.Logger) (*Services, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Services{logger: logger}
	store := newOrderStore()
	specs := []struct {
		name    string
		handler http.Handler
		url     *string
		replica bool
	}{
		{"auth", newAuth(time.Now), &s.Auth, false},
		{replicaOrders1, newOrders(replicaOrders1, store, time.Now), &s.Orders, true},
		{replicaOrders2, newOrders(replicaOrders2, store, time.Now), &s.Orders2, true},
		{"payment", newPayment(time.Now), &s.Payment, false},
		{"products", newProducts(time.Now), &s.Products, false},
	}
	for _, sp := range specs {
		n := newNode(sp.name, "127.0.0.1:0", sp.handler, logger.With("service", sp.name))
		if err := n.start(); err != nil {
			return nil, errors.Join(fmt.Errorf("start demo %s service: %w", sp.name, err), s.Close())
		}
		s.nodes = append(s.nodes, n)
		if sp.replica {
			s.replicas = append(s.replicas, n)
		}
		*sp.url = n.url()
		n.log.Debug("demo service listening", "url", *sp.url)
	}
	return s, nil
}

// Close shuts the services and the control listener down gracefully,
// closing connections still busy after a few seconds, and waits until
// they have stopped. It is safe to call more than once; later calls return
// the first result.
func (s *Services) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		nodes := s.nodes
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Go(func() { errs[i] = n.shutdown(ctx) })
		}
		wg.Wait()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Env maps the environment variable names the demo config references
// (EnvAuthURL, EnvOrdersURL, EnvOrders2URL, EnvPaymentURL,
// EnvProductsURL) to the services' URLs.
func (s *Services) Env() map[string]string {
	return map[string]string{
		EnvAuthURL:     s.Auth,
		EnvOrdersURL:   s.Orders,
		EnvOrders2URL:  s.Orders2,
		EnvPaymentURL:  s.Payment,
		EnvProductsURL: s.Products,
	}
}

// replica returns the orders replica called name, or nil.
func (s *Services) replica(name string) *node {
	for _, n := range s.replicas {
		if n.name == name {
			return n
		}
	}
	return nil
}
