package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/redistest"
)

// exactRoutes is two routes limited to 300 requests per tenant: /gcra per
// minute (gcra, burst 300) and /fixed per hour (fixed_window; an hour so a
// window edge is rarely crossed during a burst).
const exactRoutes = `services:
  - {name: svc, url: %q}
routes:
  - name: gcra
    match: {paths: ["/gcra"]}
    service: svc
    plugins:
      rate_limit:
        limits: [{limit: 300, window: 1m, algorithm: gcra, burst: 300}]
        key: header:X-Tenant
  - name: fixed
    match: {paths: ["/fixed"]}
    service: svc
    plugins:
      rate_limit:
        limits: [{limit: 300, window: 1h, algorithm: fixed_window}]
        key: header:X-Tenant
`

// checkExact sends 1,000 requests of one tenant spread over gws and checks
// that exactly the limit passed (within tol, plus what gcra legitimately
// refills at 5/s while the burst runs), that the rest got 429 and that the
// upstream saw exactly the allowed ones.
func checkExact(t *testing.T, gws []*gw, up *upstream, tol int64) {
	t.Helper()
	const limit, total, workers = 300, 1000, 24
	c := newClient(t)
	for i, g := range gws { // open connections (client and store) first
		if st, err := quickGet(c, g.URL("/gcra"), "X-Tenant", fmt.Sprintf("warm-%s-%d", t.Name(), i)); err != nil || st != http.StatusOK {
			t.Fatalf("warm-up on gateway %d: status %d, err %v", i, st, err)
		}
	}
	for _, tc := range []struct {
		path   string
		window time.Duration
		refill bool // gcra restores one request every window/limit
	}{
		{"/gcra", time.Minute, true},
		{"/fixed", time.Hour, false},
	} {
		t.Run(tc.path[1:], func(t *testing.T) {
			urls := make([]string, len(gws))
			for i, g := range gws {
				urls[i] = g.URL(tc.path)
			}
			for attempt := 0; ; attempt++ {
				tenant := fmt.Sprintf("tenant-%s-%d", t.Name(), attempt)
				before := countPath(up, tc.path)
				edge := time.Now().Truncate(tc.window)
				res := burst(t, c, urls, total, workers, "X-Tenant", tenant)
				if !tc.refill && time.Now().Truncate(tc.window) != edge && attempt < 2 {
					t.Logf("attempt %d crossed a %s window edge; retrying with a new tenant", attempt, tc.window)
					continue
				}
				if len(res.errs) > 0 {
					t.Fatalf("%d requests failed, first: %s", len(res.errs), res.errs[0])
				}
				if len(res.other) > 0 {
					t.Errorf("statuses other than 200 and 429: %v", res.other)
				}
				var refill int64
				if tc.refill {
					refill = int64(res.elapsed / (time.Minute / limit))
				}
				if res.allowed < limit-tol || res.allowed > limit+tol+refill {
					t.Errorf("allowed: got %d of %d in %s, want %d (±%d, +%d refilled)", res.allowed, total, res.elapsed, limit, tol, refill)
				}
				if res.allowed+res.limited != total {
					t.Errorf("429s: got %d, want %d (the rest)", res.limited, total-res.allowed)
				}
				if got := int64(countPath(up, tc.path) - before); got != res.allowed {
					t.Errorf("upstream saw %d requests, want the %d allowed", got, res.allowed)
				}
				t.Logf("%d allowed, %d limited in %s", res.allowed, res.limited, res.elapsed)
				return
			}
		})
	}
}

// TestRateLimitExactAcrossInstances runs three gateways sharing one Redis:
// 1,000 concurrent requests of one tenant spread over them pass 300.
func TestRateLimitExactAcrossInstances(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	up := newUpstream(t, "svc", nil)
	// A generous store timeout: this test is about exactness, not about the
	// local fallback (TestRateLimitRedisOutage covers that).
	cfg := base + fmt.Sprintf("store:\n  redis: {url: %q, timeout: 1s}\n", rd.URL()) + fmt.Sprintf(exactRoutes, up.URL())
	gws := []*gw{startGateway(t, cfg), startGateway(t, cfg), startGateway(t, cfg)}
	checkExact(t, gws, up, 3)
}

