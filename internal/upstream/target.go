package upstream

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// peekAfter is how long a connection may sit idle before Get checks, without
// blocking, that the upstream has not closed it. Below it the check costs
// more than the rare stale connection, which the proxy retries anyway for
// replayable requests.
const peekAfter = time.Second

// dialKeepAlive is the TCP keep-alive period of upstream connections.
const dialKeepAlive = 30 * time.Second

// Target is one replica of a service and its pool of idle keep-alive
// connections. The exported fields are fixed at creation; do not modify
// them. A Target is safe for concurrent use.
type Target struct {
	// URL is the target as configured: "http://10.0.0.7:3001".
	URL string
	// Addr is the dial address, "host:port".
	Addr string
	// Host is the default Host header for requests to the target: the
	// URL's authority, "10.0.0.7:3001".
	Host string

	weight atomic.Int64

	mu          sync.Mutex
	idle        []*Conn // stack: the most recently used connection is last
	maxIdle     int
	idleTimeout time.Duration
	closed      bool
}

func newTarget(rawURL, addr, host string) *Target {
	return &Target{URL: rawURL, Addr: addr, Host: host}
}

func (t *Target) configure(weight, maxIdle int, idleTimeout time.Duration) {
	t.weight.Store(int64(weight))
	t.mu.Lock()
	t.maxIdle, t.idleTimeout = maxIdle, idleTimeout
	over := len(t.idle) - maxIdle
	var drop []*Conn
	if over > 0 {
		// Keep the most recent ones.
		drop = append(drop, t.idle[:over]...)
		n := copy(t.idle, t.idle[over:])
		clear(t.idle[n:])
		t.idle = t.idle[:n]
	}
	t.mu.Unlock()
	closeAll(drop)
}

// Weight returns the target's weight in the latest config that named it.
func (t *Target) Weight() int { return int(t.weight.Load()) }

// Idle returns the number of idle connections in the pool.
func (t *Target) Idle() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle)
}

// Conn is a connection to a target. Exactly one request uses it at a time;
// the user hands it back with Target.Put or closes it with Close.
type Conn struct {
	net.Conn
	target *Target
	idleAt time.Time
	reused bool
}

// Reused reports whether the connection came from the idle pool, so it may
// have been closed by the upstream between the pool check and the write.
func (c *Conn) Reused() bool { return c.reused }

// Target returns the target the connection leads to.
func (c *Conn) Target() *Target { return c.target }

// Dial opens a new connection to the target within timeout (zero means no
// bound beyond ctx), with TCP keep-alive and TCP_NODELAY. Errors are the
// dialer's *net.OpError (Op "dial"), unwrapped.
func (t *Target) Dial(ctx context.Context, timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: dialKeepAlive}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: nc, target: t}, nil
}

// Get returns an idle connection, or nil when there is none. Connections
// idle longer than the idle timeout are closed instead. A connection idle
// longer than a second is checked for a close by the upstream (Node, for
// one, closes idle connections after 5 s) with a non-blocking peek at the
// socket: no data means alive, end of stream or unexpected data means it
// is closed and discarded.
func (t *Target) Get() *Conn {
	for {
		now := time.Now()
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		c := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		if now.Sub(c.idleAt) > t.idleTimeout {
			// The stack is ordered by age: everything below is older.
			expired := append([]*Conn{c}, t.idle...)
			clear(t.idle)
			t.idle = t.idle[:0]
			t.mu.Unlock()
			closeAll(expired)
			return nil
		}
		t.mu.Unlock()
		if now.Sub(c.idleAt) > peekAfter && !usable(c.Conn) {
			_ = c.Conn.Close()
			continue
		}
		c.reused = true
		return c
	}
}

// Put returns a connection whose last exchange ended cleanly (the response
// read to its end, nothing left unread) to the idle pool. The pool closes
// it instead when the target is closed or full. Put also closes the oldest
// idle connection when it has outlived the idle timeout, so a busy pool
// does not keep connections the upstream closed long ago.
func (t *Target) Put(c *Conn) {
	now := time.Now()
	c.idleAt = now
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		_ = c.Conn.Close()
		return
	}
	var stale *Conn
	if len(t.idle) > 0 && now.Sub(t.idle[0].idleAt) > t.idleTimeout {
		stale = t.idle[0]
		n := copy(t.idle, t.idle[1:])
		t.idle[n] = nil
		t.idle = t.idle[:n]
	}
	t.idle = append(t.idle, c)
	t.mu.Unlock()
	if stale != nil {
		_ = stale.Conn.Close()
	}
}

// close marks the target closed and closes its idle connections.
func (t *Target) close() {
	t.mu.Lock()
	t.closed = true
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	closeAll(idle)
}

func closeAll(cs []*Conn) {
	for _, c := range cs {
		_ = c.Conn.Close()
	}
}

// usable reports whether an idle connection is still open, without
// blocking. A stale read deadline left by the last exchange is cleared
// first, since an expired one would fail the check.
func usable(c net.Conn) bool {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	return peekAlive(c)
}
