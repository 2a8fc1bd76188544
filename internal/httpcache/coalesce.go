package httpcache

import (
	"context"
	"sync"
	"time"
)

// DefaultCoalesceWait is how long a request waits for another request
// already fetching the same key before it goes upstream itself.
const DefaultCoalesceWait = 5 * time.Second

// Group coalesces concurrent fetches of one key: the first request leads
// and goes upstream; the others wait for its result (bounded) instead of
// going upstream too. It is safe for concurrent use.
type Group struct {
	mu sync.Mutex
	m  map[string]*Flight
}

// Flight is one fetch in progress.
type Flight struct {
	done  chan struct{}
	entry *Entry
}

// NewGroup returns an empty Group.
func NewGroup() *Group { return &Group{m: make(map[string]*Flight)} }

// Join returns the flight for key; leader is true when the caller started
// it and must end it with Done.
func (g *Group) Join(key string) (f *Flight, leader bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.m[key]; f != nil {
		return f, false
	}
	f = &Flight{done: make(chan struct{})}
	g.m[key] = f
	return f, true
}

// TryLead starts a flight for key unless one is running; ok is false when
// one is.
func (g *Group) TryLead(key string) (f *Flight, ok bool) {
	f, leader := g.Join(key)
	if !leader {
		return nil, false
	}
	return f, true
}

// Done ends the leader's flight, handing e (nil when the response was not
// stored) to the waiters.
func (g *Group) Done(key string, f *Flight, e *Entry) {
	g.mu.Lock()
	if g.m[key] == f {
		delete(g.m, key)
	}
	g.mu.Unlock()
	f.entry = e
	close(f.done)
}

// Wait waits at most d (or until ctx ends) for the flight to end, and
// returns the leader's stored entry; ok is false when the wait ended
// first.
func (f *Flight) Wait(ctx context.Context, d time.Duration) (e *Entry, ok bool) {
	select {
	case <-f.done:
		return f.entry, true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.done:
		return f.entry, true
	case <-t.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

// Len is the number of flights in progress.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}