// TestRateLimitMemoryExact is the same burst against one gateway that
// keeps its counters in memory.
func TestRateLimitMemoryExact(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "svc", nil)
	g := startGateway(t, base+fmt.Sprintf(exactRoutes, up.URL()))
	checkExact(t, []*gw{g}, up, 0)
}

// TestRateLimitHeadersAndRetryAfter checks the RateLimit-* headers, the
// 429 problem document and that waiting Retry-After lets the next request
// through.
func TestRateLimitHeadersAndRetryAfter(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "svc", nil)
	// 3 per 2s: one request is restored every 667ms, so Retry-After is 1.
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: svc, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: svc
    plugins:
      rate_limit:
        limits: [{limit: 3, window: 2s, algorithm: gcra, burst: 3}]
        key: ip
`, up.URL()))
	c := newClient(t)
	for i, want := range []int64{2, 1, 0} {
		resp, body := get(t, c, g.URL("/api"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: got %d, want 200; body %s", i+1, resp.StatusCode, body)
		}
		if got := headerInt(t, resp, "RateLimit-Limit"); got != 3 {
			t.Errorf("request %d: RateLimit-Limit: got %d, want 3", i+1, got)
		}
		if got := headerInt(t, resp, "RateLimit-Remaining"); got != want {
			t.Errorf("request %d: RateLimit-Remaining: got %d, want %d", i+1, got, want)
		}
		if got := headerInt(t, resp, "RateLimit-Reset"); got < 0 || got > 2 {
			t.Errorf("request %d: RateLimit-Reset: got %d, want 0..2", i+1, got)
		}
	}
	resp, body := get(t, c, g.URL("/api"))
	checkProblem(t, resp, body, http.StatusTooManyRequests)
	retry := headerInt(t, resp, "Retry-After")
	if retry != 1 {
		t.Errorf("Retry-After: got %d, want 1 (one request restored every 667ms)", retry)
	}
	if got := headerInt(t, resp, "RateLimit-Remaining"); got != 0 {
		t.Errorf("429 RateLimit-Remaining: got %d, want 0", got)
	}
	if got := resp.Header.Get("RateLimit-Limit"); got != "3" {
		t.Errorf("429 RateLimit-Limit: got %q, want 3", got)
	}
	if n := len(up.requests()); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	// Waiting what Retry-After says is the behaviour under test. The
	// gateway runs as its own process on its own clock, which no fake
	// clock in the test can stand in for.
	time.Sleep(time.Duration(max(retry, 1)) * time.Second)
	resp, body = get(t, c, g.URL("/api"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after waiting Retry-After (%ds): got %d, want 200; body %s", retry, resp.StatusCode, body)
	}
}

// TestRateLimitRedisOutage stops Redis under two gateways: fail_open keeps
// answering quickly from its local share, fail_closed answers 503, and
// both resume shared limiting once Redis is back.
func TestRateLimitRedisOutage(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	up := newUpstream(t, "svc", nil)
	cfg := func(onError string) string {
		return base + fmt.Sprintf(`store:
  redis: {url: %q, timeout: 50ms, instances: 1, on_error: %s}
