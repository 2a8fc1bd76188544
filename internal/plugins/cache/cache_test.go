package cache

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMissThenHit(t *testing.T) {
	o := newOrigin(t, answer(200, "hello", "Cache-Control", "max-age=60", "Content-Type", "text/plain"))
	g := startGateway(t, o, "x_cache_header: true", gwOptions{})
	first := g.get(t, "/items")
	if first.body != "hello" || first.status != 200 {
		t.Fatalf("got %d %q, want 200 hello", first.status, first.body)
	}
	wantStatus(t, first, "portico; fwd=miss; fwd-status=200; stored")
	if got := first.header.Get("X-Cache"); got != "MISS" {
		t.Errorf("got X-Cache %q, want MISS", got)
	}
	second := g.get(t, "/items")
	if second.body != "hello" || second.header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %q %q, want the stored response", second.body, second.header.Get("Content-Type"))
	}
	wantStatus(t, second, "portico; hit; ttl=")
	if got := second.header.Get("X-Cache"); got != "HIT" {
		t.Errorf("got X-Cache %q, want HIT", got)
	}
	if second.header.Get("Age") == "" {
		t.Error("got no Age on a hit")
	}
	if second.header.Get("Content-Length") != "5" {
		t.Errorf("got Content-Length %q, want 5", second.header.Get("Content-Length"))
	}
	wantHits(t, o, 1)
}

// TestDirectives sends two requests for one URL and counts what reached
// the upstream.
func TestDirectives(t *testing.T) {
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name     string
		settings string
		status   int
		kv       []string
		want     int64
	}{
		{"max-age", "", 200, []string{"Cache-Control", "max-age=60"}, 1},
		{"s-maxage", "", 200, []string{"Cache-Control", "s-maxage=60"}, 1},
		{"s-maxage zero beats max-age", "", 200, []string{"Cache-Control", "max-age=60, s-maxage=0"}, 2},
		{"public without freshness or default", "", 200, []string{"Cache-Control", "public"}, 2},
		{"public with default_ttl", "default_ttl: 1m", 200, []string{"Cache-Control", "public"}, 1},
		{"must-revalidate while fresh", "", 200, []string{"Cache-Control", "max-age=60, must-revalidate"}, 1},
		{"no-store", "", 200, []string{"Cache-Control", "max-age=60, no-store"}, 2},
		{"private", "", 200, []string{"Cache-Control", "private, max-age=60"}, 2},
		{"no-cache without validator", "", 200, []string{"Cache-Control", "no-cache, max-age=60"}, 2},
		{"no-cache with validator revalidates", "", 200, []string{"Cache-Control", "no-cache", "ETag", `"v1"`}, 2},
		{"set-cookie", "", 200, []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}, 2},
		{"expires", "", 200, []string{"Expires", future}, 1},
		{"expires in the past", "", 200, []string{"Expires", past}, 2},
		{"invalid expires", "", 200, []string{"Expires", "0"}, 2},
		{"invalid max-age", "", 200, []string{"Cache-Control", "max-age=ten"}, 2},
		{"nothing", "", 200, nil, 2},
		{"nothing with default_ttl", "default_ttl: 1m", 200, nil, 1},
		{"default_ttl and a status not cacheable by default", "default_ttl: 1m", 201, nil, 2},
		{"explicit freshness on a 500", "", 500, []string{"Cache-Control", "max-age=60"}, 1},
		{"404 with default_ttl: never a gateway-assigned lifetime", "default_ttl: 1m", 404, nil, 2},
		{"404 with explicit freshness", "default_ttl: 1m", 404, []string{"Cache-Control", "max-age=60"}, 1},
		{"partial content", "", 206, []string{"Cache-Control", "max-age=60", "Content-Range", "bytes 0-1/10"}, 2},
		{"vary star", "", 200, []string{"Cache-Control", "max-age=60", "Vary", "*"}, 2},
		{"max_ttl caps", "max_ttl: 1s", 200, []string{"Cache-Control", "max-age=60", "Age", "5"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, answer(tt.status, "body", tt.kv...))
			g := startGateway(t, o, tt.settings, gwOptions{})
			for i := range 2 {
				if r := g.get(t, "/d"); r.status != tt.status || r.body != "body" {
					t.Fatalf("request %d: got %d %q, want %d body", i, r.status, r.body, tt.status)
				}
			}
			wantHits(t, o, tt.want)
		})
	}
}

