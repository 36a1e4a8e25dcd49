//go:build linux && !race && !msan && !asan

package rawsock

import (
	"syscall"
	"unsafe"
)

// read is read(2) without the scheduler's blocking-call bookkeeping: on a
// non-blocking socket it returns at once.
func read(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// write is write(2) without the scheduler's blocking-call bookkeeping: on
// a non-blocking socket it returns at once.
func write(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// peek looks at the next byte without taking it or waiting (recv(2) with
// MSG_PEEK and MSG_DONTWAIT): 0 when there is one or the stream ended,
// EAGAIN when there is nothing yet, or the socket's error.
func peek(fd uintptr) syscall.Errno {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno
}
