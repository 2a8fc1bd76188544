package ratelimit_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/consumer"
	"github.com/portico-gateway/portico/internal/limiter"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/plugins/authtest"
	"github.com/portico-gateway/portico/internal/plugins/ratelimit"
	"github.com/portico-gateway/portico/internal/redistest"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/telemetry/telemetrytest"
)

// clock is a manual clock for the memory limiter.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// route is one route of a test gateway: its path prefix and its plugins.
type route struct {
	name    string
	plugins []pipeline.Configured
}

// gateway is a real edge server in front of per-route chains and a real
// upstream. The edge plays the part of the gateway's edge and of the
// authentication phase: the client address is the TCP peer unless the
// test header X-Test-Peer names another (the edge decides, never the
// plugin), and X-Test-Consumer ("id" or "id/tier"), X-Test-Credential and
// X-Test-Claim-NAME set the identity an authentication plugin would.
type gateway struct {
	url     string
	block   chan struct{} // requests to /*/slow wait on it in the upstream
	entered chan struct{}
}

type setup struct {
	routes []route
	shared *pipeline.Shared
	tiers  map[string]config.Tier
	tel    *telemetry.Telemetry
	store  *config.Store
	scope  pipeline.Scope // default ScopeRoute
	// consumers are the consumers' own rate_limit settings, by name.
	consumers map[string]pipeline.Configured
}

func start(t *testing.T, s setup) *gateway {
	t.Helper()
	g := &gateway{block: make(chan struct{}), entered: make(chan struct{}, 16)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			g.entered <- struct{}{}
			<-g.block
		}
		_, _ = io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	upURL := up.URL
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, upURL+r.URL.Path, nil)
		if err != nil {
			t.Error(err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	if s.shared == nil {
		s.shared = pipeline.NewShared()
	}
	if s.scope == 0 {
		s.scope = pipeline.ScopeRoute
	}
	handlers := make(map[string]http.Handler)
	for _, rt := range s.routes {
		chain := make([]pipeline.Configured, len(rt.plugins))
		for i, c := range rt.plugins {
			c.Scope = s.scope
			chain[i] = c
		}
		h, err := pipeline.Chain(chain, pipeline.BuildEnv{Route: rt.name, Service: "svc", Shared: s.shared,
			Tiers: s.tiers, Telemetry: s.tel, Store: s.store, ConsumerPlugins: s.consumers}, proxy)
		if err != nil {
			t.Fatalf("build chain: %s", err.Error())
		}
		handlers[rt.name] = h
	}
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		h, ok := handlers[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ip, _ := netip.ParseAddr(host)
		if p := r.Header.Get("X-Test-Peer"); p != "" {
			ip = netip.MustParseAddr(p)
		}
		ex := &pipeline.Exchange{Start: time.Now(), ClientIP: ip, Route: name, Service: "svc", RequestID: "req-1"}
		if c := r.Header.Get("X-Test-Consumer"); c != "" {
			id, tier, _ := strings.Cut(c, "/")
			ex.Consumer = &consumer.Consumer{Name: id, ID: id, Tier: tier}
		}
		ex.Credential = r.Header.Get("X-Test-Credential")
		for k, v := range r.Header {
			if claim, ok := strings.CutPrefix(k, "X-Test-Claim-"); ok {
				if ex.Claims == nil {
					ex.Claims = make(map[string]any)
				}
				ex.Claims[strings.ToLower(claim)] = v[0]
			}
		}
		h.ServeHTTP(w, r.WithContext(pipeline.NewContext(r.Context(), ex)))
	}))
	t.Cleanup(edge.Close)
	g.url = edge.URL
	return g
}

// memory puts a memory limiter with a manual clock in shared.
func memory(shared *pipeline.Shared, c *clock) {
	pipeline.Get(shared, ratelimit.MemoryKey, func() limiter.Limiter {
		return limiter.NewMemory(limiter.MemoryOptions{Now: c.Now, SweepInterval: -1})
	})
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, g *gateway, path string, header ...string) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func rl(t *testing.T, src string) pipeline.Configured {
	t.Helper()
	return authtest.Configure(t, ratelimit.Registration(), src)
}

func iprl(t *testing.T, src string) pipeline.Configured {
	t.Helper()
	return authtest.Configure(t, ratelimit.IPRegistration(), src)
}

