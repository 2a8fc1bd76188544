package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/redistest"
)

// cacheConfig is a gateway config with one service and routes under
// /items, with the cache settings itemsCache.
func cacheConfig(upstreamURL, itemsCache string) string {
	return base + fmt.Sprintf(`services:
  - {name: svc, url: %q}
routes:
  - name: items
    match: {paths: ["/items"]}
    service: svc
    plugins:
      cache: %s
`, upstreamURL, itemsCache)
}

// TestCacheMissThenHit: N identical GETs make one upstream request; hits
// carry Age, Cache-Status with a ttl and X-Cache; the query's order does
// not matter; HEAD and a client's conditional GET are answered from the
// GET's entry.
func TestCacheMissThenHit(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, cacheConfig(o.up.URL(), "{x_cache_header: true}"))
	c := newClient(t)
	const uri = "/items/a?b=2&a=1&etag=v1"

	resp, body := get(t, c, g.URL(uri))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first GET: got %d, want 200; body %s", resp.StatusCode, body)
	}
	if cs := resp.Header.Get("Cache-Status"); !isMiss(resp) || !strings.Contains(cs, "stored") {
		t.Errorf("first GET Cache-Status: got %q, want portico; fwd=miss; stored", cs)
	}
	if got := resp.Header.Get("X-Cache"); got != "MISS" {
		t.Errorf("first GET X-Cache: got %q, want MISS", got)
	}
	first := decodeCached(t, body)

	for i := range 5 {
		resp, b := get(t, c, g.URL(uri))
		if resp.StatusCode != http.StatusOK || string(b) != string(body) {
			t.Fatalf("GET %d: got %d %s, want 200 and the first body %s", i+2, resp.StatusCode, b, body)
		}
		cs := resp.Header.Get("Cache-Status")
		if !strings.HasPrefix(cs, "portico; hit") {
			t.Errorf("GET %d Cache-Status: got %q, want portico; hit; ttl=N", i+2, cs)
		}
		if m := cacheTTL.FindStringSubmatch(cs); m == nil {
			t.Errorf("GET %d Cache-Status: got %q, want a ttl", i+2, cs)
		} else if ttl, _ := strconv.Atoi(m[1]); ttl < 50 || ttl > 60 {
			t.Errorf("GET %d Cache-Status ttl: got %d, want 50..60 (max-age=60)", i+2, ttl)
		}
		if age := headerInt(t, resp, "Age"); age < 0 || age > 10 {
			t.Errorf("GET %d Age: got %d, want 0..10", i+2, age)
		}
		if got := resp.Header.Get("X-Cache"); got != "HIT" {
			t.Errorf("GET %d X-Cache: got %q, want HIT", i+2, got)
		}
	}

	// The same parameters in another order are the same URL.
	if resp, b := get(t, c, g.URL("/items/a?etag=v1&a=1&b=2")); !isHit(resp) || string(b) != string(body) {
		t.Errorf("reordered query: got %q %s, want a hit with the first body", resp.Header.Get("Cache-Status"), b)
	}

	resp, b := do(t, c, http.MethodHead, g.URL(uri), nil)
	if resp.StatusCode != http.StatusOK || len(b) != 0 || !isHit(resp) {
		t.Errorf("HEAD: got %d, %d body bytes, Cache-Status %q; want 200, no body, a hit",
			resp.StatusCode, len(b), resp.Header.Get("Cache-Status"))
	}
	if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) {
		t.Errorf("HEAD Content-Length: got %s, want the GET's %d", cl, len(body))
	}

	resp, b = get(t, c, g.URL(uri), "If-None-Match", `"v1"`)
	if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("conditional GET with the stored ETag: got %d %q, want 304 from the cache", resp.StatusCode, b)
	}

	if got := o.count(http.MethodGet, uri); got != 1 {
		t.Errorf("upstream GETs of %s: got %d, want 1", uri, got)
	}
	if got := len(o.up.requests()); got != 1 {
		t.Errorf("upstream requests in all: got %d, want 1 (HEAD, the reordered query and the 304 from the cache)", got)
	}
	if first.N != 1 {
		t.Errorf("first body n: got %d, want 1", first.N)
	}
}

