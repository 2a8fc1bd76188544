package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testNow is the fixed clock the handler tests run with.
var testNow = time.Date(2026, time.May, 4, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// serve runs h on a real loopback listener for the test's lifetime.
func serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// call sends one request and returns the response with its body read.
func call(t testing.TB, base, method, path, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatalf("new request: %s", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %s", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %s", method, path, err)
	}
	return resp, b
}

// decodeBody decodes a JSON response body into a generic map.
func decodeBody(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %s\n%s", err, b)
	}
	return m
}

// checkJSON checks the status, the content type and the service name of a
// demo response and returns its decoded body.
func checkJSON(t testing.TB, resp *http.Response, b []byte, wantStatus int, wantService string) map[string]any {
	t.Helper()
	if resp.StatusCode != wantStatus {
		t.Fatalf("status: got %d, want %d; body %s", resp.StatusCode, wantStatus, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want %q", ct, "application/json")
	}
	m := decodeBody(t, b)
	if got := m["service"]; got != wantService {
		t.Errorf("service: got %v, want %q", got, wantService)
	}
	if _, ok := m["caller"].(map[string]any); !ok {
		t.Errorf("caller: got %v, want an object", m["caller"])
	}
	return m
}

// serveOnce runs one request through h in memory and returns the status;
// the fuzz targets use it for speed.
func serveOnce(h http.Handler, method, path, body string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code
}

// newTestOrders returns the orders-1 replica over a fresh store, on the
// fixed clock.
func newTestOrders() *orders { return newOrders(replicaOrders1, newOrderStore(), fixedClock) }
