package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/problem"
	"github.com/portico-gateway/portico/internal/telemetry"
)

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, srv *httptest.Server, method, path string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %s", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}

// sameJSON reports whether a and b hold equal JSON values.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("invalid JSON %q: %s", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("invalid JSON %q: %s", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

type route struct {
	Name    string         `json:"name"`
	Paths   []string       `json:"paths"`
	Service string         `json:"service"`
	APIKey  config.Secret  `json:"api_key,omitempty"`
	Extra   map[string]int `json:"extra,omitempty"`
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	m := telemetry.New()
	m.Reload(true)
	srv := httptest.NewServer(New(Options{
		Metrics: m.Handler(),
		Ready:   func() bool { return true },
		Reload:  func() error { return nil },
		Routes: func() any {
			return []route{{Name: "orders", Paths: []string{"/api/orders"}, Service: "orders", APIKey: "sekrit-value"}}
		},
		Version: "1.2.3",
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name        string
		method      string
		path        string
		wantStatus  int
		wantType    string
		wantJSON    string // compared as JSON when set
		wantContain string
		wantAllow   string
	}{
		{"health", "GET", "/health", 200, "application/json", `{"status":"healthy"}`, "", ""},
		{"ready", "GET", "/ready", 200, "application/json", `{"status":"ready"}`, "", ""},
		{"version", "GET", "/version", 200, "application/json", `{"version":"1.2.3"}`, "", ""},
		{"reload", "POST", "/reload", 200, "application/json", `{"status":"reloaded"}`, "", ""},
		{"routes", "GET", "/routes", 200, "application/json",
			`[{"name":"orders","paths":["/api/orders"],"service":"orders","api_key":"[redacted]"}]`, "", ""},
		{"metrics", "GET", "/metrics", 200, "text/plain", "", `portico_config_reloads_total{result="ok"} 1`, ""},
		{"head health", "HEAD", "/health", 200, "application/json", "", "", ""},
		{"reload by GET", "GET", "/reload", 405, problem.ContentType, "", `"status":405`, "POST"},
		{"health by POST", "POST", "/health", 405, problem.ContentType, "", `"status":405`, "GET, HEAD"},
		{"metrics by DELETE", "DELETE", "/metrics", 405, problem.ContentType, "", `"status":405`, "GET, HEAD"},
		{"unknown", "GET", "/nope", 404, problem.ContentType, "", `"title":"Not Found"`, ""},
		{"root", "GET", "/", 404, problem.ContentType, "", `"status":404`, ""},
		{"trailing slash", "GET", "/health/", 404, problem.ContentType, "", `"status":404`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := do(t, srv, tt.method, tt.path)
			if got.status != tt.wantStatus {
				t.Errorf("status: got %d, want %d; body %s", got.status, tt.wantStatus, got.body)
			}
			if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("content type: got %q, want %q", ct, tt.wantType)
			}
			if tt.wantJSON != "" && !sameJSON(t, got.body, tt.wantJSON) {
				t.Errorf("body: got %s, want %s", got.body, tt.wantJSON)
			}
			if tt.wantContain != "" && !strings.Contains(got.body, tt.wantContain) {
				t.Errorf("body: got %s, want it to contain %s", got.body, tt.wantContain)
			}
			if a := got.header.Get("Allow"); a != tt.wantAllow {
				t.Errorf("Allow: got %q, want %q", a, tt.wantAllow)
			}
			if tt.method == "HEAD" && got.body != "" {
				t.Errorf("HEAD body: got %q, want none", got.body)
			}
			if strings.Contains(got.body, "sekrit") {
				t.Errorf("body echoes a secret: %s", got.body)
			}
		})
	}
}

func TestAdminReadyFollowsGateway(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	srv := httptest.NewServer(New(Options{Ready: ready.Load}))
	t.Cleanup(srv.Close)

	got := do(t, srv, "GET", "/ready")
	if got.status != http.StatusServiceUnavailable || !sameJSON(t, got.body, `{"status":"not ready"}`) {
		t.Errorf("not ready: got %d %s, want 503 {\"status\":\"not ready\"}", got.status, got.body)
	}
	if ra := got.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After: got %q, want 1", ra)
	}
	ready.Store(true)
	got = do(t, srv, "GET", "/ready")
	if got.status != http.StatusOK || got.header.Get("Retry-After") != "" {
		t.Errorf("ready: got %d with Retry-After %q, want 200 without", got.status, got.header.Get("Retry-After"))
	}
}