// TestCacheDirectives: what the response's Cache-Control, Expires,
// Set-Cookie and Vary allow, counted at the upstream over repeated GETs.
// The route sets no default_ttl, so a response that says nothing is not
// stored.
func TestCacheDirectives(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, cacheConfig(o.up.URL(), "{}"))
	c := newClient(t)
	tests := []struct {
		name string
		uri  string
		// langs are the Accept-Language values of the GETs, one GET each
		// ("" sends none); nil means two GETs without it.
		langs []string
		want  int // upstream GETs
	}{
		{"public max-age", "/items/d1?cc=public,max-age=60", nil, 1},
		{"max-age", "/items/d2?cc=max-age=60", nil, 1},
		{"s-maxage", "/items/d3?cc=s-maxage=60", nil, 1},
		{"no-store", "/items/d4?cc=no-store", nil, 2},
		{"private", "/items/d5?cc=private,max-age=60", nil, 2},
		{"no-cache without validators", "/items/d6?cc=no-cache,max-age=60", nil, 2},
		{"max-age=0", "/items/d7?cc=max-age=0", nil, 2},
		{"must-revalidate fresh", "/items/d8?cc=max-age=60,must-revalidate", nil, 1},
		{"Set-Cookie", "/items/d9?cc=max-age=60&cookie=1", nil, 2},
		{"Expires in the future", "/items/d10?cc=none&exp=60", nil, 1},
		{"Expires in the past", "/items/d11?cc=none&exp=-60", nil, 2},
		{"max-age wins over a past Expires", "/items/d12?cc=max-age=60&exp=-60", nil, 1},
		{"no freshness and no default_ttl", "/items/d13?cc=none", nil, 2},
		{"404 with max-age", "/items/d14?status=404", nil, 1},
		{"Vary: Accept-Language", "/items/d15?vary=Accept-Language", []string{"en", "en", "de", "de", "en"}, 2},
		{"Vary: *", "/items/d16?vary=*", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			langs := tt.langs
			if langs == nil {
				langs = []string{"", ""}
			}
			bodies := map[string]string{}
			for i, lang := range langs {
				var hdr []string
				if lang != "" {
					hdr = []string{"Accept-Language", lang}
				}
				resp, b := get(t, c, g.URL(tt.uri), hdr...)
				if resp.StatusCode >= 500 {
					t.Fatalf("GET %d: got %d; body %s", i+1, resp.StatusCode, b)
				}
				if lang != "" { // a variant is never served for another language
					var m map[string]any
					_ = json.Unmarshal(b, &m)
					if m["lang"] != lang {
						t.Errorf("GET %d with Accept-Language %s: got the body for %v", i+1, lang, m["lang"])
					}
					if prev, ok := bodies[lang]; ok && prev != string(b) {
						t.Errorf("GET %d with Accept-Language %s: got %s, want the stored %s", i+1, lang, b, prev)
					}
					bodies[lang] = string(b)
				}
			}
			if got := o.count(http.MethodGet, tt.uri); got != tt.want {
				t.Errorf("upstream GETs for %d client GETs: got %d, want %d", len(langs), got, tt.want)
			}
		})
	}
}

