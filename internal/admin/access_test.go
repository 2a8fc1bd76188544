package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/problem"
)

const (
	readToken  = "read-0123456789abcdefghijklmnopqrstuvwxyz"
	writeToken = "write-0123456789abcdefghijklmnopqrstuvwxyz"
	wrongToken = "wrong-0123456789abcdefghijklmnopqrstuvwxyz"
)

func digest(tok string) config.Secret {
	d := sha256.Sum256([]byte(tok))
	return config.Secret("sha256:" + hex.EncodeToString(d[:]))
}

// adminSettings returns admin settings with a read token (as a literal)
// and a write token (as a digest), with their defaults applied.
func adminSettings(change ...func(a *config.Admin)) *config.Admin {
	c := &config.Config{Admin: config.Admin{Tokens: []config.AdminToken{
		{Name: "grafana", Token: readToken, Role: config.AdminRoleRead},
		{Name: "ops", Token: digest(writeToken), Role: config.AdminRoleWrite},
	}}}
	for _, f := range change {
		f(&c.Admin)
	}
	c.ApplyDefaults()
	return &c.Admin
}

// purge and stats stand in for plugin endpoints: one writes, one reads.
var (
	purge = Endpoint{Method: http.MethodPost, Path: "/things/purge", Write: true,
		Serve: func(r *http.Request) (any, error) { return map[string]int{"purged": 1}, nil }}
	stats = Endpoint{Method: http.MethodGet, Path: "/things/stats",
		Serve: func(r *http.Request) (any, error) { return map[string]int{"things": 2}, nil }}
)

// authServer is a real admin API server whose access rules can be
// swapped as a reload does.
type authServer struct {
	srv     *httptest.Server
	access  atomic.Pointer[Access]
	reloads atomic.Int32
	logs    *syncBuffer
}

