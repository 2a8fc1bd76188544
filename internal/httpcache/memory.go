package httpcache

import (
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrTooLarge is returned by Memory.Set for an entry larger than the
// maximum object size; it is not stored.
var ErrTooLarge = errors.New("cache: entry larger than the maximum object size")

// DefaultMemoryBytes is the memory store's bound when none is given.
const DefaultMemoryBytes = 64 << 20

// memoryShards is the number of shards of a Memory store; each holds at
// most 1/memoryShards of the bound.
const memoryShards = 16

// MemoryOptions configure a Memory store.
type MemoryOptions struct {
	// MaxBytes bounds the sum of the entries' sizes (Entry.Size plus the
	// key). Default DefaultMemoryBytes. Hold may raise it.
	MaxBytes int64
	// MaxObjectSize is the largest entry stored (default and upper
	// bound: MaxBytes/16, one shard).
	MaxObjectSize int64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Memory is a Store in process memory, bounded in bytes, with SIEVE
// eviction (Zhang et al., NSDI 2024): entries sit in a FIFO queue with a
// visited bit; a hit only sets the bit (under the shard's read lock), and
// when the shard is full a hand sweeps from the oldest entry towards the
// newest, clearing set bits and evicting the first entry whose bit is
// clear. On skewed traffic it keeps popular entries better than LRU, and
// hits never move entries or take a write lock. Expired entries are
// dropped when met (by Get or by the hand).
//
// The key space is split into 16 shards, each with its own lock and its
// share of the byte bound.
type Memory struct {
	shards    [memoryShards]memShard
	seed      maphash.Seed
	now       func() time.Time
	maxObject int64

	limit     atomic.Int64 // bytes, all shards
	bytes     atomic.Int64
	entries   atomic.Int64
	evictions atomic.Int64

	mu     sync.Mutex
	base   int64
	bounds map[int64]int // held bounds, with their holders
}

var _ Store = (*Memory)(nil)

type memShard struct {
	mu    sync.RWMutex
	m     map[string]*node
	head  *node // newest
	tail  *node // oldest
	hand  *node
	bytes int64
	_     [40]byte // keep shards' locks on separate cache lines
}

type node struct {
	key        string
	e          *Entry
	size       int64
	expires    int64 // unix nanoseconds
	visited    atomic.Bool
	prev, next *node // prev towards head (newer), next towards tail
}

// NewMemory returns an empty Memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMemoryBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{seed: maphash.MakeSeed(), now: o.Now, maxObject: o.MaxObjectSize,
		base: o.MaxBytes, bounds: make(map[int64]int)}
	m.limit.Store(o.MaxBytes)
	for i := range m.shards {
		m.shards[i].m = make(map[string]*node)
	}
	return m
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%memoryShards]
}

// Get returns the live entry under key.
func (m *Memory) Get(_ context.Context, key string) (*Entry, error) {
	s := m.shard(key)
	s.mu.RLock()
	n := s.m[key]
	if n == nil {
		s.mu.RUnlock()
		return nil, ErrNotFound
	}
	if n.expires <= m.now().UnixNano() {
		s.mu.RUnlock()
		s.mu.Lock()
		if n2 := s.m[key]; n2 == n {
			m.remove(s, n)
		}
		s.mu.Unlock()
		return nil, ErrNotFound
	}
	if !n.visited.Load() {
		n.visited.Store(true)
	}
	e := n.e
	s.mu.RUnlock()
	return e, nil
}