func TestMustRevalidateForbidsStale(t *testing.T) {
	o := newOrigin(t, answer(200, "v1", "Cache-Control", "max-age=1, must-revalidate, stale-if-error=600", "Age", "5", "ETag", `"a"`))
	g := startGateway(t, o, "stale_if_error: 10m", gwOptions{})
	g.get(t, "/m")
	o.set(answer(503, "down"))
	if r := g.get(t, "/m"); r.status != 503 {
		t.Errorf("got %d %q, want the 503 (must-revalidate)", r.status, r.body)
	}
}

func TestAgeReducesFreshness(t *testing.T) {
	o := newOrigin(t, answer(200, "aged", "Cache-Control", "max-age=60", "Age", "50"))
	g := startGateway(t, o, "", gwOptions{})
	g.get(t, "/age")
	r := g.get(t, "/age")
	age, _ := strconv.Atoi(r.header.Get("Age"))
	if age < 50 {
		t.Errorf("got Age %d, want at least 50", age)
	}
	cs := r.cacheStatus()
	i := strings.Index(cs, "ttl=")
	if i < 0 {
		t.Fatalf("got Cache-Status %q, want a ttl", cs)
	}
	ttl, _ := strconv.Atoi(cs[i+4:])
	if ttl > 10 || ttl < 0 {
		t.Errorf("got ttl %d, want at most 10", ttl)
	}
	wantHits(t, o, 1)
}

func TestVary(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = w.Write([]byte("lang=" + r.Header.Get("Accept-Language")))
	})
	g := startGateway(t, o, "", gwOptions{})
	for range 3 {
		for _, lang := range []string{"en", "fr"} {
			if r := g.get(t, "/v", "Accept-Language", lang); r.body != "lang="+lang {
				t.Fatalf("got %q for %s, want lang=%s", r.body, lang, lang)
			}
		}
	}
	wantHits(t, o, 2)
	r := g.get(t, "/v", "Accept-Language", "de")
	wantStatus(t, r, "fwd=vary-miss")
	wantHits(t, o, 3)
}

func TestQueryNormalisation(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		paths    []string
		want     int64
	}{
		{"order-insensitive", "", []string{"/q?b=2&a=1", "/q?a=1&b=2", "/q?a=1&b=%32"}, 1},
		{"values count", "", []string{"/q?a=1", "/q?a=2"}, 2},
		{"include", "query: {include: [category]}", []string{"/q?category=x&utm=1", "/q?utm=2&category=x", "/q?category=y"}, 2},
		{"exclude", "query: {exclude: [utm]}", []string{"/q?category=x&utm=1", "/q?utm=2&category=x", "/q?category=x&page=2"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, answer(200, "q", "Cache-Control", "max-age=60"))
			g := startGateway(t, o, tt.settings, gwOptions{})
			for _, p := range tt.paths {
				g.get(t, p)
			}
			wantHits(t, o, tt.want)
		})
	}
}

func TestKeyHeaders(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte(r.Header.Get("X-Tenant")))
	})
	g := startGateway(t, o, "key_headers: [X-Tenant]", gwOptions{})
	for _, tenant := range []string{"a", "b", "a", "b"} {
		if r := g.get(t, "/k", "X-Tenant", tenant); r.body != tenant {
			t.Fatalf("got %q, want %q", r.body, tenant)
		}
	}
	wantHits(t, o, 2)
}

func TestHeadAndGet(t *testing.T) {
	o := newOrigin(t, answer(200, "full body", "Cache-Control", "max-age=60"))
	g := startGateway(t, o, "", gwOptions{})
	h := g.do(t, http.MethodHead, "/h")
	if h.status != 200 || h.body != "" {
		t.Fatalf("got %d %q, want 200 without body", h.status, h.body)
	}
	wantStatus(t, h, "fwd=miss")
	wantHits(t, o, 1)
	if r := g.get(t, "/h"); r.body != "full body" {
		t.Fatalf("got %q after a HEAD miss, want the full body", r.body)
	}
	wantHits(t, o, 2) // HEAD responses are not stored
	h = g.do(t, http.MethodHead, "/h")
	wantStatus(t, h, "hit")
	if h.body != "" || h.header.Get("Content-Length") != "9" {
		t.Errorf("got %q with Content-Length %q, want no body and 9", h.body, h.header.Get("Content-Length"))
	}
	if got := o.last().Method; got != http.MethodGet {
		t.Errorf("got upstream method %s, want GET", got)
	}
	wantHits(t, o, 2)
}

