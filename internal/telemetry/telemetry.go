// Package telemetry is where Portico reports about itself: its Prometheus
// metrics, and the shared, buffered outputs that access logs are written
// to.
//
// # Metrics
//
// series.go declares every metric family Portico exports (name, help,
// labels, buckets, and the cardinality of each label); no other package
// names a metric or imports Prometheus. New registers each family once, in
// a private registry (never the process-global one) beside the Go runtime
// and process collectors, and Handler serves it on the admin listener.
//
// Code that records does so through handles it resolves at config compile
// time, never per request:
//
//   - Route: the request series of one (route, service) pair, and
//     InFlightAdd and Reload for the gateway's own series;
//   - RateLimitDecisions: one limit's decisions on one route;
//     RateLimitStore: the rate limiter's store errors and latency;
//   - CacheRoute: one cached route's lookups by result, its coalesced
//     requests and its store's errors;
//   - ACMEOrders: ACME certificate orders by result.
//   - ForwardAuthRoute: one route's forward_auth decisions by result and
//     the latency of its calls to the authorization service.
//
// A handle holds resolved series, so recording is an atomic add with no
// label lookup and no allocation. Handles with the same labels share one
// series, so a snapshot compiled by a reload counts on where the last one
// left off. Every method works on a nil *Telemetry (tests that ignore
// metrics): it returns handles that record nothing.
//
// Values that already live elsewhere (the upstream registry's targets and
// breakers, the cache's memory store) are not copied on the request path.
// Their owner sets a Source with SetSource; at every scrape telemetry calls
// it with an Emitter, and it emits the current values of the sampled
// families declared in series.go (exported, so the owner can name them).
//
// A series shows up when its handle or source first has something to say:
// a route's request series, a cached route's five results and a
// forward_auth route's five results and call latency from compile time on
// (at 0), a rate-limit decision series with its first decision, the
// rate-limit store series once a rate limiter is built, sampled series
// while their source reports them.
//
// Since every value Portico reports passes through these handles and
// sources, another consumer of them (traces, an in-memory history for a
// dashboard) belongs in this package and needs no change to the callers.
//
// # Log outputs
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

// codeClasses are the values of the code_class label, indexed by status/100-1.
var codeClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Telemetry is the gateway's metrics: every family of series.go in a
// private registry, the handles resolved from them and the scrape-time
// sources. It is safe for concurrent use and outlives config reloads.
type Telemetry struct {
	reg        *prometheus.Registry
	counters   map[*Family]*prometheus.CounterVec
	gauges     map[*Family]*prometheus.GaugeVec
	histograms map[*Family]*prometheus.HistogramVec
	sampler    *sampler

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

// New returns a Telemetry with every family of series.go registered once
// in a new private registry, together with the Go runtime and process
// collectors. The in-flight, reload and last-success series exist from
// the start.
func New() *Telemetry {
	t := &Telemetry{
		reg:        prometheus.NewRegistry(),
		counters:   make(map[*Family]*prometheus.CounterVec),
		gauges:     make(map[*Family]*prometheus.GaugeVec),
		histograms: make(map[*Family]*prometheus.HistogramVec),
		sampler:    &sampler{descs: make(map[*Family]*prometheus.Desc), sources: make(map[string]Source)},
		routes:     make(map[routeKey]*RouteMetrics),
	}
	t.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, f := range families {
		switch f.kind {
		case counter:
			v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: f.name, Help: f.help}, f.labels)
			t.reg.MustRegister(v)
			t.counters[f] = v
		case gauge:
			v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.name, Help: f.help}, f.labels)
			t.reg.MustRegister(v)
			t.gauges[f] = v
		case histogram:
			v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: f.name, Help: f.help, Buckets: f.buckets}, f.labels)
			t.reg.MustRegister(v)
			t.histograms[f] = v
		case sampledGauge, sampledCounter:
			t.sampler.descs[f] = prometheus.NewDesc(f.name, f.help, f.labels, nil)
		}
	}
	t.reg.MustRegister(t.sampler)

	t.inFlight = t.gauges[requestsInFlight].WithLabelValues()
	t.lastSuccess = t.gauges[configLastSuccess].WithLabelValues()
	t.reloadOK = t.counters[configReloads].WithLabelValues("ok")
	t.reloadFail = t.counters[configReloads].WithLabelValues("failed")
	return t
}

// Handler serves the metrics in the Prometheus exposition formats, for the
// admin listener. On a nil Telemetry it answers 404.
func (t *Telemetry) Handler() http.Handler {
	if t == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{})
}

// Route returns the handles for one (route, service) pair; route "" stands
// for requests that matched no route. Handles are cached, so every snapshot
// built by a reload gets the same series. Call it at compile time, not per
// request. On a nil Telemetry it returns nil, which records nothing.
func (t *Telemetry) Route(route, service string) *RouteMetrics {
	if t == nil {
		return nil
	}
	k := routeKey{route, service}
	t.mu.Lock()
	defer t.mu.Unlock()
	if rm, ok := t.routes[k]; ok {
		return rm
	}
	rm := &RouteMetrics{
		total:    t.histograms[requestDuration].WithLabelValues(route, service),
		upstream: t.histograms[upstreamDuration].WithLabelValues(route, service),
	}
	for i, class := range codeClasses {
		rm.codes[i] = t.counters[requestsTotal].WithLabelValues(route, service, class)
	}
	t.routes[k] = rm
	return rm
}

// Observe records one finished request: its status, its total duration and
// the time spent upstream (0 when no upstream call was made). A status of 0
// counts as 200, the net/http default; any other status outside 100–599
// counts as 5xx.
func (rm *RouteMetrics) Observe(status int, total, upstream time.Duration) {
	if rm == nil {
		return
	}
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
func (t *Telemetry) InFlightAdd(delta int) {
	if t == nil {
		return
	}
	t.inFlight.Add(float64(delta))
}

// Reload records the result of a config load or reload; a success also
// sets the last-success timestamp to now.
func (t *Telemetry) Reload(ok bool) {
	if t == nil {
		return
	}
	if !ok {
		t.reloadFail.Inc()
		return
	}
	t.reloadOK.Inc()
	t.lastSuccess.SetToCurrentTime()
}
