package telemetry

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape fetches the metrics page through a real HTTP server.
func scrape(t *testing.T, m *Telemetry) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("get metrics: %s", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read metrics: %s", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	return string(body)
}

// sample returns the value of the series whose line starts with series
// followed by a space, or fails.
func sample(t *testing.T, page, series string) float64 {
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
	t.Fatalf("series %s not found in:\n%s", series, page)
	return 0
}

func TestMetricsObserve(t *testing.T) {
	t.Parallel()
	m := New()
	orders := m.Route("orders", "orders-svc")
	orders.Observe(201, 12*time.Millisecond, 10*time.Millisecond)
	orders.Observe(0, time.Millisecond, 0) // no WriteHeader: 200
	orders.Observe(503, 3*time.Second, 0)
	orders.Observe(101, time.Millisecond, time.Millisecond)
	orders.Observe(302, time.Millisecond, time.Millisecond)
	orders.Observe(404, time.Millisecond, 0)
	orders.Observe(499, time.Millisecond, 0)
	orders.Observe(700, time.Millisecond, 0) // out of range: 5xx
	m.Route("", "").Observe(404, time.Millisecond, 0)

	page := scrape(t, m)
	tests := []struct {
		series string
		want   float64
	}{
		{`portico_requests_total{code_class="1xx",route="orders",service="orders-svc"}`, 1},
		{`portico_requests_total{code_class="2xx",route="orders",service="orders-svc"}`, 2},
		{`portico_requests_total{code_class="3xx",route="orders",service="orders-svc"}`, 1},
		{`portico_requests_total{code_class="4xx",route="orders",service="orders-svc"}`, 2},
		{`portico_requests_total{code_class="5xx",route="orders",service="orders-svc"}`, 2},
		{`portico_requests_total{code_class="4xx",route="",service=""}`, 1},
		{`portico_requests_total{code_class="2xx",route="",service=""}`, 0},
		{`portico_request_duration_seconds_count{route="orders",service="orders-svc"}`, 8},
		{`portico_request_duration_seconds_bucket{route="orders",service="orders-svc",le="0.001"}`, 6},
		{`portico_request_duration_seconds_bucket{route="orders",service="orders-svc",le="0.025"}`, 7},
		{`portico_request_duration_seconds_bucket{route="orders",service="orders-svc",le="+Inf"}`, 8},
		{`portico_upstream_duration_seconds_count{route="orders",service="orders-svc"}`, 3},
		{`portico_upstream_duration_seconds_sum{route="orders",service="orders-svc"}`, 0.012},
		{`portico_upstream_duration_seconds_count{route="",service=""}`, 0},
		{`portico_requests_in_flight`, 0},
		{`portico_config_reloads_total{result="ok"}`, 0},
		{`portico_config_reloads_total{result="failed"}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.series, func(t *testing.T) {
			t.Parallel()
			if got := sample(t, page, tt.series); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetricsRouteIsCached(t *testing.T) {
	t.Parallel()
	m := New()
	a := m.Route("r", "s")
	if b := m.Route("r", "s"); a != b {
		t.Errorf("got a new handle for the same route, want the cached one")
	}
	if c := m.Route("r", "other"); a == c {
		t.Errorf("got the same handle for another service, want a distinct one")
	}
	// A reload resolving the handle again keeps counting on the same series.
	a.Observe(200, time.Millisecond, 0)
	m.Route("r", "s").Observe(200, time.Millisecond, 0)
	page := scrape(t, m)
	if got := sample(t, page, `portico_requests_total{code_class="2xx",route="r",service="s"}`); got != 2 {
		t.Errorf("got %v, want 2", got)
	}
}

func TestMetricsInFlightAndReload(t *testing.T) {
	t.Parallel()
	m := New()
	m.InFlightAdd(1)
	m.InFlightAdd(1)
	m.InFlightAdd(1)
	m.InFlightAdd(-1)
	before := time.Now().Unix()
	m.Reload(true)
	m.Reload(false)
	m.Reload(false)

	page := scrape(t, m)
	if got := sample(t, page, "portico_requests_in_flight"); got != 2 {
		t.Errorf("in flight: got %v, want 2", got)
	}
	if got := sample(t, page, `portico_config_reloads_total{result="ok"}`); got != 1 {
		t.Errorf("reloads ok: got %v, want 1", got)
	}
	if got := sample(t, page, `portico_config_reloads_total{result="failed"}`); got != 2 {
		t.Errorf("reloads failed: got %v, want 2", got)
	}
	ts := sample(t, page, "portico_config_last_reload_success_timestamp_seconds")
	if ts < float64(before) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("last success: got %v, want about %d", ts, before)
	}
}

func TestMetricsIncludesRuntimeCollectors(t *testing.T) {
	t.Parallel()
	page := scrape(t, New())
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		if !strings.Contains(page, "\n"+name+" ") {
			t.Errorf("got no %s series, want the runtime collectors registered", name)
		}
	}
}

func TestMetricsRegistriesArePrivate(t *testing.T) {
	t.Parallel()
	// Two instances must not collide (a global registry would panic on the
	// second registration).
	a, b := New(), New()
	a.Route("x", "y").Observe(200, time.Millisecond, 0)
	page := scrape(t, b)
	if strings.Contains(page, `route="x"`) {
		t.Errorf("got a series from another Telemetry, want private registries")
	}
}

func BenchmarkRouteMetricsObserve(b *testing.B) {
	m := New()
	rm := m.Route("orders", "orders")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rm.Observe(200, 3*time.Millisecond, 2*time.Millisecond)
		}
	})
}

func BenchmarkInFlight(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.InFlightAdd(1)
		m.InFlightAdd(-1)
	}
}

func BenchmarkRateLimitDecisionsRecord(b *testing.B) {
	d := New().RateLimitDecisions("orders", "1m")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d.Record(true)
		}
	})
}