// Set stores e under key for ttl, evicting entries of the key's shard as
// the bound requires. An entry larger than the maximum object size is not
// stored (ErrTooLarge) and removes what key held; a ttl <= 0 stores
// nothing.
func (m *Memory) Set(_ context.Context, key string, e *Entry, ttl time.Duration) error {
	size := int64(e.Size() + len(key) + 64)
	shardLimit := m.limit.Load() / memoryShards
	s := m.shard(key)
	if ttl <= 0 || size > shardLimit || m.maxObject > 0 && size > m.maxObject {
		s.mu.Lock()
		if n := s.m[key]; n != nil {
			m.remove(s, n)
		}
		s.mu.Unlock()
		if ttl <= 0 {
			return nil
		}
		return ErrTooLarge
	}
	n := &node{key: key, e: e, size: size, expires: m.now().Add(ttl).UnixNano()}
	s.mu.Lock()
	if old := s.m[key]; old != nil {
		m.remove(s, old)
	}
	s.m[key] = n
	n.next = s.head
	if s.head != nil {
		s.head.prev = n
	}
	s.head = n
	if s.tail == nil {
		s.tail = n
	}
	s.bytes += size
	m.bytes.Add(size)
	m.entries.Add(1)
	m.evict(s, shardLimit)
	s.mu.Unlock()
	return nil
}

// evict runs the SIEVE hand until the shard is within limit. The caller
// holds s.mu.
func (m *Memory) evict(s *memShard, limit int64) {
	now := m.now().UnixNano()
	for s.bytes > limit && s.tail != nil {
		o := s.hand
		if o == nil {
			o = s.tail
		}
		for o.visited.Load() && o.expires > now {
			o.visited.Store(false)
			o = o.prev
			if o == nil {
				o = s.tail
			}
		}
		s.hand = o.prev
		m.remove(s, o)
		m.evictions.Add(1)
	}
}

// remove unlinks n. The caller holds s.mu.
func (m *Memory) remove(s *memShard, n *node) {
	if s.hand == n {
		s.hand = n.prev
	}
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		s.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = nil, nil
	delete(s.m, n.key)
	s.bytes -= n.size
	m.bytes.Add(-n.size)
	m.entries.Add(-1)
}

// Delete removes the entries under keys.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		s := m.shard(k)
		s.mu.Lock()
		if n := s.m[k]; n != nil {
			m.remove(s, n)
		}
		s.mu.Unlock()
	}
	return nil
}

// DeletePrefix removes every entry whose key starts with prefix (a scan
// of every shard).
func (m *Memory) DeletePrefix(_ context.Context, prefix string) (int, error) {
	removed := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, n := range s.m {
			if strings.HasPrefix(k, prefix) {
				m.remove(s, n)
				removed++
			}
		}
		s.mu.Unlock()
	}
	return removed, nil
}

// Bytes is the sum of the sizes of the stored entries.
func (m *Memory) Bytes() int64 { return m.bytes.Load() }

// Len is the number of stored entries (expired ones included until met).
func (m *Memory) Len() int64 { return m.entries.Load() }

// Evictions counts the entries evicted to keep within the bound.
func (m *Memory) Evictions() int64 { return m.evictions.Load() }

// Limit is the current byte bound.
func (m *Memory) Limit() int64 { return m.limit.Load() }

// Hold raises the bound to at least bytes while the returned hold is
// open: with several holders, the largest bound wins. Closing the last
// hold of the largest bound lowers the bound to the next largest (or the
// initial one) and evicts down to it.
func (m *Memory) Hold(bytes int64) *Hold {
	m.mu.Lock()
	m.bounds[bytes]++
	m.mu.Unlock()
	m.applyBounds()
	return &Hold{m: m, bytes: bytes}
}

// Hold is one holder's claim on a Memory store's bound.
type Hold struct {
	m     *Memory
	bytes int64
	once  sync.Once
}

// Close releases the claim.
func (h *Hold) Close() error {
	h.once.Do(func() {
		h.m.mu.Lock()
		if h.m.bounds[h.bytes]--; h.m.bounds[h.bytes] <= 0 {
			delete(h.m.bounds, h.bytes)
		}
		h.m.mu.Unlock()
		h.m.applyBounds()
	})
	return nil
}

func (m *Memory) applyBounds() {
	m.mu.Lock()
	limit := int64(0)
	for b := range m.bounds {
		limit = max(limit, b)
	}
	if limit == 0 {
		limit = m.base
	}
	old := m.limit.Swap(limit)
	m.mu.Unlock()
	if limit >= old {
		return
	}
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		m.evict(s, limit/memoryShards)
		s.mu.Unlock()
	}
}
