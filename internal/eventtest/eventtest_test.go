package eventtest

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestAwaitWakesOnChange: a waiter sees a condition that becomes true
// in another goroutine, woken by Changed, well before the bound.
func TestAwaitWakesOnChange(t *testing.T) {
	var c Changes
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
			c.Changed()
		}
	}()
	start := time.Now()
	c.Await(t, time.Minute, "three changes", func() bool { return n.Load() == 3 })
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("woke after %s", d)
	}
}

// TestAwaitFailsAfterTimeout: a condition that never holds fails the
// test at the bound.
func TestAwaitFailsAfterTimeout(t *testing.T) {
	var c Changes
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Await(ft, 10*time.Millisecond, "never", func() bool { return false })
	}()
	<-done
	if !ft.failed {
		t.Error("Await returned without failing")
	}
}

// fakeT records Fatalf and ends the goroutine, as testing.T does.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}
