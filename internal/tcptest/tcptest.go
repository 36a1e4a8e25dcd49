// Package tcptest gives tests both ends of a real loopback TCP connection.
package tcptest

import (
	"net"
	"testing"
)

// Pair returns a dialled loopback TCP connection and the listener's end of
// it; both are closed when the test ends.
func Pair(t testing.TB) (dialled, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		conns <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-conns
	if peer == nil {
		c.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*net.TCPConn), peer.(*net.TCPConn)
}
