// Package telemetry holds what Portico reports about itself: Prometheus
// metrics and the shared, buffered outputs that access logs are written to.
//
// Metrics live in a private registry (never the process-global one) that the
// admin listener serves. Per-route handles are resolved once per (route,
// service) pair and cached, so a config reload hands the new snapshot the
// same series and the request path only increments pre-resolved counters.
//
// Log outputs (Sinks) are opened by name at config compile time, shared by
// every plugin instance that names them, buffered, flushed once a second by
// Run, and reopened on log rotation.
package telemetry

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets are the latency histogram buckets in seconds, from 0.5 ms
// (a gateway hop to a local upstream) to 30 s (a slow upstream at the
// default response timeout).
var durationBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// codeClasses are the values of the code_class label, indexed by status/100-1.
var codeClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics is the gateway's set of Prometheus metrics in a private registry.
// It is safe for concurrent use and outlives config reloads.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	upstream    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	reloadOK    prometheus.Counter
	reloadFail  prometheus.Counter
	lastSuccess prometheus.Gauge

	mu     sync.Mutex
	routes map[routeKey]*RouteMetrics
}

type routeKey struct{ route, service string }

// RouteMetrics holds the pre-resolved series of one (route, service) pair,
// so recording a request does no label lookup and no allocation.
type RouteMetrics struct {
	codes    [5]prometheus.Counter
	total    prometheus.Observer
	upstream prometheus.Observer
}

// NewMetrics returns the gateway metrics registered in a new private
// registry, together with the Go runtime and process collectors:
//
//   - portico_requests_total{route,service,code_class}
//   - portico_request_duration_seconds{route,service} (histogram)
//   - portico_upstream_duration_seconds{route,service} (histogram)
//   - portico_requests_in_flight
//   - portico_config_reloads_total{result="ok"|"failed"}
//   - portico_config_last_reload_success_timestamp_seconds
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_requests_total",
			Help: "Requests answered, by route, service and status class.",
		}, []string{"route", "service", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portico_request_duration_seconds",
			Help:    "Time from the start of a request to the end of its response.",
			Buckets: durationBuckets,
		}, []string{"route", "service"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portico_upstream_duration_seconds",
			Help:    "Time spent waiting for and reading upstream responses.",
			Buckets: durationBuckets,
		}, []string{"route", "service"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portico_requests_in_flight",
			Help: "Requests being handled right now.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portico_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load.",
		}),
		routes: make(map[routeKey]*RouteMetrics),
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_config_reloads_total",
		Help: "Config reloads, by result.",
	}, []string{"result"})
	m.reloadOK = reloads.WithLabelValues("ok")
	m.reloadFail = reloads.WithLabelValues("failed")

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.upstream, m.inFlight, reloads, m.lastSuccess,
	)
	return m
}

// Handler serves the metrics in the Prometheus exposition formats, for the
// admin listener.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the private registry, so other packages can register
// their own collectors beside the gateway's.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Route returns the handles for one (route, service) pair; route "" stands
// for requests that matched no route. Handles are cached, so every snapshot
// built by a reload gets the same series. Call it at compile time, not per
// request.
func (m *Metrics) Route(route, service string) *RouteMetrics {
	k := routeKey{route, service}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rm, ok := m.routes[k]; ok {
		return rm
	}
	rm := &RouteMetrics{
		total:    m.duration.WithLabelValues(route, service),
		upstream: m.upstream.WithLabelValues(route, service),
	}
	for i, class := range codeClasses {
		rm.codes[i] = m.requests.WithLabelValues(route, service, class)
	}
	m.routes[k] = rm
	return rm
}

// Observe records one finished request: its status, its total duration and
// the time spent upstream (0 when no upstream call was made). A status of 0
// counts as 200, the net/http default; any other status outside 100–599
// counts as 5xx.
func (rm *RouteMetrics) Observe(status int, total, upstream time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	i := status/100 - 1
	if i < 0 || i >= len(rm.codes) {
		i = len(rm.codes) - 1
	}
	rm.codes[i].Inc()
	rm.total.Observe(total.Seconds())
	if upstream > 0 {
		rm.upstream.Observe(upstream.Seconds())
	}
}

// InFlightAdd adds delta (+1 when a request starts, -1 when it ends) to the
// in-flight gauge.
func (m *Metrics) InFlightAdd(delta int) {
	m.inFlight.Add(float64(delta))
}

// Reload records the result of a config load or reload; a success also
// sets the last-success timestamp to now.
func (m *Metrics) Reload(ok bool) {
	if !ok {
		m.reloadFail.Inc()
		return
	}
	m.reloadOK.Inc()
	m.lastSuccess.SetToCurrentTime()
}
