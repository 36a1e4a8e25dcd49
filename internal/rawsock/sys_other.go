//go:build unix && (!linux || race || msan || asan)

package rawsock

import "syscall"

// The usual calls: on Unix systems other than Linux, and in race,
// memory- and address-sanitizer builds, whose checks hook the usual calls
// (a raw write would hide from the race detector that the peer's read
// comes after it).

// read is read(2), made the usual way.
func read(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Read(int(fd), p)) }

// write is write(2), made the usual way.
func write(fd uintptr, p []byte) (int, syscall.Errno) { return errnoOf(syscall.Write(int(fd), p)) }

// peek looks at the next byte without taking it or waiting, made the
// usual way.
func peek(fd uintptr) syscall.Errno {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	_, errno := errnoOf(0, err)
	return errno
}

// errnoOf splits a system call's result the way the raw calls return it.
func errnoOf(n int, err error) (int, syscall.Errno) {
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = syscall.EIO
		}
		return 0, errno
	}
	return n, 0
}
