//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

import "net"

// peekAlive cannot look at the socket without blocking on this platform;
// a connection closed by the upstream is caught by the proxy's retry of
// replayable requests instead.
func peekAlive(net.Conn) bool { return true }
