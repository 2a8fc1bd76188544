package telemetry

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// touchAll gives every family of series.go at least one series: it
// resolves and uses every handle and sets a source that emits every
// sampled family.
func touchAll(tel *Telemetry) {
	tel.Route("r", "s").Observe(200, time.Millisecond, time.Millisecond)
	tel.InFlightAdd(1)
	tel.Reload(true)
	tel.RateLimitDecisions("r", "1m").Record(true)
	tel.RateLimitStore().Observe(time.Millisecond, errors.New("down"))
	tel.CacheRoute("r", "memory").Hit.Inc()
	tel.ACMEOrders().OK.Inc()
	fa := tel.ForwardAuthRoute("r")
	fa.Admitted.Inc()
	fa.Duration.Observe(time.Millisecond)
	tel.SetSource("all", func(e *Emitter) {
		for _, f := range families {
			if !f.sampled() {
				continue
			}
			labels := make([]string, len(f.labels))
			for i := range labels {
				labels[i] = "x"
			}
			e.Emit(f, 1, labels...)
		}
	})
}

// TestEveryFamilyRegisteredOnce scrapes the handler with every family in
// use: each declared family shows up exactly once, with its help and type,
// and no portico_ family shows up that series.go does not declare.
func TestEveryFamilyRegisteredOnce(t *testing.T) {
	t.Parallel()
	tel := New()
	touchAll(tel)
	page := scrape(t, tel)

	types := map[kind]string{counter: "counter", gauge: "gauge", histogram: "histogram",
		sampledGauge: "gauge", sampledCounter: "counter"}
	declared := make(map[string]bool)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			if declared[f.name] {
				t.Fatalf("declared twice in families")
			}
			declared[f.name] = true
			help := "# HELP " + f.name + " " + f.help + "\n"
			if got := strings.Count(page, "# HELP "+f.name+" "); got != 1 || !strings.Contains(page, help) {
				t.Errorf("got %d HELP lines, want exactly %q", got, help)
			}
			if typ := "# TYPE " + f.name + " " + types[f.kind] + "\n"; !strings.Contains(page, typ) {
				t.Errorf("got no %q", typ)
			}
		})
	}
	for line := range strings.SplitSeq(page, "\n") {
		rest, ok := strings.CutPrefix(line, "# HELP portico_")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		if !declared["portico_"+name] {
			t.Errorf("got family portico_%s, which series.go does not declare", name)
		}
	}
}

// TestFamiliesAreWellFormed checks the declarations themselves: names are
// Portico's, sampled families are exported (their owners must name them)
// and only histograms have buckets.
func TestFamiliesAreWellFormed(t *testing.T) {
	t.Parallel()
	for _, f := range families {
		if !strings.HasPrefix(f.name, "portico_") || f.help == "" {
			t.Errorf("%q: want a portico_ name and a help text", f.name)
		}
		if (f.kind == histogram) != (len(f.buckets) > 0) {
			t.Errorf("%s: got %d buckets for kind %d, want buckets on histograms only", f.name, len(f.buckets), f.kind)
		}
		if f.kind == counter || f.kind == sampledCounter {
			if !strings.HasSuffix(f.name, "_total") {
				t.Errorf("%s: a counter's name ends in _total", f.name)
			}
		}
	}
}

func TestNilTelemetryRecordsNothing(t *testing.T) {
	t.Parallel()
	var tel *Telemetry
	tel.Route("r", "s").Observe(200, time.Millisecond, 0)
	tel.InFlightAdd(1)
	tel.Reload(false)
	tel.RateLimitDecisions("r", "l").Record(true)
	tel.RateLimitStore().Observe(time.Millisecond, errors.New("down"))
	c := tel.CacheRoute("r", "memory")
	c.Hit.Inc()
	c.StoreErrors.Inc()
	fa := tel.ForwardAuthRoute("r")
	fa.Refused.Inc()
	fa.Duration.Observe(time.Millisecond)
	tel.SetSource("x", func(*Emitter) {})
	rec := httptest.NewRecorder()
	tel.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("got status %d, want 404", rec.Code)
	}
}

