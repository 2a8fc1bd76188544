package cache

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/telemetry/telemetrytest"
)

// Responses with an Age past their max-age are stored stale at once, so
// the tests need no waiting.

func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		cc       string
		age      string
		served   bool
	}{
		{"response window", "", "max-age=10, stale-if-error=60", "15", true},
		{"route default window", "stale_if_error: 1m", "max-age=10", "15", true},
		{"past the window", "", "max-age=10, stale-if-error=60", "100", false},
		{"no window", "", "max-age=10, stale-while-revalidate=1", "15", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, answer(200, "stale copy", "Cache-Control", tt.cc, "Age", tt.age))
			g := startGateway(t, o, tt.settings, gwOptions{})
			g.get(t, "/s")
			o.set(answer(503, "upstream trouble"))
			r := g.get(t, "/s")
			if !tt.served {
				if r.status != 503 || r.body != "upstream trouble" {
					t.Fatalf("got %d %q, want the upstream's 503", r.status, r.body)
				}
				return
			}
			if r.status != 200 || r.body != "stale copy" {
				t.Fatalf("got %d %q, want the stale copy", r.status, r.body)
			}
			wantStatus(t, r, "portico; fwd=stale; fwd-status=503; ttl=-")
			wantStatus(t, r, "detail=stale-if-error")
			// The upstream is gone altogether: the proxy's own 502 is
			// replaced too.
			o.Close()
			r = g.get(t, "/s")
			if r.status != 200 || r.body != "stale copy" {
				t.Fatalf("got %d %q with the upstream down, want the stale copy", r.status, r.body)
			}
			wantStatus(t, r, "fwd-status=502")
		})
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	o := newOrigin(t, answer(200, "v1", "Cache-Control", "max-age=10, stale-while-revalidate=60", "Age", "15"))
	g := startGateway(t, o, "", gwOptions{})
	g.get(t, "/swr")
	release := make(chan struct{})
	refreshing := make(chan struct{}, 2)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		refreshing <- struct{}{}
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("v2"))
	})
	// Served stale at once, while the refresh waits on the upstream; a
	// second request does not start a second refresh.
	for range 2 {
		r := g.get(t, "/swr")
		if r.body != "v1" {
			t.Fatalf("got %q, want the stale v1", r.body)
		}
		wantStatus(t, r, "portico; hit; ttl=-")
		wantStatus(t, r, "detail=stale-while-revalidate")
	}
	await(t, "the background refresh to reach the upstream", refreshing)
	close(release)
	awaitRefreshes(t, g)
	r := g.get(t, "/swr")
	if r.body != "v2" {
		t.Fatalf("after the refresh: got %q, want the refreshed v2", r.body)
	}
	wantStatus(t, r, "portico; hit; ttl=")
	if strings.Contains(r.cacheStatus(), "ttl=-") {
		t.Errorf("got %q, want a fresh hit", r.cacheStatus())
	}
	wantHits(t, o, 2)
}

func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("once"))
	})
	g := startGateway(t, o, "", gwOptions{})
	const n = 100
	var wg sync.WaitGroup
	results := make(chan result, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- g.get(t, "/hot")
		}()
	}
	pollUntil(t, "99 requests to wait for the first", func() bool {
		return metricValue(t, g, "portico_cache_coalesced_total", "r", "") == n-1
	})
	close(release)
	wg.Wait()
	close(results)
	collapsed := 0
	for r := range results {
		if r.status != 200 || r.body != "once" {
			t.Fatalf("got %d %q, want 200 once", r.status, r.body)
		}
		if strings.Contains(r.cacheStatus(), "collapsed") {
			collapsed++
		}
	}
	if collapsed != n-1 {
		t.Errorf("got %d collapsed responses, want %d", collapsed, n-1)
	}
	wantHits(t, o, 1)
}

