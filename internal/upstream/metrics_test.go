package upstream

import (
	"testing"
	"time"

	"github.com/portico-gateway/portico/internal/config"
	"github.com/portico-gateway/portico/internal/telemetry"
	"github.com/portico-gateway/portico/internal/telemetry/telemetrytest"
)

// TestReportAtScrape: the registry, set as a telemetry source, reports
// the live services' targets, breakers and counters when scraped.
func TestReportAtScrape(t *testing.T) {
	t.Parallel()
	r := NewRegistry(nil)
	defer r.Close()
	cb := breakerConfigFor(nil)
	s, err := r.Service(config.Service{Name: "pay", CircuitBreaker: &cb, Targets: []config.Target{
		{URL: "http://a:1", Weight: 1}, {URL: "http://b:1", Weight: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.Activate([]*Service{s})
	p, err := s.Pick(&PickRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s.Report(p, ServerError, time.Millisecond, time.Now())
	s.CountRetry()

	tel := telemetry.New()
	tel.SetSource("upstream", r.Report)
	page := telemetrytest.Scrape(t, tel)
	tests := []struct {
		series string
		want   float64
	}{
		{`portico_upstream_target_available{service="pay",target="http://a:1"}`, 1},
		{`portico_upstream_target_active_healthy{service="pay",target="http://b:1"}`, 1},
		{`portico_upstream_target_ejected{service="pay",target="http://a:1"}`, 0},
		{`portico_upstream_target_in_flight{service="pay",target="http://b:1"}`, 0},
		{`portico_upstream_breaker_state{service="pay",target=""}`, 0},
		{`portico_upstream_breaker_transitions_total{service="pay",state="open"}`, 0},
		{`portico_upstream_retries_total{service="pay"}`, 1},
		{`portico_upstream_failed_attempts_total{service="pay"}`, 1},
		{`portico_upstream_ejections_total{service="pay"}`, 0},
	}
	for _, tt := range tests {
		if got, ok := page.Value(tt.series); !ok || got != tt.want {
			t.Errorf("%s: got %v (found %t), want %v", tt.series, got, ok, tt.want)
		}
	}
}