func newAuthServer(t *testing.T, a *config.Admin) *authServer {
	t.Helper()
	s := &authServer{logs: &syncBuffer{}}
	s.setAccess(t, a)
	s.srv = httptest.NewServer(New(Options{
		Reload:    func() error { s.reloads.Add(1); return nil },
		Routes:    func() any { return []string{"orders"} },
		Upstreams: func() any { return []string{"orders"} },
		Metrics:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") }),
		Endpoints: []Endpoint{purge, stats},
		Version:   "1.2.3",
		Access:    s.access.Load,
		Logger:    slog.New(slog.NewJSONHandler(s.logs, nil)),
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *authServer) setAccess(t *testing.T, a *config.Admin) {
	t.Helper()
	acc, err := NewAccess(a, []Endpoint{purge, stats})
	if err != nil {
		t.Fatal(err)
	}
	s.access.Store(acc)
}

// call sends one request; hdr are name, value pairs.
func (s *authServer) call(t *testing.T, c *http.Client, method, path, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = s.srv.Client()
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %s", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %s", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const (
	challenge        = `Bearer realm="portico-admin"`
	invalidChallenge = `Bearer realm="portico-admin", error="invalid_token"`
	scopeChallenge   = `Bearer realm="portico-admin", error="insufficient_scope"`
)

// TestAdminTokens: every endpoint but the public paths needs a token; a
// read token reads and a write token does everything.
func TestAdminTokens(t *testing.T) {
	t.Parallel()
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	tests := []struct {
		name          string
		method, path  string
		hdr           []string
		want          int
		wantChallenge string
		wantReloads   int32
	}{
		{"no token", "GET", "/routes", nil, 401, challenge, 0},
		{"no token on reload", "POST", "/reload", nil, 401, challenge, 0},
		{"no token on an unknown path", "GET", "/nope", nil, 401, challenge, 0},
		{"another scheme", "GET", "/routes", []string{"Authorization", "Basic " + readToken}, 401, challenge, 0},
		{"empty bearer", "GET", "/routes", []string{"Authorization", "Bearer "}, 401, challenge, 0},
		{"bad token", "GET", "/routes", bearer(wrongToken), 401, invalidChallenge, 0},
		{"digest sent as the token", "GET", "/routes", bearer(string(digest(writeToken))), 401, invalidChallenge, 0},
		{"token with a suffix", "GET", "/routes", bearer(readToken + "x"), 401, invalidChallenge, 0},
		{"two credentials", "GET", "/routes", append(bearer(readToken), bearer(readToken)...), 401, invalidChallenge, 0},
		{"bad token on reload", "POST", "/reload", bearer(wrongToken), 401, invalidChallenge, 0},
		{"read: routes", "GET", "/routes", bearer(readToken), 200, "", 0},
		{"read: lowercase scheme", "GET", "/routes", []string{"Authorization", "bearer  " + readToken}, 200, "", 0},
		{"read: metrics", "GET", "/metrics", bearer(readToken), 200, "", 0},
		{"read: upstreams", "GET", "/upstreams", bearer(readToken), 200, "", 0},
		{"read: version", "HEAD", "/version", bearer(readToken), 200, "", 0},
		{"read: plugin read endpoint", "GET", "/things/stats", bearer(readToken), 200, "", 0},
		{"read: reload", "POST", "/reload", bearer(readToken), 403, scopeChallenge, 0},
		{"read: plugin write endpoint", "POST", "/things/purge", bearer(readToken), 403, scopeChallenge, 0},
		{"read: unknown path", "GET", "/nope", bearer(readToken), 404, "", 0},
		{"read: reload by GET", "GET", "/reload", bearer(readToken), 405, "", 0},
		{"write: reload", "POST", "/reload", bearer(writeToken), 200, "", 1},
		{"write: plugin write endpoint", "POST", "/things/purge", bearer(writeToken), 200, "", 0},
		{"write: routes", "GET", "/routes", bearer(writeToken), 200, "", 0},
		{"public: health", "GET", "/health", nil, 200, "", 0},
		{"public: ready", "GET", "/ready", nil, 200, "", 0},
		{"public: bad token ignored", "GET", "/health", bearer(wrongToken), 200, "", 0},
		{"public: wrong method", "POST", "/health", nil, 405, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newAuthServer(t, adminSettings())
			got := s.call(t, nil, tt.method, tt.path, "", tt.hdr...)
			if got.status != tt.want {
				t.Errorf("status: got %d, want %d; body %s", got.status, tt.want, got.body)
			}
			if ch := got.header.Get("WWW-Authenticate"); ch != tt.wantChallenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", ch, tt.wantChallenge)
			}
			if tt.want >= 400 && got.header.Get("Content-Type") != problem.ContentType {
				t.Errorf("content type: got %q, want %q", got.header.Get("Content-Type"), problem.ContentType)
			}
			if tt.want == 401 && strings.Contains(got.body, "/reload") {
				t.Errorf("a 401 lists the endpoints: %s", got.body)
			}
			if n := s.reloads.Load(); n != tt.wantReloads {
				t.Errorf("reloads: got %d, want %d", n, tt.wantReloads)
			}
			for _, secret := range []string{readToken, writeToken, wrongToken} {
				if strings.Contains(got.body, secret) || strings.Contains(s.logs.String(), secret) {
					t.Errorf("a token appears in the answer or the log")
				}
			}
		})
	}
}

// TestAdminOpenWithoutTokens: with no tokens every endpoint answers
// without one, as before tokens existed.
func TestAdminOpenWithoutTokens(t *testing.T) {
	t.Parallel()
	s := newAuthServer(t, adminSettings(func(a *config.Admin) { a.Tokens = nil }))
	for _, c := range []struct{ method, path string }{{"GET", "/routes"}, {"GET", "/metrics"}, {"POST", "/reload"}, {"POST", "/things/purge"}} {
		if got := s.call(t, nil, c.method, c.path, ""); got.status != 200 {
			t.Errorf("%s %s: got %d, want 200; body %s", c.method, c.path, got.status, got.body)
		}
	}
	// A token sent anyway is not looked at.
	if got := s.call(t, nil, "GET", "/routes", "", "Authorization", "Bearer "+wrongToken); got.status != 200 {
		t.Errorf("with a token: got %d, want 200", got.status)
	}
}

// TestAdminPublicPaths: public_paths replaces the default, may open
// /metrics, and may be empty.
func TestAdminPublicPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		public []string
		open   []string
		closed []string
	}{
		{"default", nil, []string{"/health", "/ready"}, []string{"/metrics", "/routes", "/version"}},
		{"metrics for a scraper", []string{"/health", "/ready", "/metrics"}, []string{"/health", "/ready", "/metrics"}, []string{"/routes"}},
		{"plugin read endpoint", []string{"/things/stats"}, []string{"/things/stats"}, []string{"/health", "/ready"}},
		{"none", []string{}, nil, []string{"/health", "/ready", "/metrics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newAuthServer(t, adminSettings(func(a *config.Admin) { a.PublicPaths = tt.public }))
			for _, p := range tt.open {
				if got := s.call(t, nil, "GET", p, ""); got.status != 200 {
					t.Errorf("GET %s without a token: got %d, want 200", p, got.status)
				}
			}
			for _, p := range tt.closed {
				if got := s.call(t, nil, "GET", p, ""); got.status != 401 {
					t.Errorf("GET %s without a token: got %d, want 401", p, got.status)
				}
			}
		})
	}
}

