package demo

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestOrdersReplicasShareOneStore writes through one replica and reads
// through the other, as replicas behind one database.
func TestOrdersReplicasShareOneStore(t *testing.T) {
	t.Parallel()
	store := newOrderStore()
	r1 := serve(t, newOrders(replicaOrders1, store, fixedClock))
	r2 := serve(t, newOrders(replicaOrders2, store, fixedClock))

	resp, b := call(t, r1.URL, http.MethodPost, "/", tourOrderBody, nil)
	m := checkJSON(t, resp, b, http.StatusCreated, "orders")
	id := m["order"].(map[string]any)["id"]
	if m["replica"] != replicaOrders1 {
		t.Errorf("create: replica got %v, want %s", m["replica"], replicaOrders1)
	}
	resp, b = call(t, r2.URL, http.MethodPost, "/", tourOrderBody, nil)
	if got := checkJSON(t, resp, b, http.StatusCreated, "orders")["order"].(map[string]any)["id"]; got != id.(float64)+1 {
		t.Errorf("id of the next order, made on the other replica: got %v, want %v", got, id.(float64)+1)
	}

	for _, srv := range []struct{ url, replica string }{{r1.URL, replicaOrders1}, {r2.URL, replicaOrders2}} {
		resp, b := call(t, srv.url, http.MethodGet, "/", "", nil)
		m := checkJSON(t, resp, b, http.StatusOK, "orders")
		if m["count"] != float64(10) || m["replica"] != srv.replica {
			t.Errorf("list on %s: got count %v, replica %v; want 10 from %s", srv.replica, m["count"], m["replica"], srv.replica)
		}
		resp, b = call(t, srv.url, http.MethodGet, "/9", "", nil)
		checkJSON(t, resp, b, http.StatusOK, "orders")
	}
}

// TestReplicaFieldOnlyOnOrders checks that every orders answer, errors
// and health included, names its replica next to caller, and that the
// services that run once have no replica field.
func TestReplicaFieldOnlyOnOrders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		h       http.Handler
		method  string
		path    string
		status  int
		service string
		replica any
	}{
		{"orders list", newOrders(replicaOrders2, newOrderStore(), fixedClock), http.MethodGet, "/", http.StatusOK, "orders", replicaOrders2},
		{"orders health", newOrders(replicaOrders2, newOrderStore(), fixedClock), http.MethodGet, "/health", http.StatusOK, "orders", replicaOrders2},
		{"orders 404", newOrders(replicaOrders1, newOrderStore(), fixedClock), http.MethodGet, "/999", http.StatusNotFound, "orders", replicaOrders1},
		{"orders 405", newOrders(replicaOrders1, newOrderStore(), fixedClock), http.MethodDelete, "/", http.StatusMethodNotAllowed, "orders", replicaOrders1},
		{"auth", newAuth(fixedClock), http.MethodGet, "/health", http.StatusOK, "auth", nil},
		{"payment", newPayment(fixedClock), http.MethodGet, "/health", http.StatusOK, "payment", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, tt.h)
			resp, b := call(t, srv.URL, tt.method, tt.path, "", nil)
			m := checkJSON(t, resp, b, tt.status, tt.service)
			if got := m["replica"]; got != tt.replica {
				t.Errorf("replica: got %v, want %v", got, tt.replica)
			}
			if tt.replica != nil && !strings.Contains(string(b), `"caller":{`) {
				t.Errorf("body has no caller object: %s", b)
			}
		})
	}
}

// TestTourReplicaSedMatchesResponse runs the tour's sed expression, as a
// Go regexp, over a real list response and a gateway error.
func TestTourReplicaSedMatchesResponse(t *testing.T) {
	t.Parallel()
	expr, ok := strings.CutPrefix(replicaSed, `sed -E 's/`)
	if ok {
		expr, ok = strings.CutSuffix(expr, `/\1/'`)
	}
	if !ok {
		t.Fatalf("replicaSed has an unexpected shape: %s", replicaSed)
	}
	re := regexp.MustCompile(expr)
	srv := serve(t, newOrders(replicaOrders2, newOrderStore(), fixedClock))
	_, b := call(t, srv.URL, http.MethodGet, "/", "", map[string]string{"X-User-ID": "alice"})
	if strings.Count(string(b), "\n") != 1 {
		t.Fatalf("list body must be one line for sed: %q", b)
	}
	if got := re.ReplaceAllString(strings.TrimSuffix(string(b), "\n"), "$1"); got != replicaOrders2 {
		t.Errorf("extracted replica: got %q, want %q", got, replicaOrders2)
	}
	// A gateway error names no replica: sed prints it whole.
	const problem = `{"type":"about:blank","title":"Bad Gateway","status":502,"request_id":"r-1"}`
	if got := re.ReplaceAllString(problem, "$1"); got != problem {
		t.Errorf("on an error body: got %q, want the body unchanged", got)
	}
}
