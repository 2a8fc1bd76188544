//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"net"
	"syscall"
)

// peek looks at the socket with recv(MSG_PEEK|MSG_DONTWAIT), consuming
// nothing: EAGAIN means open with nothing to read (peekIdle); 0 bytes or
// an error mean the peer closed it (peekClosed); bytes mean the peer sent
// something (peekData). A connection that is not a socket counts as idle.
func peek(c net.Conn) peekResult {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peekIdle
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peekClosed
	}
	var buf [1]byte
	res := peekClosed
	err = raw.Read(func(fd uintptr) bool {
		for {
			n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case rerr == syscall.EINTR:
				continue
			case rerr == syscall.EAGAIN:
				res = peekIdle
			case rerr == nil && n > 0:
				res = peekData
			}
			return true
		}
	})
	if err != nil {
		return peekClosed
	}
	return res
}