// TestNewAccessRefusesPublicWriteEndpoints: a public path must name a GET
// endpoint; the error names the key and lists what may be public.
func TestNewAccessRefusesPublicWriteEndpoints(t *testing.T) {
	t.Parallel()
	a := adminSettings(func(a *config.Admin) { a.PublicPaths = []string{"/reload", "/things/purge", "/metric", "/metrics"} })
	_, err := NewAccess(a, []Endpoint{purge, stats})
	want := []string{
		"admin.public_paths[0]: POST /reload changes the gateway and always needs a token with the write role",
		"admin.public_paths[1]: POST /things/purge changes the gateway and always needs a token with the write role",
		`admin.public_paths[2]: no admin endpoint at "/metric"; public paths may be /health, /metrics, /ready, /routes, /things/stats, /upstreams, /version`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// TestAdminWriteOrigin: a write request whose Origin is not allowed is
// refused, with or without tokens (CSRF); reads are not checked.
func TestAdminWriteOrigin(t *testing.T) {
	t.Parallel()
	auth := []string{"Authorization", "Bearer " + writeToken}
	tests := []struct {
		name   string
		open   bool
		method string
		path   string
		hdr    []string
		want   int
	}{
		{"no origin", false, "POST", "/reload", auth, 200},
		{"allowed origin", false, "POST", "/reload", append([]string{"Origin", "https://ops.example.com"}, auth...), 200},
		{"allowed origin, other case", false, "POST", "/reload", append([]string{"Origin", "https://OPS.example.com"}, auth...), 200},
		{"allowed origin with port", false, "POST", "/things/purge", append([]string{"Origin", "http://127.0.0.1:3000"}, auth...), 200},
		{"other origin", false, "POST", "/reload", append([]string{"Origin", "https://evil.example"}, auth...), 403},
		{"other port", false, "POST", "/reload", append([]string{"Origin", "http://127.0.0.1:3001"}, auth...), 403},
		{"null origin", false, "POST", "/reload", append([]string{"Origin", "null"}, auth...), 403},
		{"two origins, one allowed", false, "POST", "/reload",
			append([]string{"Origin", "https://ops.example.com", "Origin", "https://evil.example"}, auth...), 403},
		{"read with another origin", false, "GET", "/routes", append([]string{"Origin", "https://evil.example"}, auth...), 200},
		{"open: other origin", true, "POST", "/reload", []string{"Origin", "https://evil.example"}, 403},
		{"open: DNS rebinding origin", true, "POST", "/things/purge", []string{"Origin", "http://rebind.example:9901"}, 403},
		{"open: allowed origin", true, "POST", "/reload", []string{"Origin", "https://ops.example.com"}, 200},
		{"open: no origin", true, "POST", "/reload", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newAuthServer(t, adminSettings(func(a *config.Admin) {
				a.AllowedOrigins = []string{"https://ops.example.com", "http://127.0.0.1:3000"}
				if tt.open {
					a.Tokens = nil
				}
			}))
			got := s.call(t, nil, tt.method, tt.path, "", tt.hdr...)
			if got.status != tt.want {
				t.Fatalf("got %d, want %d; body %s", got.status, tt.want, got.body)
			}
			if tt.want == 403 {
				if s.reloads.Load() != 0 {
					t.Error("the refused request reloaded")
				}
				if !strings.Contains(got.body, "admin.allowed_origins") {
					t.Errorf("body: got %s, want it to name admin.allowed_origins", got.body)
				}
			}
		})
	}
}

// TestAdminWriteContentType: a write request carries no body and no
// Content-Type, or declares application/json.
func TestAdminWriteContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string // "-" for none
		body        string
		chunked     bool
		want        int
	}{
		{"no body, no type", "-", "", false, 200},
		{"no body, empty type", "", "", false, 200},
		{"json", "application/json", `{"route":"x"}`, false, 200},
		{"json with charset", "Application/JSON; charset=utf-8", `{}`, false, 200},
		{"json without body", "application/json", "", false, 200},
		{"chunked json", "application/json", `{}`, true, 200},
		{"text/plain", "text/plain", `{}`, false, 415},
		{"text/plain without body", "text/plain", "", false, 415},
		{"form", "application/x-www-form-urlencoded", "a=b", false, 415},
		{"multipart", "multipart/form-data; boundary=x", "--x--", false, 415},
		{"json-like", "application/json-patch+json", `[]`, false, 415},
		{"malformed", "application/json; =", `{}`, false, 415},
		{"body without a type", "-", `{}`, false, 415},
		{"chunked body without a type", "-", `{}`, true, 415},
	}
	for _, tt := range tests {
		for _, open := range []bool{false, true} {
			name := tt.name
			if open {
				name = "open: " + name
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := newAuthServer(t, adminSettings(func(a *config.Admin) {
					if open {
						a.Tokens = nil
					}
				}))
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(strings.NewReader(tt.body)) // unknown length: sent chunked
				} else if tt.body == "" {
					body = nil
				}
				req, err := http.NewRequest("POST", s.srv.URL+"/reload", body)
				if err != nil {
					t.Fatal(err)
				}
				if tt.contentType != "-" {
					req.Header["Content-Type"] = []string{tt.contentType}
				}
				req.Header.Set("Authorization", "Bearer "+writeToken)
				resp, err := s.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Fatalf("got %d, want %d; body %s", resp.StatusCode, tt.want, b)
				}
				if tt.want == 415 {
					if ap := resp.Header.Get("Accept-Post"); ap != "application/json" {
						t.Errorf("Accept-Post: got %q, want application/json", ap)
					}
					if s.reloads.Load() != 0 {
						t.Error("the refused request reloaded")
					}
				}
			})
		}
	}
}

