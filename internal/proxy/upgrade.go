package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Protocol upgrades (WebSocket and the like) use a dedicated upstream
// connection, never a pooled one. The request goes out with "Connection:
// Upgrade" and its Upgrade header; a 101 answer for the same protocol
// makes the handler hijack the client connection, send the 101 head on
// it, and copy bytes both ways until either side closes: the handler
// goroutine copies upstream → client, one more goroutine client →
// upstream, and the handler returns only after both have ended. Any other
// answer is relayed as a normal response and the connection closed.

var errTunnelsClosed = errors.New("gateway is shutting down")

// Tunnels tracks upgraded connections, so the gateway can close them on
// shutdown (http.Server.Shutdown does not know hijacked connections). One
// Tunnels outlives config reloads; pass it to every Handler in Options.
// The zero value is not usable; call NewTunnels.
type Tunnels struct {
	mu     sync.Mutex
	active map[*tunnel]struct{}
	closed bool
}

// NewTunnels returns an empty set of tunnels.
func NewTunnels() *Tunnels { return &Tunnels{active: make(map[*tunnel]struct{})} }

// Count returns the number of open tunnels.
func (ts *Tunnels) Count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.active)
}

// CloseAll closes every open tunnel, both its client and its upstream
// connection. Tunnels opened afterwards are closed at once: call it when
// the gateway stops.
func (ts *Tunnels) CloseAll() {
	ts.mu.Lock()
	ts.closed = true
	all := make([]*tunnel, 0, len(ts.active))
	for tn := range ts.active {
		all = append(all, tn)
	}
	ts.mu.Unlock()
	for _, tn := range all {
		tn.close()
	}
}

func (ts *Tunnels) add(tn *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	ts.active[tn] = struct{}{}
	return true
}

func (ts *Tunnels) remove(tn *tunnel) {
	ts.mu.Lock()
	delete(ts.active, tn)
	ts.mu.Unlock()
}

// tunnel is one upgraded connection pair.
type tunnel struct {
	client, upstream net.Conn
	once             sync.Once
}

func (tn *tunnel) close() {
	tn.once.Do(func() {
		_ = tn.client.Close()
		_ = tn.upstream.Close()
	})
}

// upgradeType returns the protocol an HTTP/1.1 request asks to switch to,
// or "" when it asks for none.
func upgradeType(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return ""
	}
	conn := r.Header["Connection"]
	if len(conn) == 0 || !hasToken(conn, "upgrade") {
		return ""
	}
	up := r.Header.Get("Upgrade")
	// Only WebSocket (RFC 6455: a GET) is tunnelled. Any other protocol,
	// h2c above all, would let the client speak past the router and every
	// plugin on a raw connection (h2c smuggling), so its Upgrade header is
	// dropped with the other hop-by-hop headers and the request is proxied
	// as plain HTTP.
	if r.Method != http.MethodGet || !strings.EqualFold(up, "websocket") {
		return ""
	}
	return up
}

// tunnel completes a protocol switch after the upstream answered 101.
func (c *call) tunnel() error {
	hd := &c.hd
	var got, conn string
	for i := range hd.fields {
		f := &hd.fields[i]
		k := hd.key(f)
		switch k {
		case "Upgrade":
			got = hd.value(f)
		case "Connection":
			conn = hd.value(f)
		}
		f.drop = hopResponseHeader(k) || k == "Content-Length" || k == "Trailer"
	}
	if !strings.EqualFold(got, c.upgrade) {
		c.closeConn()
		return fmt.Errorf("upstream %s: %w", c.t.Addr, errBadSwitch)
	}
	if conn != "" {
		hd.dropNamed(conn)
	}
	if !c.stopAbort() {
		c.closeConn()
		return fmt.Errorf("client went away before the switch: %w", context.Cause(c.r.Context()))
	}
	client, brw, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		c.closeConn()
		return fmt.Errorf("hijack client connection: %w", err)
	}
	c.hijacked = true
	uc := c.uc
	c.uc = nil
	tn := &tunnel{client: client, upstream: uc.Conn}

	h := c.w.Header().Clone()
	hd.addTo(h)
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{got}
	_ = client.SetDeadline(c.deadline)
	_ = uc.SetDeadline(c.deadline)
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = h.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		tn.close()
		return fmt.Errorf("write upgrade response: %w", err)
	}
	if ts := c.cl.tunnels; ts != nil {
		if !ts.add(tn) {
			tn.close()
			return errTunnelsClosed
		}
		defer ts.remove(tn)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		defer tn.close()
		// Bytes the server read past the request head belong upstream.
		if n := brw.Reader.Buffered(); n > 0 {
			p, _ := brw.Reader.Peek(n)
			if _, err := uc.Conn.Write(p); err != nil {
				return
			}
			_, _ = brw.Reader.Discard(n)
		}
		_, _ = io.Copy(uc.Conn, client)
	}()
	func() {
		defer tn.close()
		// Bytes read past the 101 head belong to the client.
		if n := c.br.Buffered(); n > 0 {
			p, _ := c.br.Peek(n)
			if _, err := client.Write(p); err != nil {
				return
			}
			_, _ = c.br.Discard(n)
		}
		_, _ = io.Copy(client, uc.Conn)
	}()
	<-done
	c.ex.UpstreamDuration = time.Since(c.sent)
	return nil
}
