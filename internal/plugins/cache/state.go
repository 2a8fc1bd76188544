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
	"github.com/portico-gateway/portico/internal/telemetry"
)

// Keys of the plugin's objects in pipeline.Shared.
var (
	sharedMemory     = pipeline.NewKey[*memoryStore]("cache:memory")
	sharedRegistry   = pipeline.NewKey[*registry]("cache:registry")
	sharedGroup      = pipeline.NewKey[*httpcache.Group]("cache:group")
	sharedBackground = pipeline.NewKey[*background]("cache:background")
	sharedTelemetry  = pipeline.NewKey[*memorySource]("cache:telemetry")
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

// memorySource reports the memory store's bytes and evictions at scrape
// time. It is created once per Shared, with the first cache route, and
// reads the memory store the latest config uses.
type memorySource struct {
	mem atomic.Pointer[httpcache.Memory]
}

// memorySourceFor returns the shared source, set in tel when created (nil
// when tel is nil).
func memorySourceFor(shared *pipeline.Shared, tel *telemetry.Telemetry) *memorySource {
	if tel == nil {
		return nil
	}
	return pipeline.Get(shared, sharedTelemetry, func() *memorySource {
		s := &memorySource{}
		tel.SetSource("cache", s.report)
		return s
	})
}

// report emits the current memory store's bytes and evictions (0 while
// no route uses the memory store).
func (s *memorySource) report(e *telemetry.Emitter) {
	var b, ev float64
	if m := s.mem.Load(); m != nil {
		b, ev = float64(m.Bytes()), float64(m.Evictions())
	}
	e.Emit(telemetry.CacheStoredBytes, b)
	e.Emit(telemetry.CacheEvictions, ev)
}
