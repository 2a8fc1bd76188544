//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

import "net"

// peek cannot look at the socket without blocking on this platform: every
// connection counts as idle, and a connection closed by the upstream is
// caught by the proxy's retry of replayable requests instead.
func peek(net.Conn) peekResult { return peekIdle }
