package httpcache

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testEntry is a typical stored response with a body of n bytes.
func testEntry(n int) *Entry {
	return &Entry{Status: 200, Body: make([]byte, n), Header: http.Header{
		"Content-Type":   {"application/json"},
		"Cache-Control":  {"max-age=60"},
		"Content-Length": {strconv.Itoa(n)},
		"Date":           {"Wed, 21 Oct 2025 07:28:00 GMT"},
	}}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *fakeClock               { c := &fakeClock{}; c.ns.Store(time.Now().UnixNano()); return c }

func TestMemoryGetSetDelete(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m := NewMemory(MemoryOptions{MaxBytes: 16 << 20, Now: clk.now})
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	e := testEntry(100)
	if err := m.Set(ctx, "a", e, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx, "a"); err != nil || got != e {
		t.Fatalf("got %p %v, want the entry", got, err)
	}
	if err := m.Set(ctx, "a", testEntry(200), time.Minute); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 1 || m.Bytes() <= 0 {
		t.Errorf("got %d entries %d bytes, want 1 entry", m.Len(), m.Bytes())
	}
	clk.add(2 * time.Minute)
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v after expiry, want ErrNotFound", err)
	}
	if m.Len() != 0 || m.Bytes() != 0 {
		t.Errorf("got %d entries %d bytes after expiry, want none", m.Len(), m.Bytes())
	}
	_ = m.Set(ctx, "b", e, time.Minute)
	_ = m.Delete(ctx, "b", "missing")
	if _, err := m.Get(ctx, "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v after Delete, want ErrNotFound", err)
	}
}

func TestMemoryDeletePrefix(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	for _, k := range []string{"r1\n/a?\nh", "r1\n/a?\nh\nv=1", "r1\n/ab?\nh", "r1\n/b?\nh", "r2\n/a?\nh"} {
		_ = m.Set(ctx, k, testEntry(10), time.Minute)
	}
	tests := []struct {
		prefix string
		want   int
	}{{"r1\n/a?", 2}, {"r1\n/a", 1}, {"r1\n", 1}, {"", 1}}
	for _, tt := range tests {
		n, err := m.DeletePrefix(ctx, tt.prefix)
		if err != nil || n != tt.want {
			t.Errorf("DeletePrefix(%q): got %d %v, want %d", tt.prefix, n, err, tt.want)
		}
	}
	if m.Len() != 0 {
		t.Errorf("got %d entries, want 0", m.Len())
	}
}

func TestMemoryMaxObjectSize(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{MaxBytes: 16 << 20, MaxObjectSize: 10 << 10})
	_ = m.Set(ctx, "k", testEntry(100), time.Minute)
	if err := m.Set(ctx, "k", testEntry(20<<10), time.Minute); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if _, err := m.Get(ctx, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want the old entry gone", err)
	}
}

// TestMemoryBound fills the store with ten times its bound: the counted
// bytes stay within the bound, and so does the heap, within a small
// overhead.
func TestMemoryBound(t *testing.T) {
	const bound = 8 << 20
	ctx := context.Background()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	m := NewMemory(MemoryOptions{MaxBytes: bound})
	written := 0
	for i := 0; written < 10*bound; i++ {
		e := testEntry(512 + i%4096)
		written += len(e.Body)
		if err := m.Set(ctx, "route\n/items/"+strconv.Itoa(i)+"?\nhost", e, time.Hour); err != nil {
			t.Fatal(err)
		}
		if b := m.Bytes(); b > bound {
			t.Fatalf("got %d bytes stored, want at most %d", b, bound)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("bound %d, counted %d, heap growth %d after writing %d bytes of bodies", bound, m.Bytes(), heap, written)
	if limit := int64(bound) + bound/4 + 1<<20; heap > limit {
		t.Errorf("got %d bytes of heap, want at most %d", heap, limit)
	}
	if m.Evictions() == 0 {
		t.Error("got no evictions")
	}
	runtime.KeepAlive(m)
}

// TestMemorySIEVEKeepsHotKeys: under a scan of one-time keys, the keys
// that are hit again survive, where FIFO or LRU without hits would lose
// them.
func TestMemorySIEVEKeepsHotKeys(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{MaxBytes: 16 << 20})
	hot := make([]string, 200)
	for i := range hot {
		hot[i] = "hot" + strconv.Itoa(i)
		_ = m.Set(ctx, hot[i], testEntry(1000), time.Hour)
	}
	for i := 0; i < 40000; i++ {
		if i%100 == 0 {
			for _, k := range hot {
				_, _ = m.Get(ctx, k)
			}
		}
		_ = m.Set(ctx, "cold"+strconv.Itoa(i), testEntry(1000), time.Hour)
	}
	kept := 0
	for _, k := range hot {
		if _, err := m.Get(ctx, k); err == nil {
			kept++
		}
	}
	if kept < len(hot)*9/10 {
		t.Errorf("got %d of %d hot keys kept, want at least 90%%", kept, len(hot))
	}
}

// TestMemoryHitRatioBeatsLRU compares SIEVE's hit ratio with an LRU of the
// same byte bound on Zipf-distributed keys.
func TestMemoryHitRatioBeatsLRU(t *testing.T) {
	ctx := context.Background()
	const entries, n = 100000, 300000
	size := int64(testEntry(1000).Size() + 20 + 64)
	bound := size * entries / 10
	m := NewMemory(MemoryOptions{MaxBytes: bound})
	lru := newLRU(bound)
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.05, 1, entries-1)
	e := testEntry(1000)
	var sieveHits, lruHits int
	for range n {
		k := "k" + strconv.FormatUint(z.Uint64(), 10)
		if _, err := m.Get(ctx, k); err == nil {
			sieveHits++
		} else {
			_ = m.Set(ctx, k, e, time.Hour)
		}
		if lru.get(k) {
			lruHits++
		} else {
			lru.set(k, size)
		}
	}
	t.Logf("hit ratio: SIEVE %.3f, LRU %.3f", float64(sieveHits)/n, float64(lruHits)/n)
	if sieveHits < lruHits {
		t.Errorf("got SIEVE %d hits, LRU %d, want SIEVE at least as many", sieveHits, lruHits)
	}
}