// TestSeriesAppearAsBefore pins when series first show up: decisions with
// their first use, the store series and a cached route's series when
// resolved, the sampled ones while a source reports them.
func TestSeriesAppearAsBefore(t *testing.T) {
	t.Parallel()
	tel := New()
	page := scrape(t, tel)
	for _, name := range []string{"portico_ratelimit_", "portico_cache_", "portico_upstream_target", "portico_forward_auth_"} {
		if strings.Contains(page, name) {
			t.Errorf("got %s series before any handle or source, want none", name)
		}
	}

	d := tel.RateLimitDecisions("r", "1m")
	store := tel.RateLimitStore()
	tel.CacheRoute("c", "redis")
	tel.ForwardAuthRoute("f")
	page = scrape(t, tel)
	if strings.Contains(page, "portico_ratelimit_decisions_total") {
		t.Errorf("got decision series before any decision, want none")
	}
	for _, series := range []string{
		"portico_ratelimit_store_errors_total",
		"portico_ratelimit_store_duration_seconds_count",
		`portico_cache_requests_total{result="revalidated",route="c"}`,
		`portico_cache_coalesced_total{route="c"}`,
		`portico_cache_store_errors_total{store="redis"}`,
		`portico_forward_auth_decisions_total{result="admitted",route="f"}`,
		`portico_forward_auth_decisions_total{result="cached_refused",route="f"}`,
		`portico_forward_auth_duration_seconds_count{route="f"}`,
	} {
		if got := sample(t, page, series); got != 0 {
			t.Errorf("%s: got %v, want 0", series, got)
		}
	}

	d.Record(false)
	d.Record(false)
	tel.RateLimitDecisions("r", "1m").Record(false) // a reload's handle: the same series
	store.Observe(time.Millisecond, nil)
	page = scrape(t, tel)
	if got := sample(t, page, `portico_ratelimit_decisions_total{limit="1m",result="limited",route="r"}`); got != 3 {
		t.Errorf("limited: got %v, want 3", got)
	}
	if strings.Contains(page, `result="allowed"`) {
		t.Errorf("got an allowed series with no allowed decision, want none")
	}
	if got := sample(t, page, "portico_ratelimit_store_duration_seconds_count"); got != 1 {
		t.Errorf("store decisions: got %v, want 1", got)
	}
}

func TestSourceByName(t *testing.T) {
	t.Parallel()
	tel := New()
	tel.SetSource("a", func(e *Emitter) { e.Emit(UpstreamRetries, 1, "svc") })
	tel.SetSource("a", func(e *Emitter) { e.Emit(UpstreamRetries, 2, "svc") }) // replaces
	tel.SetSource("b", func(e *Emitter) {
		e.Emit(UpstreamBreakerTransitions, 3, "svc", "open")
	})
	page := scrape(t, tel)
	if got := sample(t, page, `portico_upstream_retries_total{service="svc"}`); got != 2 {
		t.Errorf("retries: got %v, want 2 (the replacing source)", got)
	}
	if !strings.Contains(page, "# TYPE portico_upstream_breaker_transitions_total counter\n") {
		t.Errorf("got no counter type for a sampled counter")
	}
	if got := sample(t, page, `portico_upstream_breaker_transitions_total{service="svc",state="open"}`); got != 3 {
		t.Errorf("transitions: got %v, want 3", got)
	}
	tel.SetSource("a", nil)
	if page := scrape(t, tel); strings.Contains(page, "portico_upstream_retries_total") {
		t.Errorf("got retries after their source was removed, want none")
	}
}

// TestEmitMistakesFailTheScrape: a family that is not sampled or a wrong
// label count fails the scrape with a message naming the family; nothing
// panics.
func TestEmitMistakesFailTheScrape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		emit func(e *Emitter)
		want string
	}{
		{"not sampled", func(e *Emitter) { e.Emit(requestsTotal, 1, "a", "b", "c") }, "portico_requests_total: not a sampled family"},
		{"label count", func(e *Emitter) { e.Emit(UpstreamRetries, 1) }, "portico_upstream_retries_total"},
		{"nil family", func(e *Emitter) { e.Emit(nil, 1) }, "a nil family"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tel := New()
			tel.SetSource("bad", tt.emit)
			srv := httptest.NewServer(tel.Handler())
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), tt.want) {
				t.Errorf("got %d %s, want 500 mentioning %q", resp.StatusCode, body, tt.want)
			}
		})
	}
}
