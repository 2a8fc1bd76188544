package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// replica is a real HTTP server on a fixed loopback port that a test can
// kill (listener and every connection closed) and revive on the same port.
type replica struct {
	t    *testing.T
	name string
	addr string
	h    http.Handler
	hits atomic.Int64

	mu  sync.Mutex
	srv *http.Server
}

func newReplica(t *testing.T, name string, h http.HandlerFunc) *replica {
	t.Helper()
	r := &replica{t: t, name: name}
	r.h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		_, _ = io.Copy(io.Discard, req.Body)
		if h != nil {
			h(w, req)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"replica":%q}`, name)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.kill)
	return r
}

func (r *replica) URL() string { return "http://" + r.addr }

func (r *replica) serve(ln net.Listener) {
	srv := &http.Server{Handler: r.h, ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the listener and every connection at once.
func (r *replica) kill() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// revive listens on the same port again. The kernel may hold the port for
// a moment after the kill and signals nothing when it frees it, so revive
// asks again until it gets it.
func (r *replica) revive() {
	r.t.Helper()
	var ln net.Listener
	eventually(r.t, time.Second, func() error {
		var err error
		if ln, err = net.Listen("tcp", r.addr); err != nil {
			return fmt.Errorf("revive %s on %s: %w", r.name, r.addr, err)
		}
		return nil
	})
	r.serve(ln)
}

// serviceState is one service in the admin API's GET /upstreams.
type serviceState struct {
	Name    string `json:"name"`
	Breaker string `json:"breaker"`
	Retries int64  `json:"retries_total"`
	Targets []struct {
		URL       string `json:"url"`
		Available bool   `json:"available"`
		Active    bool   `json:"active_healthy"`
		Breaker   string `json:"breaker"`
	} `json:"targets"`
}

// upstreamsState fetches the admin API's GET /upstreams.
func upstreamsState(t *testing.T, g *gw) []serviceState {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/upstreams"))
	if err != nil {
		t.Fatalf("GET /upstreams: %s", err)
	}
	defer resp.Body.Close()
	var out []serviceState
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode /upstreams: %s", err)
	}
	return out
}

// targetAvailable reports what GET /upstreams says of one target.
func targetAvailable(t *testing.T, g *gw, url string) bool {
	for _, s := range upstreamsState(t, g) {
		for _, tg := range s.Targets {
			if tg.URL == url {
				return tg.Available
			}
		}
	}
	t.Fatalf("target %s not in /upstreams", url)
	return false
}

// TestOneReplicaKilledUnderLoad kills one of three replicas under a fixed
// request rate: with retries on, clients see no error; active checks take
// the dead replica out of balancing within their thresholds, and it gets
// traffic again after it comes back.
func TestOneReplicaKilledUnderLoad(t *testing.T) {
	t.Parallel()
	a, b, c := newReplica(t, "a", nil), newReplica(t, "b", nil), newReplica(t, "c", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - name: orders
    targets: [{url: %q}, {url: %q}, {url: %q}]
    timeouts: {connect: 200ms, response_header: 1s}
    retries: {attempts: 3, backoff: 5ms, max_backoff: 20ms}
    health_check:
      active: {path: /health, interval: 100ms, timeout: 80ms, unhealthy_threshold: 2, healthy_threshold: 2}
      passive: {consecutive_failures: 1, base_ejection: 300ms, max_ejection: 1s}
routes:
  - {name: orders, match: {paths: ["/api/orders"]}, service: orders}
`, a.URL(), b.URL(), c.URL()))

	const rate, total = 200, 1000 // 5 s at 200 requests/s
	cl := newClient(t)
	var failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := 0; i < total; i++ {
		<-tick.C
		switch i {
		case total / 5: // 1 s in
			b.kill()
		case total * 3 / 5: // 3 s in
			b.revive()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := cl.Get(g.URL("/api/orders"))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
		if i == total*2/5 { // 2 s in: b has been dead for 1 s
			if targetAvailable(t, g, b.URL()) {
				t.Errorf("1 s after the kill /upstreams still shows %s available (thresholds: 2 × 100 ms)", b.URL())
			}
		}
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed while one replica died and came back; first: %v", n, total, firstErr.Load())
	}
	hitsAfterRevive := b.hits.Load()
	eventually(t, 3*time.Second, func() error {
		if !targetAvailable(t, g, b.URL()) {
			return fmt.Errorf("revived replica %s is not available again", b.URL())
		}
		resp, _ := get(t, cl, g.URL("/api/orders"))
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if b.hits.Load() <= hitsAfterRevive+2 { // health probes count too: want real requests
			return fmt.Errorf("revived replica got no traffic yet")
		}
		return nil
	})
	if a.hits.Load() == 0 || c.hits.Load() == 0 {
		t.Fatalf("replicas a and c got %d and %d requests, want both > 0", a.hits.Load(), c.hits.Load())
	}
}