// TestCacheRevalidation: a stale entry with an ETag is revalidated with
// If-None-Match; the upstream's 304 refreshes it and the client gets the
// stored 200.
func TestCacheRevalidation(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, cacheConfig(o.up.URL(), "{}"))
	c := newClient(t)
	const uri = "/items/r?cc=max-age=0&etag=r1"
	_, first := get(t, c, g.URL(uri))
	for i := range 2 {
		resp, b := get(t, c, g.URL(uri))
		if resp.StatusCode != http.StatusOK || string(b) != string(first) {
			t.Fatalf("GET %d: got %d %s, want 200 with the stored body %s", i+2, resp.StatusCode, b, first)
		}
	}
	reqs := o.up.requests()
	if len(reqs) != 3 {
		t.Fatalf("upstream requests: got %d, want 3 (one GET, two revalidations)", len(reqs))
	}
	for i, s := range reqs[1:] {
		if got := s.Header.Get("If-None-Match"); !strings.Contains(got, `"r1"`) {
			t.Errorf("revalidation %d If-None-Match: got %q, want \"r1\"", i+1, got)
		}
	}
}

// TestCacheCoalescing: 100 concurrent misses for one key make exactly one
// upstream request; every client gets its answer. The upstream holds the
// first request until the other 99 wait for it.
func TestCacheCoalescing(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, cacheConfig(o.up.URL(), "{coalesce_timeout: 10s}"))
	c := newClient(t)
	const uri, clients = "/items/slow?hold=1", 100
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		bodies = map[string]int{}
		status = map[string]int{}
		errs   []error
	)
	start := make(chan struct{})
	for range clients {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, g.URL(uri), nil)
			resp, err := c.Do(req)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			if err != nil || resp.StatusCode != http.StatusOK {
				errs = append(errs, fmt.Errorf("got %d, %v; body %s", resp.StatusCode, err, b))
				return
			}
			bodies[string(b)]++
			status[resp.Header.Get("Cache-Status")]++
		})
	}
	close(start)
	eventually(t, 10*time.Second, func() error {
		if got := coalesced(t, g, "items"); got != clients-1 {
			return fmt.Errorf("requests waiting for the first: got %d, want %d", got, clients-1)
		}
		return nil
	})
	o.release()
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(errs), clients, errs[0])
	}
	if got := o.count(http.MethodGet, uri); got != 1 {
		t.Errorf("upstream requests for %d concurrent misses: got %d, want 1", clients, got)
	}
	if len(bodies) != 1 {
		t.Errorf("distinct bodies: got %d, want 1: %v", len(bodies), bodies)
	}
	t.Logf("Cache-Status of the %d answers: %v", clients, status)
}

// TestCacheStaleIfError: with the only replica killed, the stored response
// is served stale (200, Cache-Status says so) within stale_if_error after
// it expired, and the gateway's 502 after that window.
func TestCacheStaleIfError(t *testing.T) {
	t.Parallel()
	var served atomic.Int64
	r := newReplica(t, "catalog", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"n":%d}`, served.Add(1))
	})
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: catalog, url: %q, timeouts: {connect: 200ms}}
routes:
  - name: catalog
    match: {paths: ["/catalog"]}
    service: catalog
    plugins:
      cache: {stale_if_error: 2s}
`, r.URL()))
	c := newClient(t)
	stored := time.Now()
	resp, body := get(t, c, g.URL("/catalog"))
	if resp.StatusCode != http.StatusOK || !isMiss(resp) {
		t.Fatalf("first GET: got %d %q, want 200 and a miss; body %s", resp.StatusCode, resp.Header.Get("Cache-Status"), body)
	}
	r.kill()

	// Fresh for 1s, then stale for 2s: 200 with the stored body all along,
	// then 502. Date and Age are whole seconds, so the window may end up to
	// two seconds early by the test's clock, and a little late.
	// The gateway process ages the entry by its own clock, which the test
	// cannot fake, and signals nothing: the test asks until the 502.
	const fresh, window = time.Second, 2 * time.Second
	var sawStale bool
	eventually(t, time.Until(stored.Add(fresh+window+5*time.Second)), func() error {
		resp, b := get(t, c, g.URL("/catalog"))
		if resp.StatusCode == http.StatusOK {
			if string(b) != string(body) {
				t.Fatalf("got 200 %s, want the stored %s (the replica is dead)", b, body)
			}
			if isStale(resp) {
				sawStale = true
			} else if !isHit(resp) {
				t.Errorf("200 without hit or stale in Cache-Status: %q", resp.Header.Get("Cache-Status"))
			}
			return fmt.Errorf("still 200 %s after the entry was stored; want 502 after max-age + stale_if_error (3s)", time.Since(stored))
		}
		if since := time.Since(stored); since < fresh+window-2*time.Second {
			t.Errorf("got %d %s after %s, want the stale 200 until max-age + stale_if_error (3s)", resp.StatusCode, b, since)
		}
		checkProblem(t, resp, b, http.StatusBadGateway)
		return nil
	})
	if !sawStale {
		t.Error("no response was marked stale in Cache-Status within stale_if_error")
	}
	if got := served.Load(); got != 1 {
		t.Errorf("replica served %d requests, want 1", got)
	}
}

