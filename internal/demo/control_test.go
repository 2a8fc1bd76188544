package demo

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startWithControl starts the services and the control listener for the
// test's lifetime and returns them with the control's base URL.
func startWithControl(t *testing.T) (*Services, string) {
	t.Helper()
	s, err := Start(nil)
	if err != nil {
		t.Fatalf("Start: %s", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %s", err)
		}
	})
	addr, err := s.ListenControl("127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenControl: %s", err)
	}
	return s, "http://" + addr
}

// controlCall sends one request to the control listener and decodes the
// JSON answer into out.
func controlCall(t *testing.T, method, url string, wantStatus int, out any) {
	t.Helper()
	resp, b := call(t, url, method, "", "", nil)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: got %d, want %d; %s", method, url, resp.StatusCode, wantStatus, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type: got %q, want application/json", method, url, ct)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: body is not JSON: %s\n%s", method, url, err, b)
	}
}

// replicaStates returns GET /replicas as name → state and name → url.
func replicaStates(t *testing.T, control string) (map[string]string, map[string]string) {
	t.Helper()
	var list replicaList
	controlCall(t, http.MethodGet, control+"/replicas", http.StatusOK, &list)
	states, urls := map[string]string{}, map[string]string{}
	for _, r := range list.Replicas {
		states[r.Name], urls[r.Name] = r.State, r.URL
	}
	return states, urls
}

