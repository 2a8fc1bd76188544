package admin

import (
	"net/netip"
	"sync"
	"time"
)

// The failure limit of the admin API: an address that fails to
// authenticate FailureLimit times within FailureWindow is answered 429 on
// every endpoint but the public paths for FailureBlock, even with a valid
// token. Only 401 answers count (a missing or invalid token); successes and
// refusals of an authenticated caller do not.
const (
	FailureLimit  = 10
	FailureWindow = time.Minute
	FailureBlock  = 5 * time.Minute
	// maxTracked bounds the addresses remembered at once (about 100 bytes
	// each).
	maxTracked = 4096
)

// failures counts failed authentications per client address in a small
// bounded map (no goroutine: stale entries go when room is needed). IPv6
// addresses count by their /64, which one client usually holds whole.
// It outlives reloads: it belongs to the admin handler, not to an Access.
type failures struct {
	mu            sync.Mutex
	now           func() time.Time
	limit         int           // FailureLimit
	window, block time.Duration // FailureWindow, FailureBlock
	max           int           // addresses remembered at most
	byAddr        map[netip.Prefix]*failureEntry
}

type failureEntry struct {
	start time.Time // first failure of the current window
	n     int       // failures in the window
	until time.Time // end of the block; zero when not blocked
}

func newFailures(now func() time.Time, max int) *failures {
	if now == nil {
		now = time.Now
	}
	return &failures{now: now, limit: FailureLimit, window: FailureWindow, block: FailureBlock, max: max,
		byAddr: make(map[netip.Prefix]*failureEntry)}
}

// clientKey is the address failures are counted under: the IPv4 address,
// or the /64 of an IPv6 one. An unparsable remote address counts as the
// zero prefix (all such clients together).
func clientKey(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// blocked reports whether key is blocked now, and for how long still.
func (f *failures) blocked(key netip.Prefix) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.byAddr[key]
	if e == nil || e.until.IsZero() {
		return 0, false
	}
	if left := e.until.Sub(f.now()); left > 0 {
		return left, true
	}
	delete(f.byAddr, key) // the block is over: start afresh
	return 0, false
}

// fail counts one failure of key and reports whether it starts a block.
func (f *failures) fail(key netip.Prefix) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	e := f.byAddr[key]
	if e == nil {
		if len(f.byAddr) >= f.max {
			f.evict(now)
		}
		e = &failureEntry{start: now}
		f.byAddr[key] = e
	}
	if !e.until.IsZero() {
		return false // blocked already (a request that passed the check just before the block)
	}
	if now.Sub(e.start) >= f.window {
		e.start, e.n = now, 0
	}
	e.n++
	if e.n >= f.limit {
		e.until = now.Add(f.block)
		return true
	}
	return false
}

// expiry is when e stops mattering: the end of its block, or of its
// window.
func (e *failureEntry) expiry(window time.Duration) time.Time {
	if !e.until.IsZero() {
		return e.until
	}
	return e.start.Add(window)
}

// evict makes room for one address: it forgets every entry that no longer
// matters and, when none did, the one that would have stopped mattering
// first. A client that spreads its attempts over more addresses than the
// map holds can so escape a block early; one address (or one IPv6 /64)
// cannot.
func (f *failures) evict(now time.Time) {
	var soonest netip.Prefix
	var soonestAt time.Time
	for k, e := range f.byAddr {
		at := e.expiry(f.window)
		if !now.Before(at) {
			delete(f.byAddr, k)
			continue
		}
		if soonestAt.IsZero() || at.Before(soonestAt) {
			soonest, soonestAt = k, at
		}
	}
	if len(f.byAddr) >= f.max {
		delete(f.byAddr, soonest)
	}
}

// tracked returns the number of addresses remembered.
func (f *failures) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byAddr)
}