// TestCachePrivacy: a response to an authenticated request (key_auth, or
// an Authorization header) is never served to another consumer or to an
// anonymous client unless it says public; per_consumer keeps one entry
// per consumer.
func TestCachePrivacy(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, base+fmt.Sprintf(`consumers:
  - name: alice
    credentials: {api_keys: ["alice-key-0123456789"]}
  - name: bob
    credentials: {api_keys: ["bob-key-0123456789"]}
  - name: guest
services:
  - {name: svc, url: %q}
routes:
  - name: keyed
    match: {paths: ["/keyed"]}
    service: svc
    plugins:
      key_auth: {}
      auth: {anonymous: guest}
      cache: {}
  - name: per
    match: {paths: ["/per"]}
    service: svc
    plugins:
      key_auth: {}
      auth: {anonymous: guest}
      cache: {authenticated: per_consumer}
  - name: open
    match: {paths: ["/open"]}
    service: svc
    plugins:
      cache: {}
`, o.up.URL()))
	c := newClient(t)
	alice := []string{"X-API-Key", "alice-key-0123456789"}
	bob := []string{"X-API-Key", "bob-key-0123456789"}
	fetch := func(uri string, hdr []string) cachedBody {
		t.Helper()
		resp, b := get(t, c, g.URL(uri), hdr...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200; body %s", uri, resp.StatusCode, b)
		}
		return decodeCached(t, b)
	}
	expect := func(uri string, hdr []string, who string) {
		t.Helper()
		if got := fetch(uri, hdr); got.Consumer != who {
			t.Errorf("GET %s as %s: got the response made for %q", uri, who, got.Consumer)
		}
	}

	for _, uri := range []string{"/keyed/private?cc=max-age=60", "/per/private?cc=max-age=60"} {
		expect(uri, alice, "alice")
		expect(uri, alice, "alice")
		expect(uri, bob, "bob")
		if got := fetch(uri, nil); got.Consumer == "alice" || got.Consumer == "bob" {
			t.Errorf("GET %s anonymously: got the response made for %s", uri, got.Consumer)
		}
		expect(uri, bob, "bob")
		expect(uri, alice, "alice")
	}
	// per_consumer: one upstream request per consumer (alice, bob, guest).
	if got := o.count(http.MethodGet, "/per/private?cc=max-age=60"); got != 3 {
		t.Errorf("per_consumer upstream GETs: got %d, want 3 (one per consumer)", got)
	}

	// An anonymous response stored first is not served to a consumer.
	const anonFirst = "/keyed/anon-first?cc=max-age=60"
	if got := fetch(anonFirst, nil); got.Consumer == "alice" {
		t.Fatalf("anonymous GET: got alice's response")
	}
	expect(anonFirst, alice, "alice")

	// public responses are shared by everyone.
	const public = "/keyed/shared?cc=public,max-age=60"
	expect(public, alice, "alice")
	expect(public, bob, "alice")
	expect(public, nil, "alice")
	if got := o.count(http.MethodGet, public); got != 1 {
		t.Errorf("public upstream GETs: got %d, want 1", got)
	}

	// An Authorization header on a route without authentication is the
	// same: the response is not shared unless public or s-maxage.
	const bearer = "/open/private?cc=max-age=60"
	for _, auth := range []string{"Bearer token-a", "Bearer token-b", ""} {
		var hdr []string
		if auth != "" {
			hdr = []string{"Authorization", auth}
		}
		if got := fetch(bearer, hdr); got.Auth != auth {
			t.Errorf("GET %s with Authorization %q: got the response made for %q", bearer, auth, got.Auth)
		}
	}
	const smaxage = "/open/shared?cc=s-maxage=60"
	fetch(smaxage, []string{"Authorization", "Bearer token-a"})
	if got := fetch(smaxage, []string{"Authorization", "Bearer token-b"}); got.Auth != "Bearer token-a" {
		t.Errorf("s-maxage response: got the one made for %q, want the shared one made for token-a", got.Auth)
	}
	if got := o.count(http.MethodGet, smaxage); got != 1 {
		t.Errorf("s-maxage upstream GETs: got %d, want 1", got)
	}
}

