package upstream

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The Registry is a prometheus.Collector: at scrape time it reports the
// state of the live services' targets, so the request path pays nothing
// for these metrics.
var (
	descTargetUp = prometheus.NewDesc("portico_upstream_target_available",
		"1 when the target may get traffic (active checks pass, not ejected, breaker not open).",
		[]string{"service", "target"}, nil)
	descTargetHealthy = prometheus.NewDesc("portico_upstream_target_active_healthy",
		"1 when active health checks (if any) consider the target healthy.",
		[]string{"service", "target"}, nil)
	descTargetEjected = prometheus.NewDesc("portico_upstream_target_ejected",
		"1 while outlier detection has ejected the target.",
		[]string{"service", "target"}, nil)
	descTargetInflight = prometheus.NewDesc("portico_upstream_target_in_flight",
		"Requests the target is serving now.",
		[]string{"service", "target"}, nil)
	descBreaker = prometheus.NewDesc("portico_upstream_breaker_state",
		"Circuit breaker state: 0 closed, 1 open, 2 half-open (target is empty for the service breaker).",
		[]string{"service", "target"}, nil)
	descTransitions = prometheus.NewDesc("portico_upstream_breaker_transitions_total",
		"Circuit breaker transitions, by the state entered.",
		[]string{"service", "state"}, nil)
	descRetries = prometheus.NewDesc("portico_upstream_retries_total",
		"Retried attempts.", []string{"service"}, nil)
	descFailures = prometheus.NewDesc("portico_upstream_failed_attempts_total",
		"Attempts that failed (connection failure, timeout or 5xx).", []string{"service"}, nil)
	descEjections = prometheus.NewDesc("portico_upstream_ejections_total",
		"Targets ejected by outlier detection.", []string{"service"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Registry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTargetUp, descTargetHealthy, descTargetEjected, descTargetInflight,
		descBreaker, descTransitions, descRetries, descFailures, descEjections} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *Registry) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	live := r.live
	r.mu.Unlock()
	now := time.Now()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range live {
		for _, t := range s.targets {
			gauge(descTargetUp, b2f(t.available(now.UnixNano())), s.name, t.URL)
			gauge(descTargetHealthy, b2f(t.ActiveHealthy()), s.name, t.URL)
			gauge(descTargetEjected, b2f(t.ejected(now.UnixNano())), s.name, t.URL)
			gauge(descTargetInflight, float64(t.Inflight()), s.name, t.URL)
			if b := t.breaker.Load(); b != nil {
				gauge(descBreaker, float64(b.State(now)), s.name, t.URL)
			}
		}
		if s.breaker != nil {
			gauge(descBreaker, float64(s.breaker.State(now)), s.name, "")
		}
		for st := BreakerClosed; st <= BreakerHalfOpen; st++ {
			counter(descTransitions, s.state.transitions[st].Load(), s.name, st.String())
		}
		counter(descRetries, s.state.retries.Load(), s.name)
		counter(descFailures, s.state.failures.Load(), s.name)
		counter(descEjections, s.state.ejections.Load(), s.name)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
