package demo

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// DefaultControlAddr is where `portico demo` opens its control listener
// unless told otherwise.
const DefaultControlAddr = "127.0.0.1:9902"

// The control listener is the demo's own switch for its orders replicas,
// so the tour can show a replica dying while clients see no error. It
// serves only:
//
//	GET  /replicas              every replica: {"replicas":[{"name","url","state"}]}
//	POST /replicas/NAME/stop    close NAME's listener and connections (a real outage)
//	POST /replicas/NAME/start   listen again on NAME's port, same store
//
// NAME is orders-1 or orders-2; state is "up" or "down". An unknown path
// or replica gets 404, a wrong method 405 with Allow; bodies are JSON.

// Replica states as the control listener reports them.
const (
	stateUp   = "up"
	stateDown = "down"
)

// replicaState describes one orders replica.
type replicaState struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	State string `json:"state"`
}

// replicaList answers GET /replicas.
type replicaList struct {
	Replicas []replicaState `json:"replicas"`
}

// controlError is the body of every control error.
type controlError struct {
	Error   string `json:"error"`
	Details string `json:"details,omitempty"`
}

// ListenControl opens the control listener on addr, which must be a
// loopback address such as DefaultControlAddr or "127.0.0.1:0", and
// returns the address it is bound to. Close closes it with the services.
func (s *Services) ListenControl(addr string) (string, error) {
	if err := checkLoopback(addr); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return "", errClosed
	case s.control != nil:
		return "", errors.New("the demo control listener is already open")
	}
	n := newNode("control", addr, s.controlHandler(), s.logger.With("service", "demo-control"))
	if err := n.start(); err != nil {
		return "", fmt.Errorf("start demo control: %w", err)
	}
	s.control = n
	s.nodes = append(s.nodes, n)
	return strings.TrimPrefix(n.url(), "http://"), nil
}

// checkLoopback refuses an address whose host is not a loopback address:
// the control stops services and must not be reachable from elsewhere.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("control address %q: use host:port, like %s", addr, DefaultControlAddr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("control address %q: must be on loopback (127.0.0.1, ::1 or localhost), like %s", addr, DefaultControlAddr)
	}
	return nil
}

// controlHandler returns the control listener's handler.
func (s *Services) controlHandler() http.Handler {
	out := service{name: "demo-control"} // for its JSON writer only
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/replicas" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				methodNotAllowed(w, out, "GET, HEAD")
				return
			}
			list := replicaList{Replicas: make([]replicaState, 0, len(s.replicas))}
			for _, n := range s.replicas {
				list.Replicas = append(list.Replicas, state(n))
			}
			out.reply(w, http.StatusOK, list)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/replicas/")
		name, action, _ := strings.Cut(rest, "/")
		if !ok || (action != "stop" && action != "start") {
			out.reply(w, http.StatusNotFound, controlError{
				Error:   "not found",
				Details: "the demo control serves GET /replicas and POST /replicas/NAME/stop or /start",
			})
			return
		}
		n := s.replica(name)
		if n == nil {
			out.reply(w, http.StatusNotFound, controlError{
				Error:   "unknown replica",
				Details: "the replicas are " + replicaOrders1 + " and " + replicaOrders2,
			})
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, out, http.MethodPost)
			return
		}
		if action == "stop" {
			n.stop()
			n.log.Info("demo replica stopped", "replica", n.name, "url", n.url())
		} else {
			if err := n.start(); err != nil {
				n.log.Error("demo replica did not start", "replica", n.name, "error", err)
				out.reply(w, http.StatusInternalServerError, controlError{
					Error:   "replica did not start",
					Details: "it could not listen on " + strings.TrimPrefix(n.url(), "http://") + " again; see the demo's log",
				})
				return
			}
			n.log.Info("demo replica started", "replica", n.name, "url", n.url())
		}
		out.reply(w, http.StatusOK, state(n))
	})
}

// state returns the control's view of n.
func state(n *node) replicaState {
	st := replicaState{Name: n.name, URL: n.url(), State: stateDown}
	if n.up() {
		st.State = stateUp
	}
	return st
}

// methodNotAllowed answers 405 with the Allow header.
func methodNotAllowed(w http.ResponseWriter, out service, allow string) {
	w.Header().Set("Allow", allow)
	out.reply(w, http.StatusMethodNotAllowed, controlError{Error: "method not allowed", Details: "use " + allow})
}
