package admin

import (
	"net/netip"
	"testing"
	"time"
)

// clock is an injected clock for the failure limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestFailuresWindowAndBlock(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	f := newFailures(c.now, 16)
	k := clientKey("192.0.2.1:5000")
	for i := range FailureLimit - 1 {
		if f.fail(k) {
			t.Fatalf("failure %d blocked, want the block at %d", i+1, FailureLimit)
		}
	}
	// The window ends: the count starts again.
	c.advance(FailureWindow)
	for range FailureLimit - 1 {
		f.fail(k)
	}
	if _, b := f.blocked(k); b {
		t.Fatal("blocked after a window passed, want the count restarted")
	}
	if !f.fail(k) {
		t.Fatalf("failure %d of a window: got no block, want one", FailureLimit)
	}
	left, b := f.blocked(k)
	if !b || left != FailureBlock {
		t.Fatalf("got blocked %v for %s, want %s", b, left, FailureBlock)
	}
	c.advance(FailureBlock - time.Second)
	if left, b := f.blocked(k); !b || left != time.Second {
		t.Fatalf("near the end: got blocked %v for %s, want 1s", b, left)
	}
	c.advance(time.Second)
	if _, b := f.blocked(k); b {
		t.Fatal("blocked after the block ended")
	}
	if f.fail(k) {
		t.Fatal("the first failure after a block blocked again")
	}
}

func TestFailuresClientKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ remote, want string }{
		{"192.0.2.1:5000", "192.0.2.1/32"},
		{"[::ffff:192.0.2.1]:5000", "192.0.2.1/32"},
		{"[2001:db8:1:2:aaaa::1]:5000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:6000", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:5000", "fe80::/64"},
		{"@", "invalid Prefix"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.remote).String(); got != tt.want {
			t.Errorf("clientKey(%q): got %s, want %s", tt.remote, got, tt.want)
		}
	}
}

// TestFailuresBounded: the map never holds more than its bound; stale
// entries go first, then the one that would have been forgotten soonest,
// and a blocked address survives a flood of new ones for as long as
// fresher entries can be evicted instead.
func TestFailuresBounded(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	const max = 8
	f := newFailures(c.now, max)
	blockedKey := clientKey("198.51.100.1:1")
	for range FailureLimit {
		f.fail(blockedKey)
	}
	addr := netip.MustParseAddr("203.0.113.0")
	for i := range 1000 {
		addr = addr.Next()
		f.fail(netip.PrefixFrom(addr, 32))
		if n := f.tracked(); n > max {
			t.Fatalf("after %d addresses: %d tracked, want at most %d", i+1, n, max)
		}
		c.advance(time.Millisecond)
	}
	if _, b := f.blocked(blockedKey); !b {
		t.Error("the blocked address was evicted before fresher entries")
	}
	// Once every window is over, new addresses replace the stale entries.
	c.advance(FailureWindow)
	f.fail(clientKey("192.0.2.9:1"))
	if n := f.tracked(); n != 2 {
		t.Errorf("after the windows ended: %d tracked, want 2 (the blocked one and the new one)", n)
	}
}