func TestUnsafeMethodsInvalidate(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "Accept")
			_, _ = w.Write([]byte("list"))
		case http.MethodPost:
			w.Header().Set("Location", "/items/7")
			w.WriteHeader(http.StatusCreated)
		case http.MethodPut:
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	g := startGateway(t, o, "", gwOptions{})
	g.get(t, "/items?b=1&a=2", "Accept", "text/plain")
	g.get(t, "/items/7")
	g.get(t, "/items/8")
	wantHits(t, o, 3)
	r := g.do(t, http.MethodPost, "/items?a=2&b=1")
	wantStatus(t, r, "portico; fwd=bypass")
	wantHits(t, o, 4)
	// The POST's URL and its Location are invalidated; /items/8 is not.
	g.get(t, "/items?a=2&b=1", "Accept", "text/plain")
	g.get(t, "/items/7")
	g.get(t, "/items/8")
	wantHits(t, o, 6)
	// A failed PUT invalidates nothing.
	g.do(t, http.MethodPut, "/items/8")
	g.get(t, "/items/8")
	wantHits(t, o, 7)
	g.do(t, http.MethodDelete, "/items/8")
	g.get(t, "/items/8")
	wantHits(t, o, 9)
}

func TestClientConditionalFromCache(t *testing.T) {
	lm := "Wed, 21 Oct 2025 07:28:00 GMT"
	o := newOrigin(t, answer(200, "doc", "Cache-Control", "max-age=60", "ETag", `"v1"`, "Last-Modified", lm))
	g := startGateway(t, o, "", gwOptions{})
	// A conditional miss gets its 304 computed from the full response.
	if r := g.get(t, "/c", "If-None-Match", `"v1"`); r.status != 304 {
		t.Fatalf("got %d, want 304 on a conditional miss", r.status)
	}
	if got := o.last().Header.Get("If-None-Match"); got != "" {
		t.Errorf("upstream got If-None-Match %q, want none (a full response to store)", got)
	}
	tests := []struct {
		name   string
		kv     []string
		status int
	}{
		{"etag weak match", []string{"If-None-Match", `W/"v1"`}, 304},
		{"etag mismatch", []string{"If-None-Match", `"v0"`}, 200},
		{"if-modified-since", []string{"If-Modified-Since", lm}, 304},
		{"modified since", []string{"If-Modified-Since", "Wed, 21 Oct 2020 07:28:00 GMT"}, 200},
	}
	for _, tt := range tests {
		r := g.get(t, "/c", tt.kv...)
		if r.status != tt.status {
			t.Errorf("%s: got %d, want %d", tt.name, r.status, tt.status)
		}
		if tt.status == 304 && r.body != "" {
			t.Errorf("%s: got a body on 304", tt.name)
		}
	}
	wantHits(t, o, 1)
}

func TestRevalidation(t *testing.T) {
	o := newOrigin(t, answer(200, "v1", "Cache-Control", "max-age=0", "ETag", `"v1"`))
	g := startGateway(t, o, "", gwOptions{})
	g.get(t, "/r")
	o.set(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=60")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	})
	r := g.get(t, "/r")
	if r.status != 200 || r.body != "v1" {
		t.Fatalf("got %d %q, want the refreshed 200 v1", r.status, r.body)
	}
	wantStatus(t, r, "portico; fwd=stale; fwd-status=304")
	r = g.get(t, "/r")
	wantStatus(t, r, "portico; hit")
	if r.header.Get("Cache-Control") != "max-age=60" {
		t.Errorf("got Cache-Control %q, want the 304's max-age=60", r.header.Get("Cache-Control"))
	}
	wantHits(t, o, 2)

	// A 200 to the conditional request replaces the entry.
	o2 := newOrigin(t, answer(200, "old", "Cache-Control", "max-age=0", "Last-Modified", "Wed, 21 Oct 2025 07:28:00 GMT"))
	g2 := startGateway(t, o2, "", gwOptions{})
	g2.get(t, "/r")
	o2.set(answer(200, "new", "Cache-Control", "max-age=60"))
	if r := g2.get(t, "/r"); r.body != "new" {
		t.Fatalf("got %q, want new", r.body)
	}
	if got := o2.last().Header.Get("If-Modified-Since"); got == "" {
		t.Error("upstream got no If-Modified-Since")
	}
	if r := g2.get(t, "/r"); r.body != "new" || !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("got %q %q, want a hit on new", r.body, r.cacheStatus())
	}
	wantHits(t, o2, 2)
}

