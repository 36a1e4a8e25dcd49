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
func Write(raw syscall.RawConn, p []byte) (int, error) { return writeOut(raw, p, true) }

// WriteNonBlocking writes as much of p to raw as the socket's buffer takes
// now, never waiting for room. A full buffer is not an error: n tells how
// much left.
func WriteNonBlocking(raw syscall.RawConn, p []byte) (int, error) { return writeOut(raw, p, false) }

// writeOut writes p to raw; when the socket's buffer fills, it waits for
// room and goes on if wait is set, and stops otherwise.
func writeOut(raw syscall.RawConn, p []byte, wait bool) (int, error) {
	var (
		n    int
		werr error
	)
	err := raw.Write(func(fd uintptr) bool {
		var full bool
		full, werr = writeSome(fd, p, &n)
		return !(full && wait) // false: the poller waits for room, then calls again
	})
	if err == nil {
		err = werr
	}
	return n, err
}

// writeSome writes p[*n:] until all of p is written (*n = len(p)), the
// socket's buffer is full, or the socket fails.
func writeSome(fd uintptr, p []byte, n *int) (full bool, err error) {
	for *n < len(p) {
		m, errno := write(fd, p[*n:])
		switch {
		case errno == syscall.EINTR:
		case errno == syscall.EAGAIN:
			return true, nil
		case errno != 0:
			return false, wrap("write", errno)
		case m == 0:
			// Sockets do not take nothing without saying why; package os
			// reports this as an unexpected EOF rather than retrying it.
			return false, io.ErrUnexpectedEOF
		default:
			*n += m
		}
	}
	return false, nil
}

// Pending reports whether a reader of raw would find something at once:
// data, the end of the stream, or an error. It neither reads nor waits,
// and does not take the descriptor's read lock.
func Pending(raw syscall.RawConn) (bool, error) {
	var errno syscall.Errno
	err := raw.Control(func(fd uintptr) {
		for {
			if errno = peek(fd); errno != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return false, err
	}
	return errno != syscall.EAGAIN, nil
}

// wrap names the system call an errno came from, as net.Conn does.
func wrap(call string, errno syscall.Errno) error {
	return &net.OpError{Op: call, Err: os.NewSyscallError(call, errno)}
}
