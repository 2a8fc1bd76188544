package httpcache

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestGroupOneLeader(t *testing.T) {
	g := NewGroup()
	f, leader := g.Join("k")
	if !leader {
		t.Fatal("first Join did not lead")
	}
	const waiters = 50
	var wg sync.WaitGroup
	got := make(chan *Entry, waiters)
	for range waiters {
		wf, lead := g.Join("k")
		if lead {
			t.Fatal("a second leader")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, ok := wf.Wait(context.Background(), 10*time.Second)
			if !ok {
				t.Error("wait timed out")
			}
			got <- e
		}()
	}
	if _, ok := g.TryLead("k"); ok {
		t.Error("TryLead led a running flight")
	}
	want := &Entry{Status: 200}
	g.Done("k", f, want)
	wg.Wait()
	close(got)
	for e := range got {
		if e != want {
			t.Errorf("got %p, want %p", e, want)
		}
	}
	if g.Len() != 0 {
		t.Errorf("got %d flights, want 0", g.Len())
	}
	if _, lead := g.Join("k"); !lead {
		t.Error("a finished key did not start a new flight")
	}
}

func TestFlightWaitBounded(t *testing.T) {
	g := NewGroup()
	f, _ := g.Join("k")
	start := time.Now()
	if _, ok := f.Wait(context.Background(), 20*time.Millisecond); ok {
		t.Fatal("got a result from a running flight")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waited %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := f.Wait(ctx, time.Hour); ok {
		t.Error("got a result after the context ended")
	}
}
