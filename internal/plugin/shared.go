package plugin

import (
	"context"
	"sync"
)

// Shared holds plugin state that must outlive a config snapshot (a JWKS
// key set and its refresher, a token cache), keyed by a name the plugin
// chooses (for example "jwks:" + URL). Build calls Get, which creates the
// object once; later snapshots that ask for the same key get the same
// object, so a reload keeps the keys and caches warm.
//
// Build must not start goroutines. An object that needs background work
// implements Runner; the server starts Run for each new object after the
// snapshot that created it is swapped in, and stops them all on shutdown.
// An object that implements Readier holds /ready at 503 until it is ready
// (for example until the first JWKS fetch), within the server's bound.
type Shared struct {
	mu      sync.Mutex
	objects map[string]any
	pending []Runner
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

// NewShared returns an empty registry.
func NewShared() *Shared { return &Shared{objects: make(map[string]any)} }

// Get returns the object under key, calling create to make it the first
// time.
func (s *Shared) Get(key string, create func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.objects[key]; ok {
		return o
	}
	o := create()
	s.objects[key] = o
	if r, ok := o.(Runner); ok {
		s.pending = append(s.pending, r)
	}
	return o
}

// TakePending returns the Runners created since the last call, for the
// server to start.
func (s *Shared) TakePending() []Runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending
	s.pending = nil
	return p
}

// Ready reports whether every object that implements Readier is ready.
func (s *Shared) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.objects {
		if r, ok := o.(Readier); ok && !r.Ready() {
			return false
		}
	}
	return true
}
