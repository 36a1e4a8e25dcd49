package broker

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/tcptest"
	"github.com/switchboard/switchboard/internal/wait"
)

// TestPeekFirst: go-redis's check of a pooled connection runs its callback
// only when the socket has something for a reader (see peekFirst).
func TestPeekFirst(t *testing.T) {
	tcp, peer := tcptest.Pair(t)
	conn, err := rawDialer(func(context.Context, string, string) (net.Conn, error) { return tcp, nil })(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		t.Fatalf("dialled %T, which has no descriptor for go-redis", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	called := func() bool {
		ran := false
		if err := raw.Read(func(uintptr) bool { ran = true; return true }); err != nil {
			t.Fatal(err)
		}
		return ran
	}
	if called() {
		t.Fatal("callback ran with nothing to read")
	}
	peer.Close() // what go-redis must see: the end of the stream
	wait.For(t, 5*time.Second, "the callback to run after the peer closed", called)
}