// clientFrom returns a client whose connections come from the loopback
// address ip (127.0.0.0/8 is all local on Linux), so that one test can
// be several clients.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestAdminBlocksRepeatedFailures: after FailureLimit failures an address
// gets 429 with Retry-After on every endpoint but the public ones, even
// with a valid token; another address is not affected, and successes do
// not count.
func TestAdminBlocksRepeatedFailures(t *testing.T) {
	t.Parallel()
	s := newAuthServer(t, adminSettings())
	attacker, other := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3")
	bad := []string{"Authorization", "Bearer " + wrongToken}
	good := []string{"Authorization", "Bearer " + writeToken}
	for range 3 * FailureLimit {
		if got := s.call(t, attacker, "GET", "/routes", "", good...); got.status != 200 {
			t.Fatalf("success: got %d, want 200", got.status)
		}
	}
	for i := range FailureLimit {
		hdr := bad
		if i%2 == 1 {
			hdr = nil // a missing token counts too
		}
		if got := s.call(t, attacker, "GET", "/routes", "", hdr...); got.status != 401 {
			t.Fatalf("failure %d: got %d, want 401", i+1, got.status)
		}
	}
	for _, hdr := range [][]string{bad, good} {
		got := s.call(t, attacker, "POST", "/reload", "", hdr...)
		if got.status != http.StatusTooManyRequests {
			t.Fatalf("blocked, with %s token: got %d, want 429", map[bool]string{true: "a valid", false: "a bad"}[hdr[1] == good[1]], got.status)
		}
		if ra := got.header.Get("Retry-After"); ra != "300" && ra != "299" {
			t.Errorf("Retry-After: got %q, want 300", ra)
		}
		if got.header.Get("Content-Type") != problem.ContentType {
			t.Errorf("content type: got %q, want problem JSON", got.header.Get("Content-Type"))
		}
	}
	if s.reloads.Load() != 0 {
		t.Error("a blocked client reloaded")
	}
	if got := s.call(t, attacker, "GET", "/health", ""); got.status != 200 {
		t.Errorf("public path while blocked: got %d, want 200", got.status)
	}
	if got := s.call(t, other, "POST", "/reload", "", good...); got.status != 200 {
		t.Errorf("another address: got %d, want 200", got.status)
	}
	blocked := 0
	for _, l := range s.logs.lines(t) {
		if l["msg"] == "admin client blocked after repeated authentication failures" {
			blocked++
			if r, _ := l["remote"].(string); !strings.HasPrefix(r, "127.0.0.2:") {
				t.Errorf("blocked remote: got %q, want 127.0.0.2", r)
			}
		}
	}
	if blocked != 1 {
		t.Errorf("block log lines: got %d, want 1", blocked)
	}
}