// TestCacheInvalidatedByUnsafeMethod: a successful POST to a URL removes
// its stored response; a failed one does not.
func TestCacheInvalidatedByUnsafeMethod(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, cacheConfig(o.up.URL(), "{}"))
	c := newClient(t)
	const uri = "/items/inv?x=1"
	gets := func(want int, when string) {
		t.Helper()
		if resp, b := get(t, c, g.URL(uri)); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: got %d; body %s", when, resp.StatusCode, b)
		}
		if got := o.count(http.MethodGet, uri); got != want {
			t.Errorf("upstream GETs %s: got %d, want %d", when, got, want)
		}
	}
	gets(1, "first")
	gets(1, "from the cache")
	if resp, _ := do(t, c, http.MethodPost, g.URL(uri), strings.NewReader("{}"), "X-Status", "500"); resp.StatusCode != 500 {
		t.Fatalf("failing POST: got %d, want the upstream's 500", resp.StatusCode)
	}
	gets(1, "after a failed POST")
	if resp, _ := do(t, c, http.MethodPost, g.URL(uri), strings.NewReader("{}")); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: got %d, want 200", resp.StatusCode)
	}
	gets(2, "after a successful POST")
	gets(2, "stored again")
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if resp, _ := do(t, c, m, g.URL(uri), strings.NewReader("{}")); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: got %d, want 200", m, resp.StatusCode)
		}
		if resp, _ := get(t, c, g.URL(uri)); !isMiss(resp) {
			t.Errorf("GET after %s: Cache-Status %q, want a miss", m, resp.Header.Get("Cache-Status"))
		}
	}
}

