//go:build unix

package rawsock

import (
	"io"
	"net"
	"os"
	"syscall"
)

// Of returns c's descriptor access, or nil when it has none.
func Of(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// Read reads into p from raw, waiting (within raw's read deadline) until
// data is there. It returns io.EOF when the peer closed its side.
func Read(raw syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := raw.Read(func(fd uintptr) bool {
		for {
			n, errno = read(fd, p)
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, wrap("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p to raw, waiting (within raw's write deadline)
// whenever the socket's buffer is full. n is what was written.
func Write(raw syscall.RawConn, p []byte) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := write(fd, p[n:])
			switch e {
			case 0:
				n += m
				continue
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			errno = e
			return true
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, wrap("write", errno)
	}
	return n, nil
}

// WriteNonBlocking writes as much of p to raw as the socket's buffer takes
// now, never waiting for room. A full buffer is not an error: n tells how
// much left.
func WriteNonBlocking(raw syscall.RawConn, p []byte) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := write(fd, p[n:])
			switch e {
			case 0:
				n += m
				continue
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
			default:
				errno = e
			}
			return true
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, wrap("write", errno)
	}
	return n, nil
}

// wrap names the system call an errno came from, as net.Conn does.
func wrap(call string, errno syscall.Errno) error {
	return &net.OpError{Op: call, Err: os.NewSyscallError(call, errno)}
}
