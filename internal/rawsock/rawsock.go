// Package rawsock reads and writes non-blocking sockets with system calls
// that bypass the Go scheduler's blocking-call bookkeeping.
//
// Go's sockets are non-blocking, so read(2) and write(2) on them return at
// once; yet net.Conn makes each one through the runtime's syscall entry,
// and the first such call after the process was idle wakes the runtime's
// monitor thread (sysmon), which then polls every 20 µs until the process
// is idle again. A lightly loaded server, idle between most messages, pays
// that wake-up on nearly every message. The calls here go straight to the
// kernel (syscall.RawSyscall, for calls that cannot block) and wait for
// readiness through the descriptor's poller as net.Conn does, so deadlines
// and Close behave the same.
//
// What that gives up: sysmon, left asleep through a busy spell made only
// of these calls, also does not preempt a goroutine that computes for
// long without any system call until the process's next timer is due
// (the server has timers every second or so: keep-alive, deadlines) or a
// garbage collection starts. Calls that can block (files, DNS) still go
// the usual way and wake it.
//
// On Linux the calls are raw, except in race-detector and sanitizer
// builds, whose checks hook the usual calls; on other Unix systems they
// are the usual ones; elsewhere a socket is left as it is (Of reports no
// descriptor).
package rawsock

import (
	"errors"
	"net"
	"syscall"
)

// Conn is a socket whose Read and Write go through this package. Its
// SyscallConn is the socket's, so code that inspects the descriptor itself
// (go-redis peeks at each pooled connection before use) still can.
type Conn struct {
	net.Conn
	raw syscall.RawConn
}

// SyscallConn returns the socket's descriptor access.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.raw, nil }

// Wrap returns c as a Conn when it has a descriptor, or c itself when it
// has none (a TLS connection, a pipe).
func Wrap(c net.Conn) net.Conn {
	raw := Of(c)
	if raw == nil {
		return c
	}
	return &Conn{Conn: c, raw: raw}
}

// Read reads into p, waiting for data as net.Conn does.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := Read(c.raw, p)
	return n, c.named("read", err)
}

// Write writes all of p, waiting for room as net.Conn does.
func (c *Conn) Write(p []byte) (int, error) {
	n, err := Write(c.raw, p)
	return n, c.named("write", err)
}

// named gives a failure the operation and the connection's addresses, as
// net.Conn's errors have them (io.EOF stays as it is).
func (c *Conn) named(op string, err error) error {
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) {
		return err
	}
	local := c.LocalAddr()
	return &net.OpError{Op: op, Net: local.Network(), Source: local, Addr: c.RemoteAddr(), Err: oe.Err}
}
