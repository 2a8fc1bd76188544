//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"net"
	"syscall"
)

// peekAlive looks at the socket with recv(MSG_PEEK|MSG_DONTWAIT): EAGAIN
// means open with nothing to read (alive); 0 bytes means the peer closed;
// data means the peer sent something nobody asked for. Only the first is
// usable.
func peekAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	alive := false
	err = raw.Read(func(fd uintptr) bool {
		for {
			_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch rerr {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				alive = true
			}
			return true
		}
	})
	return err == nil && alive
}
