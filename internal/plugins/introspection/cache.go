package introspection

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// digest is the SHA-256 of a token: the cache never holds tokens.
type digest = [sha256.Size]byte

// result is one parsed introspection response. It is shared by every
// request that presents the same token and is read-only.
type result struct {
	active     bool
	subject    string         // sub, or username
	credential string         // "introspection:" + client_id, or sub
	scopes     []string       // scope, split on spaces
	issuer     string         // iss
	audience   []string       // aud (a string or a list)
	exp        time.Time      // zero when the response has no exp
	claims     map[string]any // every response field
}

// entry is one cached result.
type entry struct {
	key     digest
	res     *result
	expires time.Time
}

// call is one introspection in flight; requests for the same token wait on
// it instead of making their own.
type call struct {
	done    chan struct{}
	res     *result
	err     error
	waiting int // requests waiting on this call; guarded by store.mu
}

// store is the long-lived state of one endpoint and client_id: the bounded
// result cache, the calls in flight, and the connection pool. It lives in
// pipeline.Shared, so reloads keep it warm.
type store struct {
	mu      sync.Mutex
	max     int
	entries map[digest]*list.Element // of *entry
	order   *list.List               // insertion order, oldest first
	calls   map[digest]*call

	client *client
}

func newStore(max int) *store {
	return &store{
		max:     max,
		entries: make(map[digest]*list.Element),
		order:   list.New(),
		calls:   make(map[digest]*call),
		client:  newClient(),
	}
}

// setMax changes the bound; the next insertions evict down to it.
func (s *store) setMax(n int) {
	s.mu.Lock()
	s.max = n
	s.mu.Unlock()
}

// errCallFailed is what waiters get if a call ends without a result.
var errCallFailed = errors.New("introspection: the call did not complete")

// errWaitAborted reports a request that stopped waiting for another
// request's call because its own context ended.
var errWaitAborted = errors.New("introspection: gave up waiting for the call in flight")

// get returns the cached result for key, or makes one introspection call
// with fetch, shared by every concurrent request for the same key, and
// caches its result until the time ttl returns for it. A failed call is
// not cached.
func (s *store) get(ctx context.Context, key digest, now time.Time,
	fetch func() (*result, error), ttl func(*result, time.Time) time.Duration) (*result, error) {
	s.mu.Lock()
	if el, ok := s.entries[key]; ok {
		e := el.Value.(*entry)
		if now.Before(e.expires) {
			s.mu.Unlock()
			return e.res, nil
		}
		s.order.Remove(el)
		delete(s.entries, key)
	}
	if c, ok := s.calls[key]; ok {
		c.waiting++
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			return nil, errWaitAborted
		}
	}
	c := &call{done: make(chan struct{})}
	s.calls[key] = c
	s.mu.Unlock()

	c.err = errCallFailed // stays if fetch does not return
	defer func() {
		s.mu.Lock()
		delete(s.calls, key)
		if c.err == nil {
			if d := ttl(c.res, now); d > 0 {
				s.put(key, c.res, now, now.Add(d))
			}
		}
		s.mu.Unlock()
		close(c.done)
	}()
	c.res, c.err = fetch()
	return c.res, c.err
}

// put inserts an entry, first dropping expired entries at the old end and
// then the oldest ones while the cache is full. s.mu is held.
func (s *store) put(key digest, res *result, now, expires time.Time) {
	if el, ok := s.entries[key]; ok {
		s.order.Remove(el)
		delete(s.entries, key)
	}
	for front := s.order.Front(); front != nil; front = s.order.Front() {
		e := front.Value.(*entry)
		if len(s.entries) < s.max && now.Before(e.expires) {
			break
		}
		s.order.Remove(front)
		delete(s.entries, e.key)
	}
	s.entries[key] = s.order.PushBack(&entry{key: key, res: res, expires: expires})
}

// len returns the number of cached entries.
func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}