// statuses sends n requests and returns their statuses joined by spaces.
func statuses(t *testing.T, g *gateway, n int, path string, header ...string) string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, strconv.Itoa(do(t, g, path, header...).status))
	}
	return strings.Join(out, " ")
}

func TestHeadersThroughASequence(t *testing.T) {
	t.Parallel()
	c, shared := newClock(), pipeline.NewShared()
	memory(shared, c)
	g := start(t, setup{shared: shared, routes: []route{{"a", []pipeline.Configured{
		rl(t, "{limits: [{limit: 3, window: 1m}], key: ip, x_headers: true}")}}}})
	type want struct {
		status                    int
		limit, remaining, retry   string
		xLimit, xRemaining, reset string
	}
	steps := []struct {
		advance time.Duration
		want    want
	}{
		{0, want{200, "3", "2", "", "3", "2", "20"}},
		{0, want{200, "3", "1", "", "3", "1", "40"}},
		{0, want{200, "3", "0", "", "3", "0", "60"}},
		{0, want{429, "3", "0", "20", "3", "0", "60"}},
		{19 * time.Second, want{429, "3", "0", "1", "3", "0", "41"}},
		{time.Second, want{200, "3", "0", "", "3", "0", "60"}},
		{40 * time.Second, want{200, "3", "1", "", "3", "1", "40"}},
	}
	for i, st := range steps {
		c.Advance(st.advance)
		r := do(t, g, "/a/x")
		got := want{r.status, r.header.Get("RateLimit-Limit"), r.header.Get("RateLimit-Remaining"), r.header.Get("Retry-After"),
			r.header.Get("X-RateLimit-Limit"), r.header.Get("X-RateLimit-Remaining"), r.header.Get("RateLimit-Reset")}
		if got != st.want {
			t.Errorf("step %d: got %+v, want %+v", i, got, st.want)
		}
		if r.status == http.StatusTooManyRequests {
			var p struct {
				Status    int    `json:"status"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Status != 429 || p.RequestID != "req-1" {
				t.Errorf("step %d: got body %s, want problem JSON with status 429 and request_id", i, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("step %d: got Content-Type %q, want application/problem+json", i, ct)
			}
		}
	}
}

func TestMostRestrictiveLimitIsReported(t *testing.T) {
	t.Parallel()
	c, shared := newClock(), pipeline.NewShared()
	memory(shared, c)
	g := start(t, setup{shared: shared, routes: []route{{"a", []pipeline.Configured{
		rl(t, "{limits: [{name: second, limit: 10, window: 1s}, {name: minute, limit: 3, window: 1m}], key: ip}")}}}})
	r := do(t, g, "/a")
	if got := r.header.Get("RateLimit-Limit") + "/" + r.header.Get("RateLimit-Remaining"); got != "3/2" {
		t.Errorf("got limit/remaining %s, want 3/2 (the minute limit)", got)
	}
	if got := statuses(t, g, 3, "/a"); got != "200 200 429" {
		t.Errorf("got %s, want 200 200 429", got)
	}
}

func TestNoHeadersWhenOff(t *testing.T) {
	t.Parallel()
	g := start(t, setup{routes: []route{{"a", []pipeline.Configured{rl(t, "{limits: [{limit: 1, window: 1m}], headers: false}")}}}})
	r := do(t, g, "/a")
	if r.status != 200 || r.header.Get("RateLimit-Limit") != "" {
		t.Errorf("got %d with RateLimit-Limit %q, want 200 without it", r.status, r.header.Get("RateLimit-Limit"))
	}
	if r := do(t, g, "/a"); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("got %d with Retry-After %q, want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
}

func TestRoutesCountApartUnlessShared(t *testing.T) {
	t.Parallel()
	spec := "{limits: [{limit: 2, window: 1m}], key: ip}"
	shared := "{limits: [{limit: 2, window: 1m}], key: ip, share: pool}"
	g := start(t, setup{routes: []route{
		{"a", []pipeline.Configured{rl(t, spec)}},
		{"b", []pipeline.Configured{rl(t, spec)}},
		{"c", []pipeline.Configured{rl(t, shared)}},
		{"d", []pipeline.Configured{rl(t, shared)}},
	}})
	if got := statuses(t, g, 3, "/a"); got != "200 200 429" {
		t.Errorf("route a: got %s, want 200 200 429", got)
	}
	if got := statuses(t, g, 3, "/b"); got != "200 200 429" {
		t.Errorf("route b after a: got %s, want 200 200 429 (its own counter)", got)
	}
	if got := statuses(t, g, 1, "/c") + " " + statuses(t, g, 2, "/d"); got != "200 200 429" {
		t.Errorf("routes c and d with share: got %s, want 200 200 429 (one counter)", got)
	}
}

// TestIPRateLimitAndRateLimitNeverShareCounters: ip_rate_limit and an
// ip-keyed rate_limit with the same limit name on one route must count
// apart; sharing one counter would charge every request twice.
func TestIPRateLimitAndRateLimitNeverShareCounters(t *testing.T) {
	t.Parallel()
	g := start(t, setup{routes: []route{
		{"a", []pipeline.Configured{
			iprl(t, "{limits: [{name: per_min, limit: 3, window: 1m}]}"),
			rl(t, "{limits: [{name: per_min, limit: 3, window: 1m}], key: ip}"),
		}},
	}})
	if got := statuses(t, g, 4, "/a"); got != "200 200 200 429" {
		t.Errorf("got %s, want 200 200 200 429 (each plugin counts the request once)", got)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  string
		// same and other are headers of two requests; after one request
		// with same, another with same is refused and one with other is
		// allowed.
		same, other []string
	}{
		{"ip", "ip", []string{"X-Test-Peer", "10.0.0.1"}, []string{"X-Test-Peer", "10.0.0.2"}},
		{"consumer", "consumer", []string{"X-Test-Consumer", "alice", "X-Test-Peer", "10.0.0.1"},
			[]string{"X-Test-Consumer", "bob", "X-Test-Peer", "10.0.0.1"}},
		{"consumer across addresses", "consumer", []string{"X-Test-Consumer", "alice"},
			[]string{"X-Test-Consumer", "alice2"}},
		{"consumer falls back to ip", "consumer", []string{"X-Test-Peer", "10.0.0.1"}, []string{"X-Test-Peer", "10.0.0.2"}},
		{"credential", "credential", []string{"X-Test-Credential", "key_auth:aaa"}, []string{"X-Test-Credential", "key_auth:bbb"}},
		{"header", "header:x-tenant", []string{"X-Tenant", "t1"}, []string{"X-Tenant", "t2"}},
		{"claim", "claim:org", []string{"X-Test-Claim-Org", "o1"}, []string{"X-Test-Claim-Org", "o2"}},
		{"combination", "[consumer, header:x-tenant]", []string{"X-Test-Consumer", "alice", "X-Tenant", "t1"},
			[]string{"X-Test-Consumer", "alice", "X-Tenant", "t2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := start(t, setup{routes: []route{{"a", []pipeline.Configured{
				rl(t, "{limits: [{limit: 1, window: 1m}], key: "+tt.key+"}")}}}})
			if r := do(t, g, "/a", tt.same...); r.status != 200 {
				t.Fatalf("first request: got %d, want 200", r.status)
			}
			if r := do(t, g, "/a", tt.same...); r.status != 429 {
				t.Errorf("same key: got %d, want 429", r.status)
			}
			if r := do(t, g, "/a", tt.other...); r.status != 200 {
				t.Errorf("other key: got %d, want 200", r.status)
			}
		})
	}
}

// TestIPKeyIgnoresForwardedFor checks that the plugin keys on the address
// the edge decided, not on X-Forwarded-For or X-Real-IP.
func TestIPKeyIgnoresForwardedFor(t *testing.T) {
	t.Parallel()
	g := start(t, setup{routes: []route{{"a", []pipeline.Configured{iprl(t, "{limits: [{limit: 2, window: 1m}]}")}}}})
	var got []string
	for i := range 3 {
		r := do(t, g, "/a", "X-Forwarded-For", "192.0.2."+strconv.Itoa(i+1), "X-Real-IP", "198.51.100."+strconv.Itoa(i+1))
		got = append(got, strconv.Itoa(r.status))
	}
	if strings.Join(got, " ") != "200 200 429" {
		t.Errorf("got %s, want 200 200 429: forwarding headers must not change the key", strings.Join(got, " "))
	}
	if r := do(t, g, "/a", "X-Test-Peer", "10.9.9.9"); r.status != 200 {
		t.Errorf("another client address: got %d, want 200", r.status)
	}
}

func TestTiers(t *testing.T) {
	t.Parallel()
	min := config.Duration(time.Minute)
	tiers := map[string]config.Tier{
		"free":       {RateLimit: config.TierLimits{Limits: []config.RateLimit{{Limit: 2, Window: min}}}},
		"paid":       {RateLimit: config.TierLimits{Limits: []config.RateLimit{{Limit: 3, Window: min}}}},
		"premium":    {RateLimit: config.TierLimits{Limits: []config.RateLimit{{Limit: 5, Window: min}}}},
		"enterprise": {RateLimit: config.TierLimits{Unlimited: true}},
	}
	for _, tl := range tiers {
		for i := range tl.RateLimit.Limits {
			tl.RateLimit.Limits[i].ApplyDefaults()
		}
	}
	g := start(t, setup{tiers: tiers, routes: []route{{"pay", []pipeline.Configured{
		rl(t, "{tier: true, key: consumer, limits: [{limit: 1, window: 1m}]}")}}}})
	tests := []struct {
		consumer string
		want     string
		limit    string
	}{
		{"f/free", "200 200 429", "2"},
		{"p/paid", "200 200 200 429", "3"},
		{"pr/premium", "200 200 200 200 200 429", "5"},
		{"e/enterprise", "200 200 200 200 200 200 200 200", ""},
		{"", "200 429", "1"}, // no consumer: the plugin's own limits, per ip
	}
	for _, tt := range tests {
		var h []string
		if tt.consumer != "" {
			h = []string{"X-Test-Consumer", tt.consumer}
		}
		if got := statuses(t, g, strings.Count(tt.want, " ")+1, "/pay", h...); got != tt.want {
			t.Errorf("consumer %q: got %s, want %s", tt.consumer, got, tt.want)
		}
		if got := do(t, g, "/pay", h...).header.Get("RateLimit-Limit"); got != tt.limit {
			t.Errorf("consumer %q: got RateLimit-Limit %q, want %q", tt.consumer, got, tt.limit)
		}
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	g := start(t, setup{routes: []route{{"a", []pipeline.Configured{
		rl(t, "{limits: [{limit: 100, window: 1s}], key: ip, concurrency: 1}")}}}})
	done := make(chan result)
	go func() { done <- do(t, g, "/a/slow") }()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the upstream")
	}
	r := do(t, g, "/a/fast")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("second in flight: got %d with Retry-After %q, want 503 with 1", r.status, r.header.Get("Retry-After"))
	}
	if r := do(t, g, "/a/fast", "X-Test-Peer", "10.0.0.7"); r.status != 200 {
		t.Errorf("another caller: got %d, want 200", r.status)
	}
	close(g.block)
	if r := <-done; r.status != 200 {
		t.Errorf("first request: got %d, want 200", r.status)
	}
	if r := do(t, g, "/a/fast"); r.status != 200 {
		t.Errorf("after the first finished: got %d, want 200", r.status)
	}
}

// unavailable is a store that cannot be reached with on_error:
// fail_closed, as the resilient limiter reports it.
type unavailable struct{}

func (unavailable) Allow(context.Context, string, limiter.Rule) (limiter.Decision, error) {
	return limiter.Decision{}, limiter.ErrUnavailable
}

func TestFailClosed(t *testing.T) {
	t.Parallel()
	shared := pipeline.NewShared()
	pipeline.Get(shared, ratelimit.MemoryKey, func() limiter.Limiter { return unavailable{} })
	tel := telemetry.New()
	g := start(t, setup{shared: shared, tel: tel, routes: []route{{"a", []pipeline.Configured{
		rl(t, "{limits: [{limit: 100, window: 1s}], key: ip}")}}}})
	r := do(t, g, "/a")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("got %d with Retry-After %q, want 503 with 1", r.status, r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, `"detail":"the rate limit could not be checked; retry shortly"`) {
		t.Errorf("got body %s, want the client-facing detail", r.body)
	}
	if got, _ := telemetrytest.Scrape(t, tel).Value("portico_ratelimit_store_errors_total"); got != 1 {
		t.Errorf("got %v store errors, want 1", got)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	tel := telemetry.New()
	shared := pipeline.NewShared()
	g := start(t, setup{shared: shared, tel: tel, routes: []route{{"a", []pipeline.Configured{
		rl(t, "{limits: [{name: m, limit: 1, window: 1m}], key: ip}")}}}})
	statuses(t, g, 3, "/a")
	// A second build (a reload) counts on the same series.
	g = start(t, setup{shared: shared, tel: tel, routes: []route{{"a", []pipeline.Configured{
		rl(t, "{limits: [{name: m, limit: 1, window: 1m}], key: ip}")}}}})
	statuses(t, g, 1, "/a")
	page := telemetrytest.Scrape(t, tel)
	for series, want := range map[string]float64{
		`portico_ratelimit_decisions_total{limit="m",result="allowed",route="a"}`: 1,
		`portico_ratelimit_decisions_total{limit="m",result="limited",route="a"}`: 3,
		`portico_ratelimit_store_duration_seconds_count`:                          4,
		`portico_ratelimit_store_errors_total`:                                    0,
	} {
		if got, ok := page.Value(series); !ok || got != want {
			t.Errorf("got %s = %v (found %t), want %v", series, got, ok, want)
		}
	}
}

// TestMetricsLabels: decisions are labelled with the route the chain
// serves, also for a consumer's own limit (one budget, counted per
// route), with the tier's limit names, and with limit="concurrency" for
// concurrency refusals.
func TestMetricsLabels(t *testing.T) {
	t.Parallel()
	tel := telemetry.New()
	g := start(t, setup{tel: tel,
		tiers: map[string]config.Tier{"free": {RateLimit: config.TierLimits{
			Limits: []config.RateLimit{{Name: "daily", Limit: 1, Window: config.Duration(24 * time.Hour)}}}}},
		routes: []route{
			{"a", []pipeline.Configured{rl(t, "{limits: [{name: m, limit: 5, window: 1m}], key: consumer, tier: true}")}},
			{"open", []pipeline.Configured{consumerOnly()}},
			{"c", []pipeline.Configured{rl(t, "{limits: [{name: m, limit: 5, window: 1m}], concurrency: 1, key: ip}")}},
		},
		consumers: map[string]pipeline.Configured{
			"gold": consumerRL(t, "{limits: [{name: per_minute, limit: 1, window: 1m}]}"),
		},
	})
	if got := statuses(t, g, 2, "/a", "X-Test-Consumer", "f/free"); got != "200 429" {
		t.Fatalf("free on a: got %s, want 200 429", got)
	}
	if got := statuses(t, g, 1, "/a", "X-Test-Consumer", "gold") + " " + statuses(t, g, 1, "/open", "X-Test-Consumer", "gold"); got != "200 429" {
		t.Fatalf("gold on a then open: got %s, want 200 429", got)
	}
	done := make(chan result, 1)
	go func() { done <- do(t, g, "/c/slow") }()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the upstream")
	}
	if r := do(t, g, "/c"); r.status != http.StatusServiceUnavailable {
		t.Errorf("second request in flight: got %d, want 503", r.status)
	}
	close(g.block)
	<-done

	page := telemetrytest.Scrape(t, tel)
	for series, want := range map[string]float64{
		`portico_ratelimit_decisions_total{limit="tier.free.daily",result="allowed",route="a"}`: 1,
		`portico_ratelimit_decisions_total{limit="tier.free.daily",result="limited",route="a"}`: 1,
		`portico_ratelimit_decisions_total{limit="per_minute",result="allowed",route="a"}`:      1,
		`portico_ratelimit_decisions_total{limit="per_minute",result="limited",route="open"}`:   1,
		`portico_ratelimit_decisions_total{limit="concurrency",result="limited",route="c"}`:     1,
		`portico_ratelimit_decisions_total{limit="m",result="allowed",route="c"}`:               1,
	} {
		if got, ok := page.Value(series); !ok || got != want {
			t.Errorf("got %s = %v (found %t), want %v", series, got, ok, want)
		}
	}
	// Series appear with their first decision, as they always have.
	for _, absent := range []string{
		`portico_ratelimit_decisions_total{limit="m",result="allowed",route="a"}`,
		`portico_ratelimit_decisions_total{limit="per_minute",result="limited",route="a"}`,
		`portico_ratelimit_decisions_total{limit="concurrency",result="allowed",route="c"}`,
		`route=""`,
	} {
		if strings.Contains(string(page), absent) {
			t.Errorf("got %s, want no such series", absent)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reg  pipeline.Registration
		src  string
		want string
	}{
		{ratelimit.Registration(), "{key: ip}", "routes[0].plugins.rate_limit.limits: at least one limit is required"},
		{ratelimit.Registration(), "{limits: [{limit: 0, window: 1s}]}", "routes[0].plugins.rate_limit.limits[0].limit: must be at least 1"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 48h}]}", "routes[0].plugins.rate_limit.limits[0].window: must be between 1s and 24h"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s, burst: -1}]}", "routes[0].plugins.rate_limit.limits[0].burst: must be at least 1"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s, algorithm: token}]}", "routes[0].plugins.rate_limit.limits[0].algorithm: must be one of gcra, sliding_window, fixed_window"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], key: user}", "routes[0].plugins.rate_limit.key: must be ip, consumer, credential, route, header:NAME or claim:NAME"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], key: [ip, 'header:bad name']}", "routes[0].plugins.rate_limit.key[1]: must be ip, consumer, credential, route, header:NAME or claim:NAME"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], key: [ip, ip]}", "routes[0].plugins.rate_limit.key[1]: is listed twice"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], key: []}", "routes[0].plugins.rate_limit.key: must name at least one key"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], mode: batched}", "routes[0].plugins.rate_limit.limits[0].algorithm: must be fixed_window with mode: batched (got gcra)"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s, algorithm: fixed_window}, {limit: 9, window: 1m, algorithm: sliding_window}], mode: batched}", "routes[0].plugins.rate_limit.limits[1].algorithm: must be fixed_window with mode: batched (got sliding_window)"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s, algorithm: fixed_window}], mode: batched, lease: -1}", "routes[0].plugins.rate_limit.lease: must be between 0 (1% of each limit) and 1000000"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], lease: 5}", "routes[0].plugins.rate_limit.lease: is only used with mode: batched"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], mode: leased}", "routes[0].plugins.rate_limit.mode: must be exact or batched"},
		{ratelimit.Registration(), "{limits: [{limit: 100, window: 1s, algorithm: fixed_window}], mode: batched, lease: 10}", ""},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], mode: exact}", ""},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], concurrency: -1}", "routes[0].plugins.rate_limit.concurrency: must be between 0 (off) and 1000000"},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], share: 'a b'}", `routes[0].plugins.rate_limit.share: must be letters, digits, ".", "_" or "-"`},
		{ratelimit.Registration(), "{tier: true}", ""},
		{ratelimit.Registration(), "{limits: [{limit: 1, window: 1s}], key: [consumer, route, 'header:X-Tenant', 'claim:org', credential]}", ""},
		{ratelimit.IPRegistration(), "{}", "routes[0].plugins.ip_rate_limit.limits: at least one limit is required"},
		{ratelimit.IPRegistration(), "{limits: [{limit: 1, window: 1s}], key: consumer}", `routes[0].plugins.ip_rate_limit.key: unknown key "key"`},
		{ratelimit.IPRegistration(), "{limits: [{limit: 10, window: 1s, burst: 20}]}", ""},
	}
	for _, tt := range tests {
		_, err := authtest.TryConfigure(tt.reg, tt.src)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.want == "" && got != "" || tt.want != "" && !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s %s: got %q, want %q", tt.reg.Name, tt.src, got, tt.want)
		}
	}
}

// TestRedisIsExactAcrossInstances runs two gateways (two Shared
// registries, as two processes have) against one real Redis: together
// they allow exactly the limit.
func TestRedisIsExactAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := &config.Store{Redis: &config.Redis{URL: config.Secret(srv.URL()), Timeout: config.Duration(time.Second),
		OnError: "fail_closed", Instances: 2, KeyPrefix: "test:"}}
	var gs []*gateway
	for range 2 {
		gs = append(gs, startWithStore(t, store, "{limits: [{limit: 4, window: 1m}], key: ip}"))
	}
	var got []string
	for i := range 6 {
		got = append(got, strconv.Itoa(do(t, gs[i%2], "/a").status))
	}
	if strings.Join(got, " ") != "200 200 200 200 429 429" {
		t.Errorf("got %s, want 200 200 200 200 429 429", strings.Join(got, " "))
	}
	srv.Stop()
	r := do(t, gs[0], "/a")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("redis down, fail_closed: got %d with Retry-After %q, want 503 with 1", r.status, r.header.Get("Retry-After"))
	}
}

// TestRedisFailOpen checks that an unreachable Redis with fail_open lets
// requests through under the local share of the limit.
func TestRedisFailOpen(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := &config.Store{Redis: &config.Redis{URL: config.Secret(srv.URL()), Timeout: config.Duration(time.Second),
		OnError: "fail_open", Instances: 2, KeyPrefix: "test:"}}
	g := startWithStore(t, store, "{limits: [{limit: 4, window: 1m}], key: ip}")
	srv.Stop()
	if got := statuses(t, g, 3, "/a"); got != "200 200 429" {
		t.Errorf("got %s, want 200 200 429 (half of the limit for one of two instances)", got)
	}
}

func startWithStore(t *testing.T, store *config.Store, spec string) *gateway {
	t.Helper()
	shared := pipeline.NewShared()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g := start(t, setup{shared: shared, store: store, routes: []route{{"a", []pipeline.Configured{rl(t, spec)}}}})
	for _, r := range shared.TakePending() {
		go r.Run(ctx)
	}
	return g
}

// TestBatchedAcrossInstances runs two gateways in mode: batched against one
// real Redis: together they never allow more than the limit.
func TestBatchedAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := &config.Store{Redis: &config.Redis{URL: config.Secret(srv.URL()), Timeout: config.Duration(time.Second),
		OnError: "fail_closed", Instances: 2, KeyPrefix: "test:"}}
	spec := "{limits: [{limit: 4, window: 24h, algorithm: fixed_window}], key: ip, mode: batched, lease: 2}"
	gs := []*gateway{startWithStore(t, store, spec), startWithStore(t, store, spec)}
	var got []string
	for i := range 6 {
		got = append(got, strconv.Itoa(do(t, gs[i%2], "/a").status))
	}
	// Each instance leases 2 of the 4 tokens.
	if strings.Join(got, " ") != "200 200 200 200 429 429" {
		t.Errorf("got %s, want 200 200 200 200 429 429", strings.Join(got, " "))
	}
}

// TestBatchedNeedsRedisAndFixedTiers checks the build errors of mode:
// batched that depend on the rest of the config.
func TestBatchedNeedsRedisAndFixedTiers(t *testing.T) {
	t.Parallel()
	store := &config.Store{Redis: &config.Redis{URL: "redis://127.0.0.1:1", Timeout: config.Duration(time.Second),
		OnError: "fail_open", Instances: 1}}
	tiers := map[string]config.Tier{
		"gold": {RateLimit: config.TierLimits{Limits: []config.RateLimit{{Limit: 10, Window: config.Duration(time.Second)}}}},
	}
	tests := []struct {
		name  string
		spec  string
		store *config.Store
		want  string
	}{
		{"no store", "{limits: [{limit: 4, window: 1m, algorithm: fixed_window}], mode: batched}", nil,
			"rate_limit: mode: batched requires store.redis"},
		{"gcra tier", "{limits: [{limit: 4, window: 1m, algorithm: fixed_window}], tier: true, mode: batched}", store,
			"tiers.gold.rate_limit.limits[0].algorithm: must be fixed_window: a rate_limit with tier: true uses it in mode: batched (got gcra)"},
		{"ok", "{limits: [{limit: 4, window: 1m, algorithm: fixed_window}], mode: batched}", store, ""},
		{"tiers unused", "{limits: [{limit: 4, window: 1m, algorithm: fixed_window}], mode: batched}", store, ""},
	}
	for _, tt := range tests {
		_, err := pipeline.Chain([]pipeline.Configured{rl(t, tt.spec)}, pipeline.BuildEnv{Route: "r", Shared: pipeline.NewShared(),
			Tiers: tiers, Store: tt.store}, http.NotFoundHandler())
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
