package introspection

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/problem"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// idp is a real introspection server that counts its calls.
type idp struct {
	srv    *httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	tokens map[string]map[string]any // token → response; absent tokens are inactive
	mode   string                    // "", "500", "badjson", "hang", "redirect", "huge"
	gate   chan struct{}             // when set, each call waits for it to close
	auth   []string                  // Authorization headers seen
	forms  []url.Values
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	p := &idp{tokens: make(map[string]map[string]any)}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) set(token string, resp map[string]any) {
	p.mu.Lock()
	p.tokens[token] = resp
	p.mu.Unlock()
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	_ = r.ParseForm()
	p.mu.Lock()
	p.auth = append(p.auth, r.Header.Get("Authorization"))
	p.forms = append(p.forms, r.PostForm)
	mode, gate := p.mode, p.gate
	resp, ok := p.tokens[r.PostForm.Get("token")]
	p.mu.Unlock()
	if gate != nil {
		<-gate
	}
	switch mode {
	case "500":
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case "badjson":
		_, _ = io.WriteString(w, `{"active": tru`)
		return
	case "hang":
		<-r.Context().Done()
		return
	case "redirect":
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
		return
	case "huge":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"pad":"`+strings.Repeat("a", maxResponseBytes)+`"}`)
		return
	}
	if !ok {
		resp = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// edge is a real listener that does what the gateway's edge and auth gate
// do around the plugin: an Exchange in the context, then refuse with the
// recorded failure or forward to a real upstream with X-User-ID set.
type edge struct {
	srv      *httptest.Server
	upstream *httptest.Server
	mu       sync.Mutex
	seen     []*http.Request // what reached the upstream
	last     *pipeline.Exchange
}

func newEdge(t *testing.T, mw pipeline.Middleware) *edge {
	t.Helper()
	e := &edge{}
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Clone(r.Context()))
		e.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(e.upstream.Close)
	u, _ := url.Parse(e.upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	gate := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := pipeline.FromContext(r.Context())
		e.mu.Lock()
		e.last = ex
		e.mu.Unlock()
		if ex.Auth.Passed == 0 {
			f := ex.Auth.Failure
			if f.Challenge != "" {
				w.Header().Set("WWW-Authenticate", f.Challenge)
			}
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			problem.Write(w, r, f.Status, "", f.Detail)
			return
		}
		r.Header.Del("X-User-ID")
		if ex.Subject != "" {
			r.Header.Set("X-User-ID", ex.Subject)
		}
		if ex.Consumer != nil {
			r.Header.Set("X-Consumer-Name", ex.Consumer.Name)
		}
		proxy.ServeHTTP(w, r)
	})
	h := mw(gate)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &pipeline.Exchange{Start: time.Now(), RequestID: "req-1"}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// get sends a request with a bearer token ("" for none).
func (e *edge) get(t *testing.T, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/x", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.do(t, req)
}

func (e *edge) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (e *edge) lastUpstream(t *testing.T) *http.Request {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		t.Fatal("got no request at the upstream, want one")
	}
	return e.seen[len(e.seen)-1]
}

func testSpec(p *idp) *Spec {
	s := newSpec().(*Spec)
	s.Endpoint = p.srv.URL + "/introspect"
	s.ClientID = "portico gw" // a space: the Basic credentials must be form-encoded
	s.ClientSecret = "s3cr:t"
	return s
}

type setup struct {
	idp   *idp
	edge  *edge
	clock *clock
	logs  *bytes.Buffer
	env   *pipeline.BuildEnv
}

func start(t *testing.T, edit func(*Spec)) *setup {
	t.Helper()
	p := newIDP(t)
	spec := testSpec(p)
	if edit != nil {
		edit(spec)
	}
	if err := spec.Validate(config.Path{}); err != nil {
		t.Fatalf("test spec is invalid: %s", err.Error())
	}
	logs := &syncBuffer{}
	reg, err := consumer.New([]config.Consumer{{Name: "billing-app", ID: "c-7"}})
	if err != nil {
		t.Fatal(err)
	}
	env := &pipeline.BuildEnv{Route: "r1", Shared: pipeline.NewShared(), Consumers: reg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	c := newClock()
	mw, err := build(spec, env, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return &setup{idp: p, edge: newEdge(t, mw), clock: c, logs: &logs.Buffer, env: env}
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func active(sub string, extra ...any) map[string]any {
	m := map[string]any{"active": true, "sub": sub, "client_id": "billing-app",
		"scope": "read write", "iss": "https://idp.example", "aud": []any{"api", "other"}}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func TestActiveToken(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	s.idp.set("tok-1", active("user-42"))
	resp := s.edge.get(t, "tok-1")
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	up := s.edge.lastUpstream(t)
	if got := up.Header.Get("X-User-ID"); got != "user-42" {
		t.Errorf("got X-User-ID %q, want user-42", got)
	}
	if got := up.Header.Get("Authorization"); got != "Bearer tok-1" {
		t.Errorf("got upstream Authorization %q, want the token kept (hide_credentials off)", got)
	}
	ex := s.edge.last
	if ex.Credential != "introspection:billing-app" || ex.Consumer != nil {
		t.Errorf("got credential %q consumer %v, want introspection:billing-app and no consumer", ex.Credential, ex.Consumer)
	}
	if ex.Claims["scope"] != "read write" {
		t.Errorf("got claims %v, want the response fields", ex.Claims)
	}
	s.idp.mu.Lock()
	defer s.idp.mu.Unlock()
	wantAuth := "Basic " + basicB64("portico+gw", "s3cr%3At")
	if s.idp.auth[0] != wantAuth {
		t.Errorf("got client auth %q, want %q", s.idp.auth[0], wantAuth)
	}
	f := s.idp.forms[0]
	if f.Get("token") != "tok-1" || f.Get("token_type_hint") != "access_token" {
		t.Errorf("got form %v, want token and token_type_hint=access_token", f)
	}
}

func basicB64(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		edit          func(*Spec)
		resp          map[string]any // nil: inactive
		token         string
		wantStatus    int
		wantChallenge string
		wantCalls     int64
	}{
		{"missing token", nil, nil, "", 401, `Bearer realm="portico"`, 0},
		{"inactive", nil, nil, "tok", 401, `Bearer realm="portico", error="invalid_token"`, 1},
		{"malformed token", nil, nil, "a b\"c", 401, `Bearer realm="portico", error="invalid_token"`, 0},
		{"token over 8 KiB", nil, nil, strings.Repeat("a", 8<<10+1), 401, `Bearer realm="portico", error="invalid_token"`, 0},
		{"expired per exp", nil, active("u", "exp", 1.0), "tok", 401, `Bearer realm="portico", error="invalid_token"`, 1},
		{"missing scope", func(s *Spec) { s.RequiredScopes = []string{"read", "admin"} }, active("u"), "tok",
			403, `Bearer realm="portico", error="insufficient_scope", scope="read admin"`, 1},
		{"wrong issuer", func(s *Spec) { s.Issuer = "https://other" }, active("u"), "tok", 401,
			`Bearer realm="portico", error="invalid_token"`, 1},
		{"wrong audience", func(s *Spec) { s.Audience = "nope" }, active("u"), "tok", 401,
			`Bearer realm="portico", error="invalid_token"`, 1},
		{"unknown consumer", func(s *Spec) { s.ConsumerClaim = "sub" }, active("u"), "tok", 401,
			`Bearer realm="portico", error="invalid_token"`, 1},
		{"scopes present", func(s *Spec) { s.RequiredScopes = []string{"write", "read"} }, active("u"), "tok", 200, "", 1},
		{"issuer and audience match", func(s *Spec) { s.Issuer, s.Audience = "https://idp.example", "other" },
			active("u"), "tok", 200, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, tt.edit)
			if tt.resp != nil {
				s.idp.set(tt.token, tt.resp)
			}
			req, _ := http.NewRequest("GET", s.edge.srv.URL+"/x", nil)
			if tt.token != "" {
				req.Header["Authorization"] = []string{"Bearer " + tt.token}
			}
			resp := s.edge.do(t, req)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("got WWW-Authenticate %q, want %q", got, tt.wantChallenge)
			}
			if tt.wantStatus != 200 && resp.Header.Get("Content-Type") != problem.ContentType {
				t.Errorf("got Content-Type %q, want problem JSON", resp.Header.Get("Content-Type"))
			}
			if got := s.idp.calls.Load(); got != tt.wantCalls {
				t.Errorf("got %d introspection calls, want %d", got, tt.wantCalls)
			}
			if f := s.edge.last.Auth.Failure; tt.wantStatus != 200 && f.Presented != (tt.token != "") {
				t.Errorf("got Presented %v, want %v", f.Presented, tt.token != "")
			}
		})
	}
}

func TestConsumerClaim(t *testing.T) {
	t.Parallel()
	s := start(t, func(s *Spec) { s.ConsumerClaim = "client_id" })
	s.idp.set("tok", active("user-1"))
	if resp := s.edge.get(t, "tok"); resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	if got := s.edge.lastUpstream(t).Header.Get("X-Consumer-Name"); got != "billing-app" {
		t.Errorf("got consumer %q, want billing-app", got)
	}
	if c := s.edge.last.Consumer; c == nil || c.ID != "c-7" {
		t.Errorf("got consumer %v, want billing-app with id c-7", c)
	}
}

func TestTokenSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		hide   bool
		mutate func(r *http.Request)
		check  func(t *testing.T, up *http.Request)
	}{
		{"cookie kept", false, func(r *http.Request) { r.Header.Set("Cookie", "a=1; at=tok; b=2") },
			func(t *testing.T, up *http.Request) {
				if c, err := up.Cookie("at"); err != nil || c.Value != "tok" {
					t.Errorf("got cookies %q, want at=tok kept", up.Header.Get("Cookie"))
				}
			}},
		{"cookie hidden", true, func(r *http.Request) { r.Header.Set("Cookie", "a=1; at=tok; b=2") },
			func(t *testing.T, up *http.Request) {
				if got := up.Header.Get("Cookie"); got != "a=1; b=2" {
					t.Errorf("got Cookie %q, want a=1; b=2", got)
				}
			}},
		{"query hidden", true, func(r *http.Request) { r.URL.RawQuery = "x=1&access_token=tok" },
			func(t *testing.T, up *http.Request) {
				if got := up.URL.RawQuery; got != "x=1" {
					t.Errorf("got query %q, want x=1", got)
				}
			}},
		{"header hidden", true, func(r *http.Request) { r.Header.Set("Authorization", "bearer tok") },
			func(t *testing.T, up *http.Request) {
				if got := up.Header.Get("Authorization"); got != "" {
					t.Errorf("got Authorization %q, want it removed", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, func(s *Spec) { s.Cookie, s.Query, s.HideCredentials = "at", "access_token", tt.hide })
			s.idp.set("tok", active("u"))
			req, _ := http.NewRequest("GET", s.edge.srv.URL+"/x", nil)
			tt.mutate(req)
			if resp := s.edge.do(t, req); resp.StatusCode != 200 {
				t.Fatalf("got status %d, want 200", resp.StatusCode)
			}
			tt.check(t, s.edge.lastUpstream(t))
		})
	}
}

func TestPositiveCache(t *testing.T) {
	t.Parallel()
	s := start(t, func(s *Spec) { s.TTL = config.Duration(time.Minute) })
	s.idp.set("tok", active("u"))
	s.idp.set("short", active("u", "exp", float64(s.clock.now().Add(81*time.Second).Unix()))) // 20s after step 4
	steps := []struct {
		token     string
		advance   time.Duration
		wantCode  int
		wantCalls int64
	}{
		{"tok", 0, 200, 1},
		{"tok", 0, 200, 1},                // cached
		{"tok", 59 * time.Second, 200, 1}, // still inside ttl
		{"tok", 2 * time.Second, 200, 2},  // ttl passed: asked again
		{"short", 0, 200, 3},
		{"short", 19 * time.Second, 200, 3}, // cached until exp
		{"short", 2 * time.Second, 401, 4},  // exp passed: entry gone, token expired
	}
	for i, st := range steps {
		s.clock.advance(st.advance)
		resp := s.edge.get(t, st.token)
		if resp.StatusCode != st.wantCode {
			t.Errorf("step %d: got status %d, want %d", i, resp.StatusCode, st.wantCode)
		}
		if got := s.idp.calls.Load(); got != st.wantCalls {
			t.Errorf("step %d: got %d calls, want %d", i, got, st.wantCalls)
		}
	}
}

func TestNegativeCache(t *testing.T) {
	t.Parallel()
	s := start(t, func(s *Spec) { s.NegativeTTL = config.Duration(10 * time.Second) })
	for i, want := range []int64{1, 1, 2} {
		if i == 2 {
			s.clock.advance(11 * time.Second)
		}
		if resp := s.edge.get(t, "nope"); resp.StatusCode != 401 {
			t.Errorf("request %d: got status %d, want 401", i, resp.StatusCode)
		}
		if got := s.idp.calls.Load(); got != want {
			t.Errorf("request %d: got %d calls, want %d", i, got, want)
		}
	}
	// The token becomes active at the server, but the negative entry is gone only after negative_ttl.
	s.idp.set("nope", active("u"))
	if resp := s.edge.get(t, "nope"); resp.StatusCode != 401 {
		t.Errorf("got status %d, want 401 from the negative cache", resp.StatusCode)
	}
	s.clock.advance(11 * time.Second)
	if resp := s.edge.get(t, "nope"); resp.StatusCode != 200 {
		t.Errorf("got status %d, want 200 after negative_ttl", resp.StatusCode)
	}
}

func TestConcurrentMissesMakeOneCall(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	s.idp.set("tok", active("u"))
	release := make(chan struct{})
	s.idp.mu.Lock()
	s.idp.gate = release
	s.idp.mu.Unlock()
	const n = 100
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", s.edge.srv.URL+"/x", nil)
			req.Header.Set("Authorization", "Bearer tok")
			resp, err := s.edge.srv.Client().Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	// Hold the one call until every request is waiting on it.
	awaitWaiters(s.env, s.idp, n-1)
	if got := waiters(s.env, s.idp); got != n-1 {
		close(release)
		t.Fatalf("got %d requests waiting on the call in flight, want %d", got, n-1)
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("got status %d, want 200", c)
		}
	}
	if got := s.idp.calls.Load(); got != 1 {
		t.Errorf("got %d introspection calls, want 1", got)
	}
}

// awaitWaiters returns once n requests wait on a call in flight for the
// idp's store, or after 10 s. It is the one poll of these tests: a request
// that joins a call signals nothing but the count under the store's lock.
func awaitWaiters(env *pipeline.BuildEnv, p *idp, n int) {
	deadline := time.Now().Add(10 * time.Second)
	for waiters(env, p) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // poll interval
	}
}

// waiters counts requests blocked on a call in flight for the idp's store.
func waiters(env *pipeline.BuildEnv, p *idp) int {
	st, _ := pipeline.Lookup(env.Shared, storeKey(&Spec{Endpoint: p.srv.URL + "/introspect", ClientID: "portico gw"}))
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, c := range st.calls {
		n += int(c.waiting)
	}
	return n
}

func TestEndpointDown(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"stopped", "500", "badjson", "redirect", "huge"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := start(t, nil)
			s.idp.set("cached", active("u"))
			if resp := s.edge.get(t, "cached"); resp.StatusCode != 200 {
				t.Fatalf("got status %d, want 200", resp.StatusCode)
			}
			if mode == "stopped" {
				s.idp.srv.Close()
			} else {
				s.idp.mu.Lock()
				s.idp.mode = mode
				s.idp.mu.Unlock()
			}
			if resp := s.edge.get(t, "cached"); resp.StatusCode != 200 {
				t.Errorf("cached token: got status %d, want 200", resp.StatusCode)
			}
			resp := s.edge.get(t, "unknown-token")
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" {
				t.Errorf("new token: got status %d Retry-After %q, want 503 and 5", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if resp.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("got WWW-Authenticate %q on a 503, want none", resp.Header.Get("WWW-Authenticate"))
			}
			if f := s.edge.last.Auth.Failure; f.Detail != "the token could not be verified; try again" {
				t.Errorf("got detail %q", f.Detail)
			}
			// The failure is not cached: the token works once the endpoint does.
			s.clock.advance(2 * time.Minute) // the cached token's entry has expired too
			if resp := s.edge.get(t, "cached"); resp.StatusCode != 503 {
				t.Errorf("expired entry with the endpoint down: got status %d, want 503", resp.StatusCode)
			}
			logs := s.logs.String()
			if !strings.Contains(logs, "token introspection failed") {
				t.Errorf("got logs %q, want the failure logged", logs)
			}
			for _, tok := range []string{"unknown-token", "cached", "s3cr:t"} {
				if strings.Contains(logs, tok) {
					t.Errorf("got logs %q, want no token or secret %q in them", logs, tok)
				}
			}
		})
	}
}

func TestTimeoutHonoured(t *testing.T) {
	t.Parallel()
	s := start(t, func(s *Spec) { s.Timeout = config.Duration(200 * time.Millisecond) })
	s.idp.mu.Lock()
	s.idp.mode = "hang"
	s.idp.mu.Unlock()
	began := time.Now()
	resp := s.edge.get(t, "tok")
	took := time.Since(began)
	if resp.StatusCode != 503 {
		t.Errorf("got status %d, want 503", resp.StatusCode)
	}
	if took > 2*time.Second {
		t.Errorf("got an answer after %s, want about the 200ms timeout", took)
	}
}

func TestReloadKeepsCache(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	s.idp.set("tok", active("u"))
	s.edge.get(t, "tok")
	mw, err := build(testSpec(s.idp), s.env, s.clock.now) // the next snapshot
	if err != nil {
		t.Fatal(err)
	}
	e2 := newEdge(t, mw)
	if resp := e2.get(t, "tok"); resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	if got := s.idp.calls.Load(); got != 1 {
		t.Errorf("got %d calls after a reload, want 1 (cache kept)", got)
	}
}

func TestCacheBound(t *testing.T) {
	t.Parallel()
	st := newStore(3)
	now := time.Unix(1000, 0)
	res := &result{active: true}
	fetches := 0
	get := func(i int, at time.Time, ttl time.Duration) {
		_, _ = st.get(t.Context(), digest{byte(i)}, at, func() (*result, error) { fetches++; return res, nil },
			func(*result, time.Time) time.Duration { return ttl })
	}
	for i := range 5 {
		get(i, now, time.Minute)
	}
	if got := st.len(); got != 3 {
		t.Fatalf("got %d entries, want 3", got)
	}
	get(0, now, time.Minute) // evicted: fetched again
	get(4, now, time.Minute) // newest: still cached
	if fetches != 6 {
		t.Errorf("got %d fetches, want 6 (oldest evicted first)", fetches)
	}
	// Expired entries go first, even when the cache is not full.
	later := now.Add(2 * time.Minute)
	get(9, later, time.Minute)
	if got := st.len(); got != 1 {
		t.Errorf("got %d entries after expiry, want 1", got)
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	ok := func(s *Spec) {}
	tests := []struct {
		name    string
		edit    func(*Spec)
		wantErr string
	}{
		{"valid", ok, ""},
		{"localhost http", func(s *Spec) { s.Endpoint = "http://localhost:8080/i" }, ""},
		{"https", func(s *Spec) { s.Endpoint = "https://idp.example/i" }, ""},
		{"missing endpoint", func(s *Spec) { s.Endpoint = "" }, "endpoint: is required"},
		{"remote http", func(s *Spec) { s.Endpoint = "http://idp.example/i" }, "endpoint: must be https"},
		{"relative", func(s *Spec) { s.Endpoint = "/introspect" }, "endpoint: must be an absolute URL"},
		{"no client", func(s *Spec) { s.ClientID, s.ClientSecret = "", "" }, "client_secret: is required"},
		{"zero timeout", func(s *Spec) { s.Timeout = 0 }, "timeout: must be positive"},
		{"zero ttl", func(s *Spec) { s.TTL = 0 }, "ttl: must be positive"},
		{"zero entries", func(s *Spec) { s.MaxCacheEntries = 0 }, "max_cache_entries: must be at least 1"},
		{"scope with space", func(s *Spec) { s.RequiredScopes = []string{"a b"} }, "required_scopes[0]"},
		{"bad cookie", func(s *Spec) { s.Cookie = "a;b" }, "cookie: must be"},
		{"bad query", func(s *Spec) { s.Query = "a=b" }, "query: must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSpec().(*Spec)
			s.Endpoint, s.ClientID, s.ClientSecret = "http://127.0.0.1:9/i", "id", "secret"
			tt.edit(s)
			err := s.Validate(config.Path{}.Key("plugins").Key(Name))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got %q, want no error", err.Error())
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"+"\""):
				t.Errorf("got %q, which echoes the secret", err.Error())
			}
		})
	}
}

func TestValidToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tok  string
		want bool
	}{
		{"abc", true}, {"a-b.c_d~e+f/g==", true}, {"", false}, {"=", false}, {"a=b", false},
		{"a b", false}, {"a\"", false}, {strings.Repeat("a", 8<<10), true}, {strings.Repeat("a", 8<<10+1), false},
	}
	for _, tt := range tests {
		if got := validToken(tt.tok); got != tt.want {
			t.Errorf("validToken(%.20q) got %v, want %v", tt.tok, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"active":true,"sub":"u","scope":"a b","aud":["x",1],"exp":1e9}`))
	f.Add([]byte(`{"active":"true"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parse(b)
		if err == nil && r == nil {
			t.Fatal("got nil result and nil error")
		}
		if err == nil && !r.active && r.claims != nil {
			t.Fatal("got claims kept for an inactive token")
		}
	})
}

func FuzzValidToken(f *testing.F) {
	f.Add("abc==")
	f.Fuzz(func(t *testing.T, s string) {
		if validToken(s) && (strings.ContainsAny(s, " \"\\,;") || len(s) > maxTokenBytes) {
			t.Fatalf("accepted %q", s)
		}
	})
}

func BenchmarkCachedHit(b *testing.B) {
	p := &idp{tokens: map[string]map[string]any{"tok": active("u")}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	defer p.srv.Close()
	spec := newSpec().(*Spec)
	spec.Endpoint, spec.ClientID, spec.ClientSecret = p.srv.URL, "id", "secret"
	spec.RequiredScopes = []string{"read"}
	mw, err := build(spec, &pipeline.BuildEnv{Shared: pipeline.NewShared()}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer tok")
	ex := &pipeline.Exchange{}
	r = r.WithContext(pipeline.NewContext(r.Context(), ex))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r) // warm the cache
	if ex.Auth.Passed != 1 {
		b.Fatalf("got %d passes, want 1", ex.Auth.Passed)
	}
	b.ReportAllocs()
	for b.Loop() {
		*ex = pipeline.Exchange{}
		h.ServeHTTP(w, r)
	}
	if p.calls.Load() != 1 {
		b.Fatalf("got %d calls, want 1", p.calls.Load())
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body            string
		wantActive            bool
		wantSubject, wantCred string
		wantAud               []string
	}{
		{"sub and client_id", `{"active":true,"sub":"u1","client_id":"app","aud":"api"}`, true, "u1", "introspection:app", []string{"api"}},
		{"username without client_id", `{"active":true,"username":"bob"}`, true, "bob", "introspection:bob", nil},
		{"active as a string is inactive", `{"active":"true","sub":"u"}`, false, "", "", nil},
		{"inactive", `{"active":false}`, false, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("got error %q, want none", err.Error())
			}
			if r.active != tt.wantActive || r.subject != tt.wantSubject || r.credential != tt.wantCred ||
				strings.Join(r.audience, ",") != strings.Join(tt.wantAud, ",") {
				t.Errorf("got active %v subject %q credential %q aud %v, want %v %q %q %v",
					r.active, r.subject, r.credential, r.audience, tt.wantActive, tt.wantSubject, tt.wantCred, tt.wantAud)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `null`, `{"active":true} {}`, `{"active":`} {
		if _, err := parse([]byte(bad)); err == nil {
			t.Errorf("parse(%q) got nil error, want one", bad)
		}
	}
}

// TestMoreThanOneTokenRefused: tokens in two places (header and cookie,
// the cookie twice, the query parameter twice) get 400 without a call to
// the introspection endpoint or the upstream.
func TestMoreThanOneTokenRefused(t *testing.T) {
	t.Parallel()
	s := start(t, func(s *Spec) { s.Cookie, s.Query = "at", "access_token" })
	s.idp.set("tok", active("u"))
	for _, tt := range []struct {
		name   string
		mutate func(r *http.Request)
	}{
		{"header and cookie", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer tok")
			r.Header.Set("Cookie", "at=other")
		}},
		{"cookie twice", func(r *http.Request) { r.Header.Set("Cookie", "at=tok; b=1; at=other") }},
		{"cookie lines", func(r *http.Request) { r.Header["Cookie"] = []string{"at=tok", "at=other"} }},
		{"query twice", func(r *http.Request) { r.URL.RawQuery = "access_token=tok&access_token=other" }},
		{"header and query", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer tok")
			r.URL.RawQuery = "access_token=other"
		}},
	} {
		req, _ := http.NewRequest("GET", s.edge.srv.URL+"/x", nil)
		tt.mutate(req)
		if resp := s.edge.do(t, req); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: got status %d, want 400", tt.name, resp.StatusCode)
		}
	}
	s.edge.mu.Lock()
	n := len(s.edge.seen)
	s.edge.mu.Unlock()
	if n != 0 || s.idp.calls.Load() != 0 {
		t.Errorf("got %d requests upstream and %d introspection calls, want none", n, s.idp.calls.Load())
	}
}
