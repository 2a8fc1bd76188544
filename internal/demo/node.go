package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// node is one demo HTTP server on a loopback address it keeps for its
// whole life: stop closes its listener and every connection, as a crashed
// process would, and start listens again on the same port.
//
// States: down (initially, and after stop) → start → up → stop → down;
// shutdown, from either state, ends in closed, which refuses start.
type node struct {
	name    string
	handler http.Handler
	log     *slog.Logger

	mu     sync.Mutex
	addr   string        // "127.0.0.1:0" until the first start, then the bound address
	srv    *http.Server  // nil while down
	done   chan struct{} // closed when srv.Serve has returned
	closed bool          // set by shutdown
}

// newNode returns a node, down, that serves handler on addr once started.
func newNode(name, addr string, handler http.Handler, log *slog.Logger) *node {
	return &node{name: name, addr: addr, handler: handler, log: log}
}

// start listens on the node's address and serves there. Starting a node
// that is up does nothing.
func (n *node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return errClosed
	case n.srv != nil:
		return nil
	}
	ln, err := net.Listen("tcp", n.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.addr, err)
	}
	n.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("demo service stopped", "error", err)
		}
	}()
	n.srv, n.done = srv, done
	return nil
}

// stop closes the node's listener and all its connections at once, busy
// or idle, and waits until it no longer serves. Stopping a node that is
// down does nothing.
func (n *node) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	_ = n.srv.Close() // its error is the listener's close error: the node is down either way
	<-n.done
	n.srv, n.done = nil, nil
}

// shutdown stops the node gracefully: connections still busy when ctx
// ends are closed. The node cannot be started again.
func (n *node) shutdown(ctx context.Context) error {
	n.mu.Lock()
	n.closed = true
	srv, done := n.srv, n.done
	n.srv, n.done = nil, nil
	n.mu.Unlock()
	if srv == nil {
		return nil
	}
	var err error
	if serr := srv.Shutdown(ctx); serr != nil {
		err = fmt.Errorf("shut down demo %s service: %w", n.name, errors.Join(serr, srv.Close()))
	}
	<-done
	return err
}

// up reports whether the node serves.
func (n *node) up() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

// url returns the node's base URL, "http://127.0.0.1:PORT".
func (n *node) url() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "http://" + n.addr
}
