package e2e

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/redistest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// metricsConfig has a rate-limited route (its own limit and a consumer's
// own limit, in Redis), a route only the consumer's limit applies to, a
// route cached in memory and one cached in Redis, on a service with a
// breaker and two targets.
const metricsConfig = `store:
  redis: {url: %q, timeout: 1s}
consumers:
  - {name: alice, credentials: {api_keys: ["alice-key-0123456789"]}}
  - name: gold
    credentials: {api_keys: ["gold-key-0123456789"]}
    plugins:
      rate_limit: {limits: [{limit: 1, window: 1m}]}
services:
  - name: svc
    targets: [{url: %q}, {url: %q}]
    circuit_breaker: {consecutive_failures: 5, open_for: 10s}
  - {name: origin, url: %q}
routes:
  - name: limited
    match: {paths: ["/limited"]}
    service: svc
    plugins:
      key_auth: {}
      rate_limit: {limits: [{name: per_minute, limit: 2, window: 1m}], key: consumer}
  - name: open
    match: {paths: ["/open"]}
    service: svc
    plugins:
      key_auth: {}
  - name: cached
    match: {paths: ["/cached"]}
    service: origin
    plugins:
      cache: {}
  - name: shared
    match: {paths: ["/shared"]}
    service: origin
    plugins:
      cache: {store: redis}
`

// TestMetricsAfterTraffic sends known traffic through rate-limited and
// cached routes and compares every portico_* family on /metrics with
// testdata/metrics.golden: names, help, types, labels and values (those
// that depend on timing or ports are masked). The golden file was written
// before the metrics moved into one package, so it pins the exposition
// dashboards depend on.
func TestMetricsAfterTraffic(t *testing.T) {
	t.Parallel()
	rd := redistest.Start(t)
	a, b := newUpstream(t, "a", nil), newUpstream(t, "b", nil)
	o := newOrigin(t)
	g := startGateway(t, base+fmt.Sprintf(metricsConfig, rd.URL(), a.URL(), b.URL(), o.up.URL()))
	c := newClient(t)
	alice := []string{"X-API-Key", "alice-key-0123456789"}
	gold := []string{"X-API-Key", "gold-key-0123456789"}

	for i, want := range []int{200, 200, 429} {
		if got := statuses(t, c, g.URL("/limited"), 1, alice...)[0]; got != want {
			t.Fatalf("alice /limited #%d: got %d, want %d", i+1, got, want)
		}
	}
	for i, want := range []int{200, 429} {
		if got := statuses(t, c, g.URL("/open"), 1, gold...)[0]; got != want {
			t.Fatalf("gold /open #%d: got %d, want %d", i+1, got, want)
		}
	}
	if got := statuses(t, c, g.URL("/limited"), 1, gold...)[0]; got != http.StatusTooManyRequests {
		t.Fatalf("gold /limited: got %d, want 429 (one budget across routes)", got)
	}

	// The memory store may finish storing after the answer: wait for the
	// bytes before asking again.
	cacheTwice(t, c, g, "/cached", func() bool { return metricValue(t, scrapeMetrics(t, g), "portico_cache_stored_bytes") > 0 })
	keys := func() int {
		reply, err := redisInline(rd.Addr(), "DBSIZE")
		n, perr := strconv.Atoi(strings.TrimPrefix(reply, ":"))
		if err != nil || perr != nil {
			t.Fatalf("redis DBSIZE: got %q, %v", reply, err)
		}
		return n
	}
	before := keys() // the rate limiters' keys
	cacheTwice(t, c, g, "/shared", func() bool { return keys() > before })
	if resp, _ := get(t, c, g.URL("/nowhere")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/nowhere: got %d, want 404", resp.StatusCode)
	}

	masks := strings.NewReplacer(a.URL(), "http://TARGET-A", b.URL(), "http://TARGET-B", o.up.URL(), "http://ORIGIN")
	var got string
	eventually(t, 5*time.Second, func() error { // target in-flight counts drop after the answers
		got = portico(masks.Replace(scrapeMetrics(t, g)))
		if strings.Contains(got, "_in_flight 1") || regexp.MustCompile(`_in_flight\{[^}]*\} 1`).MatchString(got) {
			return fmt.Errorf("requests still in flight:\n%s", got)
		}
		return nil
	})
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %s", err)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (run with -update to accept):\n%s", golden, lineDiff(string(want), got))
	}
}

// cacheTwice GETs path twice through g, waiting for stored() in between,
// and checks a miss then a hit.
func cacheTwice(t *testing.T, c *http.Client, g *gw, path string, stored func() bool) {
	t.Helper()
	resp, _ := get(t, c, g.URL(path))
	if resp.StatusCode != http.StatusOK || !isMiss(resp) {
		t.Fatalf("first GET %s: got %d %q, want 200 and a miss", path, resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	eventually(t, 5*time.Second, func() error {
		if !stored() {
			return fmt.Errorf("%s not stored yet", path)
		}
		return nil
	})
	resp, _ = get(t, c, g.URL(path))
	if resp.StatusCode != http.StatusOK || !isHit(resp) {
		t.Fatalf("second GET %s: got %d %q, want 200 and a hit", path, resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
}

// scrapeMetrics returns g's /metrics page.
func scrapeMetrics(t *testing.T, g *gw) string {
	t.Helper()
	resp, err := http.Get(g.AdminURL("/metrics"))
	if err != nil {
		t.Fatalf("get /metrics: %s", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get /metrics: got %d, %v", resp.StatusCode, err)
	}
	return string(body)
}

// metricValue returns the value of the sample series on page, or -1.
func metricValue(t *testing.T, page, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(page, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("parse %q: %s", line, err)
			}
			return v
		}
	}
	return -1
}

// timing are the samples whose values depend on the clock or the size
// of what was stored: their values are masked.
var timing = regexp.MustCompile(`^portico_(request_duration_seconds|upstream_duration_seconds|ratelimit_store_duration_seconds)_(bucket|sum)|^portico_config_last_reload_success_timestamp_seconds |^portico_cache_stored_bytes `)

// portico keeps the portico_* families of a /metrics page, with the
// values of timing samples masked and each family's samples sorted (target
// URLs are masked, so their order by port is not kept).
func portico(page string) string {
	var b strings.Builder
	var samples []string
	flush := func() {
		slices.Sort(samples)
		for _, s := range samples {
			b.WriteString(s + "\n")
		}
		samples = samples[:0]
	}
	for line := range strings.SplitSeq(page, "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if !strings.HasPrefix(name, "portico_") {
			continue
		}
		if strings.HasPrefix(line, "# ") {
			flush()
			b.WriteString(line + "\n")
			continue
		}
		if timing.MatchString(line) {
			line = line[:strings.LastIndexByte(line, ' ')] + " X"
		}
		samples = append(samples, line)
	}
	flush()
	return b.String()
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := make(map[string]bool)
		for l := range strings.SplitSeq(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for l := range strings.SplitSeq(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for l := range strings.SplitSeq(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(the same lines in another order)"
	}
	return b.String()
}