// TestCacheAdminPurge: purging one URL, a path prefix or a whole route
// makes the next request for what was purged a miss, and nothing else.
func TestCacheAdminPurge(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	g := startGateway(t, base+fmt.Sprintf(`services:
  - {name: svc, url: %q}
routes:
  - name: products
    match: {paths: ["/api/products"]}
    service: svc
    plugins:
      cache: {}
  - name: other
    match: {paths: ["/other"]}
    service: svc
    plugins:
      cache: {}
`, o.up.URL()))
	c := newClient(t)
	const (
		books   = "/api/products?category=books"
		garden  = "/api/products?category=garden"
		special = "/api/products/special"
		other   = "/other"
	)
	all := []string{books, garden, special, other}
	// check GETs every URI once and compares hit or miss with misses.
	check := func(step string, misses ...string) {
		t.Helper()
		for _, uri := range all {
			before := o.count(http.MethodGet, uri)
			resp, b := get(t, c, g.URL(uri))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: GET %s: got %d; body %s", step, uri, resp.StatusCode, b)
			}
			wantMiss := false
			for _, m := range misses {
				wantMiss = wantMiss || m == uri
			}
			gotMiss := o.count(http.MethodGet, uri) > before
			if gotMiss != wantMiss || isMiss(resp) != wantMiss {
				t.Errorf("%s: GET %s: reached the upstream %v (Cache-Status %q), want a miss %v",
					step, uri, gotMiss, resp.Header.Get("Cache-Status"), wantMiss)
			}
		}
	}
	check("first", all...)
	check("cached")
	if n := purge(t, g, `{"route":"products","url":"/api/products?category=books"}`); n < 1 {
		t.Errorf("purge one URL: purged %d, want >= 1", n)
	}
	check("after purging one URL", books)
	if n := purge(t, g, `{"route":"products","prefix":"/api/products"}`); n < 3 {
		t.Errorf("purge a prefix: purged %d, want >= 3", n)
	}
	check("after purging a prefix", books, garden, special)
	if n := purge(t, g, `{"route":"products","prefix":"/api/products/"}`); n < 1 {
		t.Errorf("purge the prefix /api/products/: purged %d, want >= 1", n)
	}
	check("after purging /api/products/", special)
	if n := purge(t, g, `{"route":"products"}`); n < 3 {
		t.Errorf("purge a route: purged %d, want >= 3", n)
	}
	check("after purging the route", books, garden, special)
	if n := purge(t, g, `{"route":"products","url":"/api/products?category=toys"}`); n != 0 {
		t.Errorf("purge a URL never stored: purged %d, want 0", n)
	}
}

// cacheRedisConfig is a gateway whose /items route caches in the Redis at
// redisURL.
func cacheRedisConfig(redisURL, upstreamURL string) string {
	return base + fmt.Sprintf(`store:
  redis: {url: %q, timeout: 100ms}
services:
  - {name: svc, url: %q}
routes:
  - name: items
    match: {paths: ["/items"]}
    service: svc
    plugins:
      cache: {store: redis}
`, redisURL, upstreamURL)
}

// TestCacheRedisShared: two gateways share one redis-server, so an entry
// stored through one is a hit through the other; with Redis killed both
// still answer 200, as misses, and they share entries again once it is
// back.
func TestCacheRedisShared(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	o := newOrigin(t)
	cfg := cacheRedisConfig(rd.URL(), o.up.URL())
	g1, g2 := startGateway(t, cfg), startGateway(t, cfg)
	c := newClient(t)

	// The host is part of the key: clients reach both instances under one
	// name, as behind a load balancer.
	host := []string{"Host", "api.example.test"}
	keys := func() int {
		t.Helper()
		reply, err := redisInline(rd.Addr(), "DBSIZE")
		n, perr := strconv.Atoi(strings.TrimPrefix(reply, ":"))
		if err != nil || perr != nil {
			t.Fatalf("redis DBSIZE: got %q, %v", reply, err)
		}
		return n
	}
	shared := func(uri string) {
		t.Helper()
		before := keys()
		resp, body := get(t, c, g1.URL(uri), host...)
		if resp.StatusCode != http.StatusOK || !isMiss(resp) {
			t.Fatalf("GET %s through gateway 1: got %d %q, want 200 and a miss", uri, resp.StatusCode, resp.Header.Get("Cache-Status"))
		}
		eventually(t, 5*time.Second, func() error { // the store may finish after the answer
			if n := keys(); n <= before {
				return fmt.Errorf("redis DBSIZE: got %d, want more than the %d before %s was stored", n, before, uri)
			}
			return nil
		})
		resp, b := get(t, c, g2.URL(uri), host...)
		if resp.StatusCode != http.StatusOK || !isHit(resp) || string(b) != string(body) {
			t.Fatalf("GET %s through gateway 2: got %d %q %s, want a hit with %s",
				uri, resp.StatusCode, resp.Header.Get("Cache-Status"), b, body)
		}
		if got := o.count(http.MethodGet, uri); got != 1 {
			t.Errorf("upstream GETs of %s: got %d, want 1", uri, got)
		}
	}
	shared("/items/shared")

	rd.Stop()
	const uri = "/items/down"
	var slowest time.Duration
	for i := range 10 {
		for n, g := range []*gw{g1, g2} {
			t0 := time.Now()
			resp, b := get(t, c, g.URL(uri))
			slowest = max(slowest, time.Since(t0))
			if resp.StatusCode != http.StatusOK || isHit(resp) {
				t.Fatalf("GET %d through gateway %d with Redis down: got %d %q, want 200 and a miss; body %s",
					i+1, n+1, resp.StatusCode, resp.Header.Get("Cache-Status"), b)
			}
		}
	}
	if got := o.count(http.MethodGet, uri); got != 20 {
		t.Errorf("upstream GETs with Redis down: got %d, want 20 (every request a miss)", got)
	}
	if slowest > time.Second {
		t.Errorf("slowest request with Redis down: %s, want under 1s (store timeout 100ms)", slowest)
	}
	t.Logf("with Redis down: slowest request %s", slowest)

	rd.Restart()
	eventually(t, 10*time.Second, func() error {
		const probe = "/items/probe"
		resp, _ := get(t, c, g1.URL(probe))
		if !isHit(resp) {
			return fmt.Errorf("gateway 1 after Redis restarted: Cache-Status %q, want a hit", resp.Header.Get("Cache-Status"))
		}
		return nil
	})
	shared("/items/after-restart")
}

