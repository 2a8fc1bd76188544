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
	a := Get(s, NewKey[*fakeState]("a"), newFake)
	b := Get(s, NewKey[*fakeState]("b"), newFake)
	s.Start(ctx, wg.Go)
	s.Retire()

	s.Begin() // a failed compile asks for c only
	c := Get(s, NewKey[*fakeState]("c"), newFake)

	s.Begin() // the next config uses a only
	if got := Get(s, NewKey[*fakeState]("a"), newFake); got != a {
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
	if got := Get(s, NewKey[*fakeState]("c"), newFake); got == c {
		t.Error("got the dropped c back, want a new object")
	}
}

// TestSharedKeysOfOtherTypesNeverMeet: the key's type is part of it, so two
// plugins that pick the same name for objects of different types each get
// their own object.
func TestSharedKeysOfOtherTypesNeverMeet(t *testing.T) {
	s := NewShared()
	s.Begin()
	f := Get(s, NewKey[*fakeState]("x"), newFake)
	n := Get(s, NewKey[int]("x"), func() int { return 7 })
	if n != 7 {
		t.Fatalf("got %d, want 7", n)
	}
	if got, ok := Lookup(s, NewKey[*fakeState]("x")); !ok || got != f {
		t.Fatalf("got %v, %v, want the first object", got, ok)
	}
	if _, ok := Lookup(s, NewKey[string]("x")); ok {
		t.Fatal("got an object for a key never asked for, want none")
	}
}
