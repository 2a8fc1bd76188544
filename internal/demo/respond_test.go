package demo

import (
	"net/http"
	"strings"
	"testing"
)

// demoHandlers are the three services under test, by name.
func demoHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"auth":    newAuth(fixedClock),
		"orders":  newTestOrders(),
		"payment": newPayment(fixedClock),
	}
}

func TestServicesAnswerHealth(t *testing.T) {
	t.Parallel()
	for name, h := range demoHandlers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, h)
			resp, b := call(t, srv.URL, http.MethodGet, "/health", "", nil)
			m := checkJSON(t, resp, b, http.StatusOK, name)
			if got := m["status"]; got != "ok" {
				t.Errorf("status: got %v, want %q", got, "ok")
			}
		})
	}
}

func TestServicesEchoCaller(t *testing.T) {
	t.Parallel()
	headers := map[string]string{
		"X-User-ID":       "alice",
		"X-Consumer-ID":   "c-42",
		"X-Consumer-Name": "web-app",
		"X-Request-ID":    "req-1",
		"X-Forwarded-For": "203.0.113.7, 10.0.0.1",
	}
	want := map[string]string{
		"user_id":       "alice",
		"consumer_id":   "c-42",
		"consumer_name": "web-app",
		"request_id":    "req-1",
		"forwarded_for": "203.0.113.7, 10.0.0.1",
	}
	for name, h := range demoHandlers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, h)
			for _, hdr := range []map[string]string{headers, nil} {
				resp, b := call(t, srv.URL, http.MethodGet, "/health", "", hdr)
				c := checkJSON(t, resp, b, http.StatusOK, name)["caller"].(map[string]any)
				if len(c) != len(want) {
					t.Errorf("caller has %d keys, want %d: %v", len(c), len(want), c)
				}
				for k, v := range want {
					if hdr == nil {
						v = ""
					}
					got, ok := c[k].(string)
					if !ok || got != v {
						t.Errorf("caller.%s: got %v, want %q", k, c[k], v)
					}
				}
			}
		})
	}
}

func TestServicesUnknownPathAndMethod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		service, method, path string
		status                int
		allow                 string
	}{
		{"auth", http.MethodGet, "/nope", http.StatusNotFound, ""},
		{"auth", http.MethodGet, "/login", http.StatusMethodNotAllowed, "POST"},
		{"auth", http.MethodPost, "/health", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"orders", http.MethodGet, "/7/items", http.StatusNotFound, ""},
		{"orders", http.MethodDelete, "/", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{"orders", http.MethodPut, "/7", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"payment", http.MethodGet, "/", http.StatusNotFound, ""},
		{"payment", http.MethodGet, "/charge", http.StatusMethodNotAllowed, "POST"},
	}
	handlers := demoHandlers()
	for _, tt := range tests {
		t.Run(tt.service+" "+tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, handlers[tt.service])
			resp, b := call(t, srv.URL, tt.method, tt.path, "", nil)
			m := checkJSON(t, resp, b, tt.status, tt.service)
			if e, _ := m["error"].(string); e == "" {
				t.Errorf("error: got %v, want a message", m["error"])
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow: got %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		status     int
		detail     string
	}{
		{"empty", "", http.StatusBadRequest, "empty"},
		{"syntax", `{"order_id":`, http.StatusBadRequest, "JSON object"},
		{"not an object", `[1,2]`, http.StatusBadRequest, "JSON object"},
		{"trailing data", `{"order_id":1,"amount":1,"currency":"EUR"} {}`, http.StatusBadRequest, "JSON object"},
		{"wrong type", `{"order_id":"seven","amount":1,"currency":"EUR"}`, http.StatusUnprocessableEntity, "order_id must be an integer"},
		{"fraction", `{"order_id":7,"amount":25.99,"currency":"EUR"}`, http.StatusUnprocessableEntity, "amount must be an integer"},
		{"too large", `{"currency":"` + strings.Repeat("E", maxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, "64 KiB"},
	}
	srv := serve(t, newPayment(fixedClock))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := call(t, srv.URL, http.MethodPost, "/charge", tt.body, nil)
			m := checkJSON(t, resp, b, tt.status, "payment")
			details, _ := m["details"].([]any)
			if len(details) != 1 || !strings.Contains(details[0].(string), tt.detail) {
				t.Errorf("details: got %v, want one containing %q", m["details"], tt.detail)
			}
		})
	}
}

func TestValidCurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"EUR", true}, {"USD", true}, {"eur", false}, {"EU", false}, {"EURO", false}, {"E1R", false}, {"", false},
	}
	for _, tt := range tests {
		if got := validCurrency(tt.in); got != tt.want {
			t.Errorf("validCurrency(%q): got %t, want %t", tt.in, got, tt.want)
		}
	}
}