// TestAdminLogsRefusals: every refusal is one warn line with the remote
// address, path and reason; no line carries a token.
func TestAdminLogsRefusals(t *testing.T) {
	t.Parallel()
	s := newAuthServer(t, adminSettings())
	s.call(t, nil, "GET", "/routes", "")
	s.call(t, nil, "GET", "/upstreams", "", "Authorization", "Bearer "+wrongToken)
	s.call(t, nil, "POST", "/reload", "", "Authorization", "Bearer "+readToken)
	s.call(t, nil, "POST", "/things/purge", "x", "Authorization", "Bearer "+writeToken, "Content-Type", "text/plain")
	s.call(t, nil, "POST", "/reload", "", "Authorization", "Bearer "+writeToken, "Origin", "https://evil.example")
	s.call(t, nil, "POST", "/reload", "", "Authorization", "Bearer "+writeToken)
	want := []struct{ level, msg, path, reason, token string }{
		{"WARN", "admin request refused", "/routes", "missing token", ""},
		{"WARN", "admin request refused", "/upstreams", "invalid token", ""},
		{"WARN", "admin request refused", "/reload", "insufficient role", "grafana"},
		{"WARN", "admin request refused", "/things/purge", "unsupported content type", "ops"},
		{"WARN", "admin request refused", "/reload", "origin not allowed", "ops"},
		{"INFO", "admin write", "/reload", "", "ops"},
	}
	lines := s.logs.lines(t)
	if len(lines) != len(want) {
		t.Fatalf("got %d log lines, want %d:\n%s", len(lines), len(want), s.logs)
	}
	for i, w := range want {
		l := lines[i]
		if l["level"] != w.level || l["msg"] != w.msg || l["path"] != w.path {
			t.Errorf("line %d: got %v, want %s %q path %s", i, l, w.level, w.msg, w.path)
		}
		if r, _ := l["reason"].(string); r != w.reason {
			t.Errorf("line %d reason: got %q, want %q", i, r, w.reason)
		}
		if tok, _ := l["token"].(string); tok != w.token {
			t.Errorf("line %d token name: got %q, want %q", i, tok, w.token)
		}
		if r, _ := l["remote"].(string); !strings.HasPrefix(r, "127.0.0.1:") {
			t.Errorf("line %d remote: got %q, want 127.0.0.1:PORT", i, r)
		}
	}
	for _, secret := range []string{readToken, writeToken, wrongToken, string(digest(writeToken))[7:]} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("the log carries a token or its digest")
		}
	}
}

