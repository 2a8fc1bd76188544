// Package eventtest lets tests wait for state to change instead of
// sleeping: the code under test (or a fake it calls) reports each change,
// and a test waits until a condition holds, checking it again after every
// change, with a bound.
package eventtest

import (
	"sync"
	"testing"
	"time"
)

// Changes wakes the tests that wait for some state to change: every call
// of Changed closes the channel that Next handed out before it. The zero
// value is ready to use.
type Changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// Next returns a channel that the next call of Changed closes.
func (c *Changes) Next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// Changed wakes every waiter; call it after the state changed.
func (c *Changes) Changed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// Await returns once cond holds, checking it again after each change, and
// fails the test when it does not hold within timeout.
func (c *Changes) Await(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		next := c.Next() // before the check, so no change goes unseen
		if cond() {
			return
		}
		select {
		case <-next:
		case <-timer.C:
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}
