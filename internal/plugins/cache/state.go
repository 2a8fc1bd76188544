package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/portico-gateway/portico/internal/httpcache"
	"github.com/portico-gateway/portico/internal/pipeline"
	"github.com/portico-gateway/portico/internal/router"
	"github.com/prometheus/client_golang/prometheus"
)

// Keys of the plugin's objects in pipeline.Shared.
var (
	sharedMemory     = pipeline.NewKey[*memoryStore]("cache:memory")
	sharedRegistry   = pipeline.NewKey[*registry]("cache:registry")
	sharedGroup      = pipeline.NewKey[*httpcache.Group]("cache:group")
	sharedBackground = pipeline.NewKey[*background]("cache:background")
	sharedMetrics    = pipeline.NewKey[*metrics]("cache:metrics")
)

// registry knows the stores in use and each route's key rules, for Purge.
type registry struct {
	mu     sync.Mutex
	stores map[string]httpcache.Store // by Shared key
	keyers map[string]*httpcache.Keyer
}

func registryFor(shared *pipeline.Shared) *registry {
	return pipeline.Get(shared, sharedRegistry, func() *registry {
		return &registry{stores: make(map[string]httpcache.Store), keyers: make(map[string]*httpcache.Keyer)}
	})
}

func (r *registry) add(key string, s httpcache.Store) {
	r.mu.Lock()
	r.stores[key] = s
	r.mu.Unlock()
}

func (r *registry) remove(key string) {
	r.mu.Lock()
	delete(r.stores, key)
	r.mu.Unlock()
}

func (r *registry) setKeyer(route string, k *httpcache.Keyer) {
	r.mu.Lock()
	r.keyers[route] = k
	r.mu.Unlock()
}

// memoryStore is the shared memory store; it leaves the registry when no
// config uses it any more.
type memoryStore struct {
	*httpcache.Memory
	reg *registry
}

// Close forgets the store (pipeline.Shared retires it after a reload that no
// longer uses it).
func (m *memoryStore) Close() error {
	m.reg.remove(sharedMemory.String())
	return nil
}

// memoryFor returns the shared memory store, holding its bound at least at
// maxBytes while this config uses that bound.
func memoryFor(shared *pipeline.Shared, reg *registry, maxBytes int64) *httpcache.Memory {
	ms := pipeline.Get(shared, sharedMemory, func() *memoryStore {
		m := &memoryStore{Memory: httpcache.NewMemory(httpcache.MemoryOptions{MaxBytes: maxBytes}), reg: reg}
		reg.add(sharedMemory.String(), m.Memory)
		return m
	})
	bound := pipeline.NewKey[*httpcache.Hold](sharedMemory.String() + ":bound:" + strconv.FormatInt(maxBytes, 10))
	pipeline.Get(shared, bound, func() *httpcache.Hold { return ms.Hold(maxBytes) })
	return ms.Memory
}

// background runs stale-while-revalidate refreshes. Each runs with its own
// context below the object's, never the client's; Close cancels them and
// waits.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
}

func newBackground() *background {
	ctx, cancel := context.WithCancel(context.Background())
	return &background{ctx: ctx, cancel: cancel}
}

// spawn runs f in a goroutine unless the object is closed.
func (b *background) spawn(f func(ctx context.Context)) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		f(b.ctx)
	}()
	return true
}

// Close stops the refreshes in flight and waits for them.
func (b *background) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	return nil
}

// Purge removes stored responses of route from every store in use: one
// URL (path and rawQuery, normalised as the route's keys are), every URL
// whose path starts with path (prefix true), or everything of the route
// (path ""). route "" with path "" removes every stored response. It
// returns how many entries were removed (Vary markers and variants
// count).
func Purge(shared *pipeline.Shared, route, path, rawQuery string, prefix bool) (int, error) {
	reg := registryFor(shared)
	reg.mu.Lock()
	stores := make([]httpcache.Store, 0, len(reg.stores))
	keys := make([]string, 0, len(reg.stores))
	for k := range reg.stores {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		stores = append(stores, reg.stores[k])
	}
	keyer := reg.keyers[route]
	reg.mu.Unlock()

	var p string
	switch {
	case path == "" && route == "":
		p = ""
	case path == "":
		p = route + "\n"
	case route == "":
		return 0, errors.New("purge: a path needs a route")
	default:
		norm, err := router.NormalizePath(path)
		if err != nil {
			return 0, fmt.Errorf("purge: bad path: %w", err)
		}
		if prefix {
			p = route + "\n" + norm
			break
		}
		q := httpcache.NormalizeQuery(rawQuery, nil, nil)
		if keyer != nil {
			q = keyer.Query(rawQuery)
		}
		p = httpcache.URLPrefix(route, norm, q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), purgeTimeout)
	defer cancel()
	total := 0
	var errs []error
	for _, s := range stores {
		n, err := s.DeletePrefix(ctx, p)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// metrics are the plugin's Prometheus collectors, created once per Shared
// and registered once.
type metrics struct {
	requests    *prometheus.CounterVec
	coalesced   *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	mem         *memoryCollector
}

// routeMetrics are one route's counters, resolved at Build.
type routeMetrics struct {
	hit, miss, stale, bypass, revalidated prometheus.Counter
	coalesced                             prometheus.Counter
	storeErrors                           prometheus.Counter
}

func (m *routeMetrics) inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// memoryCollector reports the memory store's bytes and evictions.
type memoryCollector struct {
	mem       atomic.Pointer[httpcache.Memory]
	bytes     *prometheus.Desc
	evictions *prometheus.Desc
}

// Describe sends the descriptors.
func (c *memoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.evictions
}

// Collect reads the current memory store.
func (c *memoryCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.mem.Load()
	var b, e float64
	if m != nil {
		b, e = float64(m.Bytes()), float64(m.Evictions())
	}
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, b)
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, e)
}

func metricsFor(shared *pipeline.Shared, reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return pipeline.Get(shared, sharedMetrics, func() *metrics {
		m := &metrics{
			requests: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "portico_cache_requests_total",
				Help: "Cache lookups by route and result (hit, miss, stale, bypass, revalidated).",
			}, []string{"route", "result"}),
			coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "portico_cache_coalesced_total",
				Help: "Requests that waited for another request fetching the same response.",
			}, []string{"route"}),
			storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "portico_cache_store_errors_total",
				Help: "Cache store operations that failed (treated as misses).",
			}, []string{"store"}),
			mem: &memoryCollector{
				bytes: prometheus.NewDesc("portico_cache_stored_bytes",
					"Bytes held by the memory cache store.", nil, nil),
				evictions: prometheus.NewDesc("portico_cache_evictions_total",
					"Entries evicted from the memory cache store to keep within its bound.", nil, nil),
			},
		}
		m.requests = register(reg, m.requests)
		m.coalesced = register(reg, m.coalesced)
		m.storeErrors = register(reg, m.storeErrors)
		m.mem = register(reg, m.mem)
		return m
	})
}

// register registers c, or returns the collector already registered in
// its place (after the metrics object was retired and created again).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *metrics) forRoute(route, store string) routeMetrics {
	if m == nil {
		return routeMetrics{}
	}
	return routeMetrics{
		hit:         m.requests.WithLabelValues(route, "hit"),
		miss:        m.requests.WithLabelValues(route, "miss"),
		stale:       m.requests.WithLabelValues(route, "stale"),
		bypass:      m.requests.WithLabelValues(route, "bypass"),
		revalidated: m.requests.WithLabelValues(route, "revalidated"),
		coalesced:   m.coalesced.WithLabelValues(route),
		storeErrors: m.storeErrors.WithLabelValues(store),
	}
}
