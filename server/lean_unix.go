//go:build unix

package server

import "syscall"

// writeNonBlocking writes b to the socket as far as its buffer takes it,
// never waiting for room: Go's sockets are non-blocking, and the callback
// reports done whatever write(2) said. A full buffer is not an error: n
// tells how much left.
func writeNonBlocking(raw syscall.RawConn, b []byte) (n int, err error) {
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			if e == syscall.EINTR {
				continue
			}
			if e != nil && e != syscall.EAGAIN {
				werr = e
			}
			if e != nil || m <= 0 {
				break
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
