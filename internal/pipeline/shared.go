package pipeline

import (
	"context"
	"io"
	"sync"
)

// Shared holds plugin state that must outlive a config snapshot (a JWKS
// key set and its refresher, a token cache, a Redis client), each under a
// typed Key the plugin chooses (for example NewKey[*KeySet]("jwks:" + URL)).
// Build calls Get, which creates the object once; later snapshots that ask
// for the same key get the same object, so a reload keeps the keys and
// caches warm. The key carries the object's type, so what Get returns needs
// no cast and two keys of different types never meet, even under one name.
//
// Build must not start goroutines. An object that needs background work
// implements Runner; the server starts Run for each new object after the
// snapshot that created it is swapped in. An object that implements
// Readier holds /ready at 503 until it is ready (for example until the
// first JWKS fetch), within the object's own bound.
//
// Objects live as long as configs use them: each compile begins a new
// generation (Begin) and marks every key it asks for; after the compiled
// snapshot is swapped in, Retire stops the Runners and closes (io.Closer)
// the objects that generation did not ask for, such as the key set of a
// JWKS URL or the Redis client of a store the new config no longer names.
type Shared struct {
	mu      sync.Mutex
	gen     uint64
	objects map[any]*sharedEntry // by Key[T] value: its type is part of it
	pending []*sharedEntry
}

type sharedEntry struct {
	obj    any
	gen    uint64
	cancel context.CancelFunc // set once its Runner is started
}

// Runner is shared state with background work.
type Runner interface {
	// Run works until ctx ends.
	Run(ctx context.Context)
}

// Readier is shared state that must be ready before the gateway is.
type Readier interface {
	Ready() bool
}

// Key names one object in Shared and fixes its type.
type Key[T any] struct{ name string }

// NewKey returns the key of the object of type T called name.
func NewKey[T any](name string) Key[T] { return Key[T]{name: name} }

// String returns the key's name.
func (k Key[T]) String() string { return k.name }

// NewShared returns an empty registry.
func NewShared() *Shared { return &Shared{objects: make(map[any]*sharedEntry)} }

// Begin starts a new generation: the keys the next compile asks for.
func (s *Shared) Begin() {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

// Get returns the object under k, calling create to make it the first
// time, and marks it used by the current generation.
func Get[T any](s *Shared, k Key[T], create func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.objects[k]; ok {
		e.gen = s.gen
		return e.obj.(T)
	}
	obj := create()
	e := &sharedEntry{obj: obj, gen: s.gen}
	s.objects[k] = e
	if _, ok := e.obj.(Runner); ok {
		s.pending = append(s.pending, e)
	}
	return obj
}

// Lookup returns the object under k, if one was made, without marking it
// used. Tests use it to look at a plugin's state.
func Lookup[T any](s *Shared, k Key[T]) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.objects[k]; ok {
		return e.obj.(T), true
	}
	var zero T
	return zero, false
}

// TakePending returns the Runners created since the last call without
// tracking them; tests use it to drive background work by hand.
func (s *Shared) TakePending() []Runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Runner, 0, len(s.pending))
	for _, e := range s.pending {
		out = append(out, e.obj.(Runner))
	}
	s.pending = nil
	return out
}

// Start runs the Runners created since the last call, each with its own
// context below ctx so that Retire can stop it. spawn starts a goroutine
// (the server passes its WaitGroup's Go).
func (s *Shared) Start(ctx context.Context, spawn func(func())) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.pending {
		rctx, cancel := context.WithCancel(ctx)
		e.cancel = cancel
		r := e.obj.(Runner)
		spawn(func() { r.Run(rctx) })
	}
	s.pending = nil
}

// Retire stops and closes the objects that the current generation did not
// ask for. Call it after the generation's snapshot is swapped in.
func (s *Shared) Retire() {
	s.mu.Lock()
	var gone []*sharedEntry
	for k, e := range s.objects {
		if e.gen != s.gen {
			gone = append(gone, e)
			delete(s.objects, k)
		}
	}
	// A failed compile may have created Runners that no config uses.
	kept := s.pending[:0]
	for _, e := range s.pending {
		if e.gen == s.gen {
			kept = append(kept, e)
		}
	}
	s.pending = kept
	s.mu.Unlock()
	for _, e := range gone {
		if e.cancel != nil {
			e.cancel()
		}
		if c, ok := e.obj.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// Ready reports whether every object that implements Readier is ready.
func (s *Shared) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.objects {
		if r, ok := e.obj.(Readier); ok && !r.Ready() {
			return false
		}
	}
	return true
}