// TestAdminAccessFollowsReload: the rules of the config serving now apply
// to the next request; a removed token stops working at once.
func TestAdminAccessFollowsReload(t *testing.T) {
	t.Parallel()
	s := newAuthServer(t, adminSettings())
	auth := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	if got := s.call(t, nil, "POST", "/reload", "", auth(writeToken)...); got.status != 200 {
		t.Fatalf("before: got %d, want 200", got.status)
	}
	s.setAccess(t, adminSettings(func(a *config.Admin) {
		a.Tokens = []config.AdminToken{{Name: "new", Token: wrongToken, Role: config.AdminRoleWrite}}
		a.PublicPaths = []string{"/metrics"}
	}))
	checks := []struct {
		method, path, tok string
		want              int
	}{
		{"POST", "/reload", writeToken, 401},
		{"POST", "/reload", wrongToken, 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/health", "", 401},
	}
	for _, c := range checks {
		var hdr []string
		if c.tok != "" {
			hdr = auth(c.tok)
		}
		if got := s.call(t, nil, c.method, c.path, "", hdr...); got.status != c.want {
			t.Errorf("after the reload, %s %s: got %d, want %d", c.method, c.path, got.status, c.want)
		}
	}
}

// TestAccessLookup: each token is found at its index whatever its place,
// and nothing else is found.
func TestAccessLookup(t *testing.T) {
	t.Parallel()
	var ts []config.AdminToken
	toks := make([]string, 5)
	for i := range toks {
		toks[i] = strings.Repeat(string(rune('a'+i)), 40)
		tok := config.Secret(toks[i])
		if i%2 == 0 {
			tok = digest(toks[i])
		}
		ts = append(ts, config.AdminToken{Name: toks[i][:3], Token: tok, Role: config.AdminRoleRead})
	}
	acc, err := NewAccess(&config.Admin{Tokens: ts}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range toks {
		if got := acc.lookup(tok); got != i {
			t.Errorf("lookup(token %d): got %d, want %d", i, got, i)
		}
	}
	for _, tok := range []string{"", toks[0][:39], toks[4] + "a", string(digest(toks[0])), strings.Repeat("z", 40)} {
		if got := acc.lookup(tok); got != -1 {
			t.Errorf("lookup(%q): got %d, want -1", tok, got)
		}
	}
	if got := (&Access{}).lookup(toks[0]); got != -1 {
		t.Errorf("lookup without tokens: got %d, want -1", got)
	}
}

// TestAccessLookupIsConstantTime checks the structure of Access.lookup,
// the only code that compares a presented token with the configured ones
// (a timing test would be flaky and prove little): it hashes the token,
// loops over every configured digest without a way out of the loop
// (no if, break, return or goto inside it), compares with
// subtle.ConstantTimeCompare and chooses with subtle.ConstantTimeSelect,
// and nowhere compares with == or != (which stop at the first differing
// byte) or bytes.Equal.
func TestAccessLookupIsConstantTime(t *testing.T) {
	t.Parallel()
	fset := gotoken.NewFileSet()
	f, err := parser.ParseFile(fset, "access.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lookup *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "lookup" && fd.Recv != nil {
			lookup = fd
		}
	}
	if lookup == nil {
		t.Fatal("no method lookup in access.go")
	}
	calls := map[string]int{}
	loops := 0
	ast.Inspect(lookup.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok {
					calls[x.Name+"."+sel.Sel.Name]++
				}
			}
		case *ast.BinaryExpr:
			if n.Op == gotoken.EQL || n.Op == gotoken.NEQ {
				t.Errorf("%s: lookup compares with %s", fset.Position(n.Pos()), n.Op)
			}
		case *ast.RangeStmt, *ast.ForStmt:
			loops++
			ast.Inspect(n, func(m ast.Node) bool {
				switch m.(type) {
				case *ast.IfStmt, *ast.SwitchStmt, *ast.BranchStmt, *ast.ReturnStmt, *ast.SelectStmt:
					t.Errorf("%s: the loop over the digests can end early or branch (%T)", fset.Position(m.Pos()), m)
				}
				return true
			})
		}
		return true
	})
	if loops != 1 {
		t.Errorf("loops in lookup: got %d, want 1", loops)
	}
	for _, want := range []string{"sha256.Sum256", "subtle.ConstantTimeCompare", "subtle.ConstantTimeSelect"} {
		if calls[want] != 1 {
			t.Errorf("calls of %s in lookup: got %d, want 1", want, calls[want])
		}
	}
	for _, banned := range []string{"bytes.Equal", "hmac.Equal", "slices.Equal", "strings.EqualFold"} {
		if calls[banned] > 0 {
			t.Errorf("lookup calls %s", banned)
		}
	}
	// And the handler reaches the tokens only through lookup.
	src, err := parser.ParseFile(fset, "admin.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(src, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "digest" {
			t.Errorf("%s: admin.go reads a token digest outside lookup", fset.Position(sel.Pos()))
		}
		return true
	})
}

func TestBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		values  []string
		tok     string
		present bool
	}{
		{"none", nil, "", false},
		{"bearer", []string{"Bearer abc"}, "abc", true},
		{"scheme case", []string{"BEARER abc"}, "abc", true},
		{"spaces", []string{"  Bearer \t abc  "}, "abc", true},
		{"basic", []string{"Basic abc"}, "", false},
		{"scheme only", []string{"Bearer"}, "", false},
		{"empty token", []string{"Bearer   "}, "", false},
		{"bearer-ish scheme", []string{"Bearerabc"}, "", false},
		{"two headers", []string{"Bearer abc", "Bearer abc"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{"Authorization": tt.values}
			tok, present := bearer(h)
			if tok != tt.tok || present != tt.present {
				t.Errorf("got %q %v, want %q %v", tok, present, tt.tok, tt.present)
			}
		})
	}
}