// lru is a minimal LRU for comparison.
type lru struct {
	bound, bytes int64
	m            map[string]*lruNode
	head, tail   *lruNode
}

type lruNode struct {
	key        string
	size       int64
	prev, next *lruNode
}

func newLRU(bound int64) *lru { return &lru{bound: bound, m: make(map[string]*lruNode)} }

func (l *lru) unlink(n *lruNode) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (l *lru) front(n *lruNode) {
	n.next = l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}

func (l *lru) get(k string) bool {
	n := l.m[k]
	if n == nil {
		return false
	}
	l.unlink(n)
	l.front(n)
	return true
}

func (l *lru) set(k string, size int64) {
	n := &lruNode{key: k, size: size}
	l.m[k] = n
	l.front(n)
	l.bytes += size
	for l.bytes > l.bound/memoryShards*memoryShards && l.tail != nil {
		o := l.tail
		l.unlink(o)
		delete(l.m, o.key)
		l.bytes -= o.size
	}
}

func TestMemoryHoldLargestWins(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{MaxBytes: 4 << 20})
	big := m.Hold(32 << 20)
	small := m.Hold(8 << 20)
	if got := m.Limit(); got != 32<<20 {
		t.Fatalf("got limit %d, want %d", got, 32<<20)
	}
	for i := 0; i < 20000; i++ {
		_ = m.Set(ctx, "k"+strconv.Itoa(i), testEntry(1000), time.Hour)
	}
	_ = big.Close()
	_ = big.Close()
	if got := m.Limit(); got != 8<<20 {
		t.Fatalf("got limit %d, want %d", got, 8<<20)
	}
	if b := m.Bytes(); b > 8<<20 {
		t.Errorf("got %d bytes after shrinking, want at most %d", b, 8<<20)
	}
	_ = small.Close()
	if got := m.Limit(); got != 4<<20 {
		t.Errorf("got limit %d, want the initial %d", got, 4<<20)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{MaxBytes: 2 << 20})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < 5000; i++ {
				k := "k" + strconv.Itoa(r.IntN(3000))
				switch r.IntN(10) {
				case 0:
					_ = m.Delete(ctx, k)
				case 1, 2, 3:
					_ = m.Set(ctx, k, testEntry(r.IntN(2000)), time.Duration(r.IntN(3)+1)*time.Millisecond)
				default:
					_, _ = m.Get(ctx, k)
				}
			}
		}()
	}
	wg.Wait()
	if b := m.Bytes(); b > 2<<20 || b < 0 {
		t.Errorf("got %d bytes, want within [0, %d]", b, 2<<20)
	}
}

func BenchmarkMemoryGetParallel(b *testing.B) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "route\n/items/" + strconv.Itoa(i) + "?\nhost"
		_ = m.Set(ctx, keys[i], testEntry(1000), time.Hour)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			i = (i + 1) % len(keys)
			if _, err := m.Get(ctx, keys[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMemorySetParallel(b *testing.B) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{MaxBytes: 8 << 20})
	keys := make([]string, 100000)
	for i := range keys {
		keys[i] = "route\n/items/" + strconv.Itoa(i) + "?\nhost"
	}
	e := testEntry(1000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(keys))
		for pb.Next() {
			i = (i + 1) % len(keys)
			_ = m.Set(ctx, keys[i], e, time.Hour)
		}
	})
}