func TestAdminReloadFailureListsConfigErrors(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	cfgErr := errors.Join(
		&config.FieldError{File: "portico.yaml", Line: 12, Col: 5, Path: config.Path{}.Index("routes", 0).Key("service"), Msg: `unknown service "ordrs"; did you mean "orders"?`},
		&config.FieldError{File: "portico.yaml", Line: 20, Col: 3, Path: config.Path{}.Key("listen"), Msg: "must be host:port"},
	)
	srv := httptest.NewServer(New(Options{Reload: func() error {
		calls.Add(1)
		return cfgErr
	}}))
	t.Cleanup(srv.Close)

	got := do(t, srv, "POST", "/reload")
	if got.status != http.StatusInternalServerError {
		t.Fatalf("got %d, want 500", got.status)
	}
	if ct := got.header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("content type: got %q, want %q", ct, problem.ContentType)
	}
	var p struct {
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal([]byte(got.body), &p); err != nil {
		t.Fatalf("problem body is not JSON: %s\n%s", err, got.body)
	}
	for _, want := range []string{
		`portico.yaml:12:5: routes[0].service: unknown service "ordrs"; did you mean "orders"?`,
		"portico.yaml:20:3: listen: must be host:port",
		"previous one keeps serving",
	} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail: got %q, want it to contain %q", p.Detail, want)
		}
	}
	if p.Status != 500 || p.Title != "Reload Failed" {
		t.Errorf("got status %d title %q, want 500 \"Reload Failed\"", p.Status, p.Title)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("reload calls: got %d, want 1", n)
	}
	// A GET must never trigger a reload.
	_ = do(t, srv, "GET", "/reload")
	if n := calls.Load(); n != 1 {
		t.Errorf("reload calls after GET: got %d, want 1", n)
	}
}

func TestAdminUnwiredEndpoints(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Options{Routes: func() any { return nil }}))
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 404},
		{"POST", "/reload", 404},
		{"GET", "/routes", 404},
		{"GET", "/ready", 200}, // no Ready func: always ready
		{"GET", "/health", 200},
		{"GET", "/version", 200},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			if got := do(t, srv, tt.method, tt.path); got.status != tt.want {
				t.Errorf("got %d, want %d: %s", got.status, tt.want, got.body)
			}
		})
	}
}

func TestAdminRoutesEncodingFailureHidesError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Options{Routes: func() any { return map[string]any{"bad": func() {}} }}))
	t.Cleanup(srv.Close)
	got := do(t, srv, "GET", "/routes")
	if got.status != http.StatusInternalServerError {
		t.Errorf("got %d, want 500", got.status)
	}
	if strings.Contains(got.body, "func") || strings.Contains(got.body, "json:") {
		t.Errorf("body leaks the encoder error: %s", got.body)
	}
}

type statusError struct{ status int }

func (e statusError) Error() string   { return "refused: " + strconv.Itoa(e.status) }
func (e statusError) HTTPStatus() int { return e.status }

// TestEndpointsServedBesideTheBuiltIns: an added endpoint answers JSON, a
// client error with its own status, any other error with 502, and the
// usual 405 and 404 answers list it.
func TestEndpointsServedBesideTheBuiltIns(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Options{Endpoints: []Endpoint{{
		Method: http.MethodPost, Path: "/things/do",
		Serve: func(r *http.Request) (any, error) {
			switch r.URL.Query().Get("x") {
			case "bad":
				return nil, statusError{400}
			case "down":
				return nil, errors.New("store unreachable")
			}
			return map[string]int{"done": 1}, nil
		},
	}}}))
	t.Cleanup(srv.Close)
	tests := []struct {
		method, path string
		status       int
		want         string
	}{
		{"POST", "/things/do", 200, `"done": 1`},
		{"POST", "/things/do?x=bad", 400, "refused: 400"},
		{"POST", "/things/do?x=down", 502, "store unreachable"},
		{"GET", "/things/do", 405, ""},
		{"GET", "/nothing", 404, "/things/do"},
	}
	for _, tt := range tests {
		got := do(t, srv, tt.method, tt.path)
		if got.status != tt.status || !strings.Contains(got.body, tt.want) {
			t.Errorf("%s %s: got %d %s, want %d containing %q", tt.method, tt.path, got.status, got.body, tt.status, tt.want)
		}
	}
	if got := do(t, srv, "GET", "/things/do"); got.header.Get("Allow") != "POST" {
		t.Errorf("got Allow %q, want POST", got.header.Get("Allow"))
	}
}
