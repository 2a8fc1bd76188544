package pipeline

import (
	"context"
	"sync"
	"testing"
)

type fakeState struct {
	mu      sync.Mutex
	running bool
	stopped chan struct{}
	closed  bool
}

func newFake() *fakeState { return &fakeState{stopped: make(chan struct{})} }

func (f *fakeState) Run(ctx context.Context) {
	<-ctx.Done()
	close(f.stopped)
}

func (f *fakeState) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// TestSharedRetiresStateNoConfigUses: a reload that drops a key set or a
// store stops its background work and closes it; what the new config still
// uses survives untouched.
func TestSharedRetiresStateNoConfigUses(t *testing.T) {
	s := NewShared()
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()

	s.Begin() // first config uses a and b
	a := s.Get("a", func() any { return newFake() }).(*fakeState)
	b := s.Get("b", func() any { return newFake() }).(*fakeState)
	s.Start(ctx, wg.Go)
	s.Retire()

	s.Begin() // a failed compile asks for c only
	c := s.Get("c", func() any { return newFake() }).(*fakeState)

	s.Begin() // the next config uses a only
	if got := s.Get("a", func() any { return newFake() }).(*fakeState); got != a {
		t.Fatal("got a new object for a key still in use, want the same one")
	}
	s.Retire()
	s.Start(ctx, wg.Go)

	<-b.stopped // b's Run ended
	if !b.closed {
		t.Error("got b open, want it closed once no config uses it")
	}
	if a.closed {
		t.Error("got a closed, want it kept: the config still uses it")
	}
	if !c.closed {
		t.Error("got c open, want the failed compile's object closed (a Redis client, say)")
	}
	select {
	case <-c.stopped:
		t.Error("got c's Run started, want the failed compile's object dropped")
	default:
	}
	if got := s.Get("c", func() any { return newFake() }); got == any(c) {
		t.Error("got the dropped c back, want a new object")
	}
}