// TestAllTargetsDeadBreaker kills every target: once the breaker opens,
// requests get 503 with Retry-After at once; after open_for a probe goes
// through, and the service's recovery closes the breaker.
func TestAllTargetsDeadBreaker(t *testing.T) {
	t.Parallel()
	a, b := newReplica(t, "a", nil), newReplica(t, "b", nil)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - name: pay
    targets: [{url: %q}, {url: %q}]
    timeouts: {connect: 200ms}
    circuit_breaker: {consecutive_failures: 3, open_for: 1s}
routes:
  - {name: pay, match: {paths: ["/pay"]}, service: pay}
`, a.URL(), b.URL()))
	cl := newClient(t)
	if resp, _ := get(t, cl, g.URL("/pay")); resp.StatusCode != 200 {
		t.Fatalf("before the outage: got %d, want 200", resp.StatusCode)
	}
	a.kill()
	b.kill()
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, cl, g.URL("/pay")); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("request %d to dead targets: got %d, want 502", i, resp.StatusCode)
		}
	}
	start := time.Now()
	resp, body := get(t, cl, g.URL("/pay"))
	took := time.Since(start)
	checkProblem(t, resp, body, http.StatusServiceUnavailable)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 1 {
		t.Fatalf("Retry-After = %q, want 1 (open_for 1s)", resp.Header.Get("Retry-After"))
	}
	if took > 50*time.Millisecond {
		t.Fatalf("open breaker answered in %s, want under 50ms", took)
	}
	if s := upstreamsState(t, g); s[0].Breaker != "open" {
		t.Fatalf("/upstreams breaker = %q, want open", s[0].Breaker)
	}
	a.revive()
	b.revive()
	eventually(t, 3*time.Second, func() error {
		resp, _ := get(t, cl, g.URL("/pay"))
		if resp.StatusCode != 200 {
			return fmt.Errorf("after recovery: got %d, want 200", resp.StatusCode)
		}
		return nil
	})
	if s := upstreamsState(t, g); s[0].Breaker != "closed" {
		t.Fatalf("/upstreams breaker after recovery = %q, want closed", s[0].Breaker)
	}
	if !g.stderr.waitFor(time.Second, nil, func(s string) bool {
		return strings.Contains(s, "half_open") && strings.Contains(s, "circuit breaker state changed")
	}) {
		t.Fatalf("breaker transitions not logged:\n%s", tail(g.stderr.String(), 20))
	}
}

// TestSlowTargetRetriedElsewhere: a slow target hits the per-attempt
// timeout and the request is answered by another target; when every
// target is slow the overall deadline holds; a thousand timed-out requests
// leave no goroutines behind.
func TestSlowTargetRetriedElsewhere(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slowHandler := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	slow, fast := newReplica(t, "slow", slowHandler), newReplica(t, "fast", nil)
	slow2 := newReplica(t, "slow2", slowHandler)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - name: mixed
    targets: [{url: %q}, {url: %q}]
    timeouts: {response_header: 100ms, total: 1s}
    retries: {attempts: 2, backoff: 1ms, max_backoff: 2ms, budget: {ratio: 1}}
  - name: allslow
    targets: [{url: %q}, {url: %q}]
    timeouts: {response_header: 200ms, total: 300ms}
    retries: {attempts: 5, backoff: 1ms, max_backoff: 2ms, budget: {ratio: 1}}
routes:
  - {name: mixed, match: {paths: ["/mixed"]}, service: mixed}
  - {name: allslow, match: {paths: ["/allslow"]}, service: allslow}
`, slow.URL(), fast.URL(), slow.URL(), slow2.URL()))
	cl := newClient(t)
	for i := 0; i < 4; i++ {
		start := time.Now()
		resp, body := get(t, cl, g.URL("/mixed"))
		if resp.StatusCode != 200 || !strings.Contains(string(body), "fast") {
			t.Fatalf("GET /mixed #%d: got %d %s, want 200 from fast", i, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Fatalf("GET /mixed took %s", d)
		}
	}
	start := time.Now()
	resp, body := get(t, cl, g.URL("/allslow"))
	d := time.Since(start)
	checkProblem(t, resp, body, http.StatusGatewayTimeout)
	if d < 250*time.Millisecond || d > 700*time.Millisecond {
		t.Fatalf("all-slow request took %s, want about the 300ms overall deadline", d)
	}

	before := goroutines(t, g)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var bad atomic.Int64
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := cl.Get(g.URL("/allslow"))
			if err != nil {
				bad.Add(1)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of 1000 timed-out requests did not get 504", n)
	}
	// Idle keep-alive connections of the test's client hold a goroutine
	// each in the gateway; close them so what remains is a leak.
	cl.CloseIdleConnections()
	eventually(t, 5*time.Second, func() error {
		if after := goroutines(t, g); after > before+10 {
			return fmt.Errorf("goroutines: %d before, %d after 1000 timed-out requests", before, after)
		}
		return nil
	})
}