services:
  - {name: svc, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: svc
    plugins:
      rate_limit:
        limits: [{limit: 1000, window: 1m}]
        key: ip
`, rd.URL(), onError, up.URL())
	}
	open, closed := startGateway(t, cfg("fail_open")), startGateway(t, cfg("fail_closed"))
	c := newClient(t)
	for name, g := range map[string]*gw{"fail_open": open, "fail_closed": closed} {
		if resp, body := get(t, c, g.URL("/api")); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s with Redis up: got %d, want 200; body %s", name, resp.StatusCode, body)
		}
	}

	rd.Stop()
	var slowest time.Duration
	for i := range 20 {
		start := time.Now()
		resp, body := get(t, c, open.URL("/api"))
		slowest = max(slowest, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("fail_open request %d with Redis down: got %d, want 200; body %s", i+1, resp.StatusCode, body)
		}
	}
	if slowest >= 500*time.Millisecond {
		t.Errorf("fail_open with Redis down: slowest of 20 requests took %s, want < 500ms", slowest)
	}
	t.Logf("fail_open with Redis down: slowest request %s", slowest)

	resp, body := get(t, c, closed.URL("/api"))
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if got := headerInt(t, resp, "Retry-After"); got < 1 {
		t.Errorf("fail_closed 503 Retry-After: got %d, want >= 1", got)
	}

	rd.Restart()
	for name, g := range map[string]*gw{"fail_closed": closed, "fail_open": open} {
		eventually(t, 10*time.Second, func() error {
			st, err := quickGet(c, g.URL("/api"))
			if err != nil {
				return err
			}
			if st != http.StatusOK {
				return fmt.Errorf("%s after Redis restarted: got %d, want 200", name, st)
			}
			return nil
		})
	}
	// Shared limiting resumed: the counters are in Redis again.
	eventually(t, 10*time.Second, func() error {
		n, err := redisKeyCount(rd.Addr())
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("no rate limit keys in the restarted Redis")
		}
		return nil
	})
}

// TestRateLimitIPKeyIgnoresUntrustedForwardedFor checks that key: ip uses
// X-Forwarded-For only from trusted proxies.
func TestRateLimitIPKeyIgnoresUntrustedForwardedFor(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "svc", nil)
	routes := fmt.Sprintf(`services:
  - {name: svc, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: svc
    plugins:
      rate_limit:
        limits: [{limit: 2, window: 1m}]
        key: ip
`, up.URL())
	untrusted := startGateway(t, base+routes)
	trusted := startGateway(t, base+"trusted_proxies: [\"127.0.0.1/32\"]\n"+routes)
	c := newClient(t)

	var got []int
	for _, xff := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		resp, _ := get(t, c, untrusted.URL("/api"), "X-Forwarded-For", xff)
		got = append(got, resp.StatusCode)
	}
	if fmt.Sprint(got) != fmt.Sprint([]int{200, 200, 429}) {
		t.Errorf("no trusted proxies, a new X-Forwarded-For each time: got %v, want [200 200 429]", got)
	}

	for _, xff := range []string{"10.0.0.1", "10.0.0.2"} {
		got := statuses(t, c, trusted.URL("/api"), 3, "X-Forwarded-For", xff)
		if fmt.Sprint(got) != fmt.Sprint([]int{200, 200, 429}) {
			t.Errorf("trusted proxy, client %s: got %v, want [200 200 429]", xff, got)
		}
	}
}

// TestRateLimitTiers checks limits taken from each consumer's tier.
func TestRateLimitTiers(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "svc", nil)
	g := startGateway(t, base+fmt.Sprintf(`tiers:
  free: {rate_limit: {limits: [{limit: 2, window: 1m}]}}
  paid: {rate_limit: {limits: [{limit: 4, window: 1m}]}}
  enterprise: {rate_limit: {unlimited: true}}
consumers:
  - {name: f, tier: free, credentials: {api_keys: ["free-key-0123456789"]}}
  - {name: p, tier: paid, credentials: {api_keys: ["paid-key-0123456789"]}}
  - {name: e, tier: enterprise, credentials: {api_keys: ["ent-key-0123456789"]}}
services:
  - {name: svc, url: %q}
routes:
  - name: api
    match: {paths: ["/api"]}
    service: svc
    plugins:
      key_auth: {}
      rate_limit: {tier: true, key: consumer}
`, up.URL()))
	c := newClient(t)
	for _, tc := range []struct {
		tier, key string
		want      int
	}{
		{"free", "free-key-0123456789", 2},
		{"paid", "paid-key-0123456789", 4},
		{"enterprise", "ent-key-0123456789", 6},
	} {
		sts := statuses(t, c, g.URL("/api"), 6, "X-API-Key", tc.key)
		allowed := 0
		for i, st := range sts {
			switch {
			case st == http.StatusOK && i == allowed:
				allowed++
			case st == http.StatusTooManyRequests && i >= tc.want:
			default:
				t.Errorf("%s: request %d: got %d (all: %v)", tc.tier, i+1, st, sts)
			}
		}
		if allowed != tc.want {
			t.Errorf("%s: allowed %d of 6, want %d (statuses %v)", tc.tier, allowed, tc.want, sts)
		}
	}
}

// redisKeyCount returns DBSIZE of the Redis at addr.
func redisKeyCount(addr string) (int, error) {
	line, err := redisInline(addr, "DBSIZE")
	if err != nil {
		return 0, err
	}
	if len(line) < 2 || line[0] != ':' {
		return 0, fmt.Errorf("DBSIZE: unexpected reply %q", line)
	}
	return strconv.Atoi(line[1:])
}
