package listener

import (
	"errors"
	"net"
	"sync"
)

// Slots bounds the client connections open at once across every public
// listener (server.max_connections): further clients wait in the
// kernel's accept backlog until a connection closes.
type Slots struct {
	sem chan struct{}
}

// NewSlots returns n slots; n <= 0 means unbounded (nil).
func NewSlots(n int) *Slots {
	if n <= 0 {
		return nil
	}
	return &Slots{sem: make(chan struct{}, n)}
}

// limit makes l take a slot for each connection it accepts.
func (s *Slots) limit(l net.Listener) net.Listener {
	if s == nil {
		return l
	}
	return &limited{Listener: l, slots: s, done: make(chan struct{})}
}

type limited struct {
	net.Listener
	slots     *Slots
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.slots.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots.sem }}, nil
}

func (l *limited) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite half-closes the connection when it can (TCP), so that an
// answer followed by a close reaches the client at once.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