var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// goroutines reads the gateway's go_goroutines metric.
func goroutines(t *testing.T, g *gw) int {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := goroutinesRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no go_goroutines in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestRetryPolicyAndBudget: POST is not retried without Idempotency-Key
// (and is with one); during an outage, upstream attempts per client
// request stay within the retry budget.
func TestRetryPolicyAndBudget(t *testing.T) {
	t.Parallel()
	down := newReplica(t, "down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - name: down
    url: %q
    retries: {attempts: 3, backoff: 1ms, max_backoff: 2ms, budget: {ratio: 0.2, window: 10s, min_per_second: 1}}
routes:
  - {name: down, match: {paths: ["/down"]}, service: down}
  - name: optin
    match: {paths: ["/optin"]}
    service: down
    retries: {attempts: 3, backoff: 1ms, max_backoff: 2ms, non_idempotent: true, budget: {ratio: 1}}
`, down.URL()))
	cl := newClient(t)
	hits := func(f func()) int64 {
		before := down.hits.Load()
		f()
		return down.hits.Load() - before
	}
	if n := hits(func() {
		resp, _ := do(t, cl, "POST", g.URL("/down"), strings.NewReader(`{"amount":1}`), "Content-Type", "application/json")
		if resp.StatusCode != 503 {
			t.Fatalf("POST: got %d, want the upstream's 503", resp.StatusCode)
		}
	}); n != 1 {
		t.Fatalf("POST without Idempotency-Key reached the upstream %d times, want 1", n)
	}
	if n := hits(func() {
		do(t, cl, "POST", g.URL("/optin"), strings.NewReader(`{"amount":1}`), "Content-Type", "application/json")
	}); n != 3 {
		t.Fatalf("POST on a route that opted in reached the upstream %d times, want 3", n)
	}
	// The budget: 200 GETs during the outage. Allowed retries: 20% of the
	// requests plus 1/s × 10 s, and the one POST with a key below.
	const requests = 200
	n := hits(func() {
		for i := 0; i < requests; i++ {
			resp, _ := get(t, cl, g.URL("/down"))
			if resp.StatusCode != 503 {
				t.Fatalf("GET: got %d, want 503", resp.StatusCode)
			}
		}
	})
	if max := int64(requests + requests/5 + 10 + 3); n > max {
		t.Fatalf("%d GETs made %d upstream attempts, want at most %d (retry budget 20%% + 1/s)", requests, n, max)
	}
	if n <= requests {
		t.Fatalf("%d GETs made %d upstream attempts: the budget's minimum retries did not happen", requests, n)
	}
	if n := hits(func() {
		do(t, cl, "POST", g.URL("/optin"), strings.NewReader(`x`), "Idempotency-Key", "k-1")
	}); n != 3 {
		t.Fatalf("POST with Idempotency-Key reached the upstream %d times, want 3", n)
	}
}

// TestWeightedAndConsistentHash: weights hold within ±5% over 10,000
// requests; consistent hashing keeps a key on its target, and adding a
// fourth target moves about a quarter of the keys, all to the new one.
func TestWeightedAndConsistentHash(t *testing.T) {
	t.Parallel()
	a, b, c, d := newReplica(t, "a", nil), newReplica(t, "b", nil), newReplica(t, "c", nil), newReplica(t, "d", nil)
	hashed := func(targets ...*replica) string {
		var list []string
		for _, r := range targets {
			list = append(list, fmt.Sprintf("{url: %q}", r.URL()))
		}
		return base + fmt.Sprintf(`services:
  - name: weighted
    targets: [{url: %q, weight: 1}, {url: %q, weight: 3}]
  - name: hashed
    targets: [%s]
    load_balancer: {algorithm: consistent_hash, hash_on: header, hash_key: X-User}
routes:
  - {name: weighted, match: {paths: ["/w"]}, service: weighted}
  - {name: hashed, match: {paths: ["/h"]}, service: hashed}
`, a.URL(), b.URL(), strings.Join(list, ", "))
	}
	g := startGateway(t, hashed(a, b, c))
	cl := newClient(t)

	const n = 10000
	var wg sync.WaitGroup
	counts := make(map[string]int)
	var mu sync.Mutex
	work := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		work <- struct{}{}
	}
	close(work)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				resp, err := cl.Get(g.URL("/w"))
				if err != nil {
					t.Error(err)
					return
				}
				var v struct{ Replica string }
				_ = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				mu.Lock()
				counts[v.Replica]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if share := float64(counts["b"]) / n; share < 0.70 || share > 0.80 {
		t.Fatalf("weight 3 of 4 got %.3f of %d requests (counts %v), want 0.75 ± 0.05", share, n, counts)
	}

	owner := func(key string) string {
		resp, body := get(t, cl, g.URL("/h"), "X-User", key)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /h: %d", resp.StatusCode)
		}
		var v struct{ Replica string }
		_ = json.Unmarshal(body, &v)
		return v.Replica
	}
	const keys = 600
	first := make([]string, keys)
	for i := range first {
		first[i] = owner("user-" + strconv.Itoa(i))
	}
	for i := 0; i < keys; i += 50 {
		if got := owner("user-" + strconv.Itoa(i)); got != first[i] {
			t.Fatalf("key user-%d moved from %s to %s without a change", i, first[i], got)
		}
	}
	g.writeConfig(hashed(a, b, c, d))
	g.Signal(syscall.SIGHUP)
	eventually(t, 5*time.Second, func() error {
		for i := 0; i < keys; i++ {
			if owner("user-"+strconv.Itoa(i)) == "d" {
				return nil
			}
		}
		return fmt.Errorf("no key reached the new target after reload")
	})
	moved := 0
	for i := range first {
		got := owner("user-" + strconv.Itoa(i))
		if got != first[i] {
			if got != "d" {
				t.Fatalf("key user-%d moved from %s to %s, not to the new target", i, first[i], got)
			}
			moved++
		}
	}
	if share := float64(moved) / keys; share < 0.15 || share > 0.35 {
		t.Fatalf("adding a 4th target moved %.2f of the keys, want about 0.25", share)
	}
}

// TestFallbackResponse: a route with a fallback answers it when its
// service cannot (here: the only target is down).
func TestFallbackResponse(t *testing.T) {
	t.Parallel()
	dead := newReplica(t, "dead", nil)
	dead.kill()
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: checkout, url: %q, timeouts: {connect: 200ms}}
routes:
  - name: checkout
    match: {paths: ["/checkout"]}
    service: checkout
    fallback:
      status: 503
      headers: {Retry-After: "30"}
      body: '{"message":"Checkout temporarily unavailable, try again"}'
`, dead.URL()))
	cl := newClient(t)
	resp, body := get(t, cl, g.URL("/checkout"))
	if resp.StatusCode != 503 || string(body) != `{"message":"Checkout temporarily unavailable, try again"}` {
		t.Fatalf("got %d %s, want the fallback", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "30" {
		t.Fatalf("Retry-After = %q, want the fallback's 30", ra)
	}
}
