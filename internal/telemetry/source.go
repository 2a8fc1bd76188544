package telemetry

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Source reports the current values of sampled families; telemetry calls
// it at every scrape. It runs on the scraping goroutine, concurrently with
// everything else its owner does, so it reads its owner's state safely
// and quickly.
type Source func(e *Emitter)

// SetSource makes src the source named name, replacing the one set under
// that name before (nil removes it). An owner that is recreated after a
// reload sets its source under the same name, so nothing is reported
// twice.
func (t *Telemetry) SetSource(name string, src Source) {
	if t == nil {
		return
	}
	t.sampler.mu.Lock()
	defer t.sampler.mu.Unlock()
	if src == nil {
		delete(t.sampler.sources, name)
		return
	}
	t.sampler.sources[name] = src
}

// Emitter takes the values a Source reports during one scrape.
type Emitter struct {
	ch    chan<- prometheus.Metric
	descs map[*Family]*prometheus.Desc
}

// Emit reports v as the value of the sampled family f for the given label
// values, in the order series.go declares f's labels. A family that is not
// sampled, or a wrong number of label values, fails the scrape with an
// error that names the family.
func (e *Emitter) Emit(f *Family, v float64, labelValues ...string) {
	d, ok := e.descs[f]
	if !ok {
		name := "a nil family"
		if f != nil {
			name = f.name
		}
		err := fmt.Errorf("emit %s: not a sampled family", name)
		e.ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(err), err)
		return
	}
	typ := prometheus.GaugeValue
	if f.kind == sampledCounter {
		typ = prometheus.CounterValue
	}
	m, err := prometheus.NewConstMetric(d, typ, v, labelValues...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, fmt.Errorf("emit %s: %w", f.name, err))
	}
	e.ch <- m
}

// sampler is the collector of the sampled families: at every scrape it
// calls the sources, in name order.
type sampler struct {
	descs map[*Family]*prometheus.Desc

	mu      sync.Mutex
	sources map[string]Source
}

// Describe sends the sampled families' descriptors.
func (s *sampler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

// Collect runs the sources.
func (s *sampler) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.sources))
	srcs := make([]Source, len(names))
	for i, n := range names {
		srcs[i] = s.sources[n]
	}
	s.mu.Unlock()
	e := &Emitter{ch: ch, descs: s.descs}
	for _, src := range srcs {
		src(e)
	}
}
