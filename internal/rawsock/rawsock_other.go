//go:build !unix

package rawsock

import (
	"errors"
	"net"
	"syscall"
)

// errNoDescriptor is what the calls answer where sockets are not read
// through this package: Of reports no descriptor there, so they are never
// reached.
var errNoDescriptor = errors.New("rawsock: not supported on this system")

// Of reports no descriptor: sockets are left as they are.
func Of(net.Conn) syscall.RawConn { return nil }

// Read is not supported here.
func Read(syscall.RawConn, []byte) (int, error) { return 0, errNoDescriptor }

// Write is not supported here.
func Write(syscall.RawConn, []byte) (int, error) { return 0, errNoDescriptor }

// Pending is not supported here.
func Pending(syscall.RawConn) (bool, error) { return false, errNoDescriptor }

// WriteNonBlocking is not supported here.
func WriteNonBlocking(syscall.RawConn, []byte) (int, error) { return 0, errNoDescriptor }