func TestRequestDirectives(t *testing.T) {
	o := newOrigin(t, answer(200, "x", "Cache-Control", "max-age=60", "ETag", `"e"`))
	g := startGateway(t, o, "honor_request_directives: true", gwOptions{})
	g.get(t, "/rd")
	if r := g.get(t, "/rd", "Cache-Control", "no-cache"); !strings.Contains(r.cacheStatus(), "fwd=request") {
		t.Errorf("got %q, want a forced revalidation", r.cacheStatus())
	}
	if got := o.last().Header.Get("If-None-Match"); got != `"e"` {
		t.Errorf("got If-None-Match %q upstream, want the entry's ETag", got)
	}
	g.get(t, "/rd", "Cache-Control", "max-age=0")
	wantHits(t, o, 3)
	r := g.get(t, "/rd", "Cache-Control", "no-store")
	wantStatus(t, r, "fwd=bypass")
	wantHits(t, o, 4)
	if r := g.get(t, "/other", "Cache-Control", "only-if-cached"); r.status != http.StatusGatewayTimeout {
		t.Errorf("got %d, want 504 for only-if-cached on a miss", r.status)
	}
	wantHits(t, o, 4)
	// only-if-cached: a fresh entry answers; a forced revalidation or a
	// stale entry gets 504 and never reaches the service.
	if r := g.get(t, "/rd", "Cache-Control", "only-if-cached"); r.status != 200 || !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("got %d %q, want a hit for only-if-cached on a fresh entry", r.status, r.cacheStatus())
	}
	if r := g.get(t, "/rd", "Cache-Control", "only-if-cached, no-cache"); r.status != http.StatusGatewayTimeout {
		t.Errorf("got %d, want 504 for only-if-cached with no-cache", r.status)
	}
	os := newOrigin(t, answer(200, "s", "Cache-Control", "max-age=0", "ETag", `"s"`))
	gs := startGateway(t, os, "honor_request_directives: true", gwOptions{})
	gs.get(t, "/stale")
	if r := gs.get(t, "/stale", "Cache-Control", "only-if-cached"); r.status != http.StatusGatewayTimeout {
		t.Errorf("got %d, want 504 for only-if-cached on a stale entry", r.status)
	}
	wantHits(t, os, 1)
	wantHits(t, o, 4)
	// Without the option, request directives are ignored.
	o2 := newOrigin(t, answer(200, "x", "Cache-Control", "max-age=60"))
	g2 := startGateway(t, o2, "", gwOptions{})
	g2.get(t, "/rd")
	g2.get(t, "/rd", "Cache-Control", "no-cache")
	wantHits(t, o2, 1)
}

func TestLargeBodiesStreamUncached(t *testing.T) {
	big := strings.Repeat("0123456789", 10_000)
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				if !chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				}
				for i := 0; i < len(big); i += 10_000 {
					_, _ = w.Write([]byte(big[i : i+10_000]))
					w.(http.Flusher).Flush()
				}
			})
			g := startGateway(t, o, "max_object_size: 16KiB", gwOptions{})
			for range 2 {
				if r := g.get(t, "/big"); r.body != big {
					t.Fatalf("got %d bytes, want %d", len(r.body), len(big))
				}
			}
			wantHits(t, o, 2)
		})
	}
}

func TestPurge(t *testing.T) {
	o := newOrigin(t, answer(200, "p", "Cache-Control", "max-age=60"))
	g := startGateway(t, o, "query: {exclude: [utm]}", gwOptions{route: "products"})
	fill := func() {
		for _, p := range []string{"/api/products?b=1&a=2", "/api/products/1", "/api/other"} {
			g.get(t, p)
		}
	}
	fill()
	wantHits(t, o, 3)
	n, err := Purge(g.shared, "products", "/api/products", "a=2&utm=x&b=1", false)
	if err != nil || n != 1 {
		t.Fatalf("got %d %v, want 1 purged", n, err)
	}
	fill()
	wantHits(t, o, 4)
	n, err = Purge(g.shared, "products", "/api/products", "", true)
	if err != nil || n != 2 {
		t.Fatalf("got %d %v, want 2 purged by prefix", n, err)
	}
	fill()
	wantHits(t, o, 6)
	if n, err = Purge(g.shared, "products", "", "", false); err != nil || n != 3 {
		t.Fatalf("got %d %v, want 3 purged for the route", n, err)
	}
	if n, _ = Purge(g.shared, "elsewhere", "", "", false); n != 0 {
		t.Errorf("got %d purged for another route, want 0", n)
	}
	if _, err = Purge(g.shared, "products", "no-slash", "", false); err == nil {
		t.Error("got no error for a bad path")
	}
}

func TestUpgradePassesThrough(t *testing.T) {
	o := newOrigin(t, answer(200, "plain", "Cache-Control", "max-age=60"))
	g := startGateway(t, o, "", gwOptions{})
	for range 2 {
		r := g.get(t, "/ws", "Upgrade", "h2c", "Connection", "Upgrade")
		if r.header.Get("Cache-Status") != "" {
			t.Errorf("got Cache-Status %q on an upgrade request, want none", r.header.Get("Cache-Status"))
		}
	}
	wantHits(t, o, 2)
}
