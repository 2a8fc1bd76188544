package upstream

import (
	"context"
	"crypto/tls"
	"errors"
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

// tlsPendingWait is how long the liveness check of an idle TLS connection
// reads through TLS to consume post-handshake messages (a TLS 1.3
// NewSessionTicket) that the socket shows pending.
const tlsPendingWait = time.Millisecond

// defaultTLS is the TLS client config of an https target that was given
// none: the system roots and TLS 1.2 at least.
var defaultTLS, _ = clientTLSConfig(nil)

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

	// TLS reports an https target.
	TLS bool

	weight  atomic.Int64
	health  health
	breaker atomic.Pointer[Breaker]    // per-target breaker, nil when off
	tlsConf atomic.Pointer[tls.Config] // per-target clone, for https targets

	// now is the clock of the idle pool: Put stamps a connection with it,
	// Get measures idle time against peekAfter and the idle timeout with
	// it. It is time.Now unless Registry.SetClock gave another; set at
	// creation, never changed.
	now func() time.Time

	mu          sync.Mutex
	idle        []*Conn // stack: the most recently used connection is last
	maxIdle     int
	idleTimeout time.Duration
	closed      bool
}

func newTarget(rawURL, addr, host string) *Target {
	return &Target{URL: rawURL, Addr: addr, Host: host, now: time.Now}
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
	// Conn is the connection requests use: the TCP connection, or the
	// *tls.Conn over it for an https target.
	net.Conn
	raw    net.Conn // the TCP connection under TLS; nil for plain ones
	target *Target
	idleAt time.Time
	reused bool
}

// Reused reports whether the connection came from the idle pool, so it may
// have been closed by the upstream between the pool check and the write.
func (c *Conn) Reused() bool { return c.reused }

// Target returns the target the connection leads to.
func (c *Conn) Target() *Target { return c.target }

// setTLS sets the TLS client config of an https target (see
// clientTLSConfig). The target keeps its own copy, with the server name
// defaulting to the target's host and a session cache for resumption, so
// dials share it without copying. A nil c means the defaults.
func (t *Target) setTLS(c *tls.Config) {
	if c == nil {
		c = defaultTLS
	}
	c = c.Clone()
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(t.Addr)
		if err != nil {
			host = t.Addr
		}
		c.ServerName = host
	}
	c.ClientSessionCache = tls.NewLRUClientSessionCache(tlsSessionCacheSize)
	t.tlsConf.Store(c)
}

// Dial opens a new connection to the target within timeout (zero means no
// bound beyond ctx), with TCP keep-alive and TCP_NODELAY; for an https
// target the TLS handshake is done within the same timeout. Errors are
// *net.OpError with Op "dial": the dialer's own, unwrapped, or one
// wrapping the handshake's error (a *tls.CertificateVerificationError,
// the server's alert as a "remote error" *net.OpError, a timeout).
func (t *Target) Dial(ctx context.Context, timeout time.Duration) (*Conn, error) {
	if t.TLS {
		return t.dialTLS(ctx, timeout)
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: dialKeepAlive}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: nc, target: t}, nil
}

func (t *Target) dialTLS(ctx context.Context, timeout time.Duration) (*Conn, error) {
	cfg := t.tlsConf.Load()
	if cfg == nil {
		t.setTLS(nil)
		cfg = t.tlsConf.Load()
	}
	d := net.Dialer{KeepAlive: dialKeepAlive}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
		d.Deadline = deadline
	}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	if !deadline.IsZero() {
		_ = nc.SetDeadline(deadline)
	}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
	}
	if !deadline.IsZero() {
		_ = nc.SetDeadline(time.Time{})
	}
	return &Conn{Conn: tc, raw: nc, target: t}, nil
}

// Get returns an idle connection, or nil when there is none. Connections
// idle longer than the idle timeout are closed instead. A connection idle
// longer than a second is checked for a close by the upstream (Node, for
// one, closes idle connections after 5 s) with a non-blocking peek at the
// socket: no data means alive, end of stream or unexpected data means it
// is closed and discarded. Over TLS, pending data may be a post-handshake
// message (a TLS 1.3 NewSessionTicket) rather than a close_notify alert:
// it is read through TLS with a very short deadline, and the connection
// is alive when that times out having consumed only such messages.
func (t *Target) Get() *Conn {
	for {
		now := t.now()
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
		if now.Sub(c.idleAt) > peekAfter && !usable(c) {
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
	now := t.now()
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
// blocking (over TLS, for tlsPendingWait at most). A stale read deadline
// left by the last exchange is cleared first, since an expired one would
// fail the check.
func usable(c *Conn) bool {
	if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	if c.raw == nil {
		return peekAlive(c.Conn)
	}
	switch peek(c.raw) {
	case peekIdle:
		return true
	case peekClosed:
		return false
	}
	// Records are pending. Reading through TLS handles post-handshake
	// messages and then times out waiting for more; a timeout does not
	// break a tls.Conn. End of stream (close_notify or FIN), another
	// error, or application data nobody asked for mean the connection is
	// unusable.
	if err := c.Conn.SetReadDeadline(time.Now().Add(tlsPendingWait)); err != nil {
		return false
	}
	var buf [1]byte
	n, err := c.Conn.Read(buf[:])
	if n > 0 {
		return false
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	return c.Conn.SetReadDeadline(time.Time{}) == nil
}

// peekResult is what a non-blocking look at an idle socket found.
type peekResult int

const (
	// peekIdle: open, nothing to read.
	peekIdle peekResult = iota
	// peekData: bytes are waiting.
	peekData
	// peekClosed: the peer closed the connection, or the socket failed.
	peekClosed
)

// peekAlive reports whether an idle plain connection is usable: open with
// nothing to read. Data nobody asked for makes it as unusable as a close.
func peekAlive(c net.Conn) bool { return peek(c) == peekIdle }