// TestDemoProductsCache walks the demo tour's cache step: the products
// list is a miss, then a hit that repeats "served" and "generated_at";
// after the admin purge it is a miss again and the service counts one
// more list.
func TestDemoProductsCache(t *testing.T) {
	t.Parallel()
	g := startProcess(t, t.TempDir(), "demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--control", "off")
	c := newClient(t)
	type productList struct {
		Count       int    `json:"count"`
		GeneratedAt string `json:"generated_at"`
		Served      int64  `json:"served"`
		Products    []struct {
			Category string `json:"category"`
		} `json:"products"`
	}
	fetch := func(step string) (*http.Response, productList) {
		t.Helper()
		resp, body := get(t, c, g.URL("/api/products?category=books"))
		var l productList
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &l) != nil || l.Count == 0 || l.Count != len(l.Products) {
			t.Fatalf("%s: got %d %s, want 200 with the books", step, resp.StatusCode, body)
		}
		for _, p := range l.Products {
			if p.Category != "books" {
				t.Errorf("%s: got a product of category %q, want books only", step, p.Category)
			}
		}
		return resp, l
	}
	resp, miss := fetch("first request")
	if !isMiss(resp) || resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("first request: Cache-Status %q, X-Cache %q; want a miss", resp.Header.Get("Cache-Status"), resp.Header.Get("X-Cache"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Errorf("Cache-Control: got %q, want public, max-age=60", cc)
	}
	resp, hit := fetch("second request")
	if !isHit(resp) || resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("Age") == "" {
		t.Errorf("second request: Cache-Status %q, X-Cache %q, Age %q; want a hit with Age",
			resp.Header.Get("Cache-Status"), resp.Header.Get("X-Cache"), resp.Header.Get("Age"))
	}
	if hit.Served != miss.Served || hit.GeneratedAt != miss.GeneratedAt {
		t.Errorf("hit: served %d at %s, want the miss's %d at %s", hit.Served, hit.GeneratedAt, miss.Served, miss.GeneratedAt)
	}
	if n := purge(t, g, `{"route":"products","prefix":"/api/products"}`); n < 1 {
		t.Errorf("purge: purged %d, want >= 1", n)
	}
	resp, again := fetch("after the purge")
	if !isMiss(resp) || again.Served != miss.Served+1 {
		t.Errorf("after the purge: Cache-Status %q, served %d; want a miss and served %d",
			resp.Header.Get("Cache-Status"), again.Served, miss.Served+1)
	}
}
