//go:build !unix

package server

import "syscall"

// writeNonBlocking sends nothing where write(2) is not at hand: every
// frame goes through the writer.
func writeNonBlocking(syscall.RawConn, []byte) (int, error) { return 0, nil }