func TestControlStopClosesTheReplicaAndStartServesTheSameStore(t *testing.T) {
	t.Parallel()
	s, control := startWithControl(t)
	addr2 := strings.TrimPrefix(s.Orders2, "http://")

	states, urls := replicaStates(t, control)
	if states["orders-1"] != "up" || states["orders-2"] != "up" || len(states) != 2 {
		t.Fatalf("replicas at start: got %v, want orders-1 and orders-2 up", states)
	}
	if urls["orders-1"] != s.Orders || urls["orders-2"] != s.Orders2 {
		t.Errorf("replica urls: got %v, want orders-1 %s and orders-2 %s", urls, s.Orders, s.Orders2)
	}

	// A keep-alive connection open on orders-2 is closed by the stop.
	conn, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatalf("dial orders-2: %s", err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "GET /health HTTP/1.1\r\nHost: orders\r\n\r\n"); err != nil {
		t.Fatalf("write: %s", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read health response: %s", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	var st replicaState
	controlCall(t, http.MethodPost, control+"/replicas/orders-2/stop", http.StatusOK, &st)
	if st != (replicaState{Name: "orders-2", URL: s.Orders2, State: "down"}) {
		t.Errorf("stop answer: got %+v, want orders-2 down", st)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if _, err := br.ReadByte(); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("read on a connection to the stopped replica: got %v, want it closed", err)
	}
	if c, err := net.Dial("tcp", addr2); err == nil {
		c.Close()
		t.Error("orders-2 still accepts connections after stop")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial orders-2 after stop: got %s, want connection refused", err)
	}
	if states, _ := replicaStates(t, control); states["orders-1"] != "up" || states["orders-2"] != "down" {
		t.Errorf("replicas after stop: got %v, want orders-1 up, orders-2 down", states)
	}
	// Stopping again changes nothing.
	controlCall(t, http.MethodPost, control+"/replicas/orders-2/stop", http.StatusOK, &st)

	// orders-1 keeps serving and takes a new order meanwhile.
	r, b := call(t, s.Orders, http.MethodPost, "/", tourOrderBody, nil)
	created := checkJSON(t, r, b, http.StatusCreated, "orders")["order"].(map[string]any)["id"]

	controlCall(t, http.MethodPost, control+"/replicas/orders-2/start", http.StatusOK, &st)
	if st != (replicaState{Name: "orders-2", URL: s.Orders2, State: "up"}) {
		t.Errorf("start answer: got %+v, want orders-2 up on the same URL", st)
	}
	controlCall(t, http.MethodPost, control+"/replicas/orders-2/start", http.StatusOK, &st) // already up
	r, b = call(t, s.Orders2, http.MethodGet, "/9", "", nil)
	m := checkJSON(t, r, b, http.StatusOK, "orders")
	if m["replica"] != "orders-2" || m["order"].(map[string]any)["id"] != created {
		t.Errorf("order from orders-2 after start: got replica %v, order %v; want orders-2 with id %v", m["replica"], m["order"], created)
	}
	if states, _ := replicaStates(t, control); states["orders-2"] != "up" {
		t.Errorf("replicas after start: got %v, want orders-2 up", states)
	}
}

func TestControlStopsAndStartsEitherReplica(t *testing.T) {
	t.Parallel()
	s, control := startWithControl(t)
	for name, url := range map[string]string{"orders-1": s.Orders, "orders-2": s.Orders2} {
		var st replicaState
		controlCall(t, http.MethodPost, control+"/replicas/"+name+"/stop", http.StatusOK, &st)
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			t.Errorf("%s answers after stop", name)
		}
		controlCall(t, http.MethodPost, control+"/replicas/"+name+"/start", http.StatusOK, &st)
		r, b := call(t, url, http.MethodGet, "/health", "", nil)
		if m := checkJSON(t, r, b, http.StatusOK, "orders"); m["replica"] != name {
			t.Errorf("replica after restart: got %v, want %s", m["replica"], name)
		}
	}
}

func TestControlRefusesEverythingElse(t *testing.T) {
	t.Parallel()
	_, control := startWithControl(t)
	tests := []struct {
		name, method, path string
		status             int
		allow, error       string
	}{
		{"unknown replica", http.MethodPost, "/replicas/orders-3/stop", http.StatusNotFound, "", "unknown replica"},
		{"other service", http.MethodPost, "/replicas/payment/stop", http.StatusNotFound, "", "unknown replica"},
		{"empty name", http.MethodPost, "/replicas//stop", http.StatusNotFound, "", "unknown replica"},
		{"unknown action", http.MethodPost, "/replicas/orders-2/restart", http.StatusNotFound, "", "not found"},
		{"no action", http.MethodPost, "/replicas/orders-2", http.StatusNotFound, "", "not found"},
		{"extra segment", http.MethodPost, "/replicas/orders-2/stop/now", http.StatusNotFound, "", "not found"},
		{"root", http.MethodGet, "/", http.StatusNotFound, "", "not found"},
		{"metrics", http.MethodGet, "/metrics", http.StatusNotFound, "", "not found"},
		{"stop by GET", http.MethodGet, "/replicas/orders-2/stop", http.StatusMethodNotAllowed, "POST", "method not allowed"},
		{"start by PUT", http.MethodPut, "/replicas/orders-1/start", http.StatusMethodNotAllowed, "POST", "method not allowed"},
		{"list by POST", http.MethodPost, "/replicas", http.StatusMethodNotAllowed, "GET, HEAD", "method not allowed"},
		{"list by DELETE", http.MethodDelete, "/replicas", http.StatusMethodNotAllowed, "GET, HEAD", "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e controlError
			controlCall(t, tt.method, control+tt.path, tt.status, &e)
			if e.Error != tt.error {
				t.Errorf("error: got %q, want %q", e.Error, tt.error)
			}
			resp, _ := call(t, control, tt.method, tt.path, "", nil)
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
	// Nothing above stopped a replica.
	if states, _ := replicaStates(t, control); states["orders-1"] != "up" || states["orders-2"] != "up" {
		t.Errorf("replicas: got %v, want both up", states)
	}
}

func TestListenControlAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addr string
		ok         bool
	}{
		{"loopback", "127.0.0.1:0", true},
		{"localhost", "localhost:0", true},
		{"all interfaces", "0.0.0.0:0", false},
		{"no host", ":0", false},
		{"public host", "192.0.2.1:9902", false},
		{"name", "example.com:9902", false},
		{"no port", "127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(nil)
			if err != nil {
				t.Fatalf("Start: %s", err)
			}
			defer s.Close()
			addr, err := s.ListenControl(tt.addr)
			if (err == nil) != tt.ok {
				t.Fatalf("ListenControl(%q): got error %v, want ok %v", tt.addr, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if _, err := s.ListenControl(tt.addr); err == nil {
				t.Error("a second ListenControl succeeded, want an error")
			}
			if _, port, _ := net.SplitHostPort(addr); port == "0" || port == "" {
				t.Errorf("address: got %q, want the bound port", addr)
			}
		})
	}
}

func TestListenControlAfterClose(t *testing.T) {
	t.Parallel()
	s, err := Start(nil)
	if err != nil {
		t.Fatalf("Start: %s", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %s", err)
	}
	if _, err := s.ListenControl("127.0.0.1:0"); !errors.Is(err, errClosed) {
		t.Errorf("ListenControl after Close: got %v, want %v", err, errClosed)
	}
	// A replica cannot be brought back after Close either.
	if err := s.replica("orders-2").start(); !errors.Is(err, errClosed) {
		t.Errorf("start after Close: got %v, want %v", err, errClosed)
	}
}