// TestCoalescingNotStorable: when the first response may not be stored,
// the waiters go upstream themselves.
func TestCoalescingNotStorable(t *testing.T) {
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, _ *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "private, max-age=60")
		_, _ = w.Write([]byte("mine"))
	})
	g := startGateway(t, o, "", gwOptions{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := g.get(t, "/p"); r.body != "mine" {
				t.Errorf("got %q, want mine", r.body)
			}
		}()
	}
	pollUntil(t, "4 waiters", func() bool { return metricValue(t, g, "portico_cache_coalesced_total", "r", "") == 4 })
	close(release)
	wg.Wait()
	wantHits(t, o, 5)
}

func TestRedisDownIsAMiss(t *testing.T) {
	o := newOrigin(t, answer(200, "still here", "Cache-Control", "max-age=60"))
	store := &config.Store{Redis: &config.Redis{URL: "redis://127.0.0.1:1/0"}}
	g := startGateway(t, o, "store: redis\ncompress: true", gwOptions{store: store})
	for range 3 {
		if r := g.get(t, "/x"); r.status != 200 || r.body != "still here" {
			t.Fatalf("got %d %q, want the upstream's answer", r.status, r.body)
		}
	}
	wantHits(t, o, 3)
	if got := metricValue(t, g, "portico_cache_store_errors_total", "", ""); got == 0 {
		t.Error("got no store errors counted")
	}
	if _, err := buildGateway(t, o.URL, "store: redis", gwOptions{}); err == nil {
		t.Error("got no error for store: redis without store.redis")
	}
}

func TestMetrics(t *testing.T) {
	o := newOrigin(t, answer(200, "m", "Cache-Control", "max-age=60"))
	g := startGateway(t, o, "", gwOptions{})
	g.get(t, "/a")
	g.get(t, "/a")
	g.do(t, http.MethodPost, "/b")
	for result, want := range map[string]float64{"miss": 1, "hit": 1, "bypass": 1} {
		if got := metricValue(t, g, "portico_cache_requests_total", "r", result); got != want {
			t.Errorf("result %s: got %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, g, "portico_cache_stored_bytes", "", ""); got <= 0 {
		t.Errorf("got %v stored bytes, want more than 0", got)
	}
}

// TestMetricsAcrossReloads: a config without the cache retires its shared
// state; a later config with the cache again reports one memory store,
// counts on the same request series, and the scrape stays valid.
func TestMetricsAcrossReloads(t *testing.T) {
	o := newOrigin(t, answer(200, "m", "Cache-Control", "max-age=60"))
	tel, shared := telemetry.New(), pipeline.NewShared()
	g := startGateway(t, o, "", gwOptions{shared: shared, tel: tel})
	g.get(t, "/a")
	shared.Begin() // a config without the cache
	shared.Retire()
	g = startGateway(t, o, "", gwOptions{shared: shared, tel: tel})
	g.get(t, "/a")
	g.get(t, "/a")
	page := telemetrytest.Scrape(t, tel)
	if got := page.Sum("portico_cache_requests_total", `route="r"`, `result="miss"`); got != 2 {
		t.Errorf("misses: got %v, want 2 (one per memory store)", got)
	}
	if got := page.Sum("portico_cache_requests_total", `route="r"`, `result="hit"`); got != 1 {
		t.Errorf("hits: got %v, want 1", got)
	}
	if n := strings.Count(string(page), "\nportico_cache_stored_bytes "); n != 1 {
		t.Errorf("got %d stored-bytes samples, want 1", n)
	}
	if got, _ := page.Value("portico_cache_stored_bytes"); got <= 0 {
		t.Errorf("got %v stored bytes, want those of the new memory store", got)
	}
}

// metricValue sums the samples of the metric name whose route label is
// route and result label is result ("" matches any).
func metricValue(t *testing.T, g *gw, name, route, result string) float64 {
	t.Helper()
	var match []string
	if route != "" {
		match = append(match, `route="`+route+`"`)
	}
	if result != "" {
		match = append(match, `result="`+result+`"`)
	}
	return telemetrytest.Scrape(t, g.tel).Sum(name, match...)
}
