package broker

import (
	"context"
	"net"
	"syscall"

	"github.com/switchboard/switchboard/internal/rawsock"
)

// rawDialer wraps go-redis's own dialer so that its plain TCP connections
// are read and written through rawsock: a node idle between messages does
// not wake the Go runtime's monitor thread for each reply and each pub/sub
// message (see rawsock). A TLS connection is left as it is.
func rawDialer(dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if rc, ok := rawsock.Wrap(conn).(*rawsock.Conn); ok {
			return redisConn{rc}, nil
		}
		return conn, nil
	}
}

// redisConn is a connection to Redis read and written through rawsock,
// whose descriptor go-redis sees through peekFirst.
type redisConn struct{ *rawsock.Conn }

// SyscallConn returns the socket's descriptor access for go-redis's
// checks (see peekFirst).
func (c redisConn) SyscallConn() (syscall.RawConn, error) {
	raw, err := c.Conn.SyscallConn()
	return peekFirst{raw}, err
}

// peekFirst is the descriptor access go-redis gets. go-redis (v9) reads a
// descriptor only to check a pooled connection before each command: its
// callback peeks at the socket without waiting (recv with MSG_PEEK and
// MSG_DONTWAIT) and reports done, and finding nothing means healthy, while
// data, an end of stream or an error each mean something (a connection
// Redis closed while it sat in the pool is replaced, not failed on:
// TestPublishRightAfterRestart). Read answers the common case, nothing to
// read, itself, with rawsock's peek, which unlike the callback's does not
// wake the runtime's monitor thread; in every other case the callback runs
// and sees what it would have seen.
type peekFirst struct{ syscall.RawConn }

// Read calls f unless the socket has nothing for a reader.
func (p peekFirst) Read(f func(fd uintptr) bool) error {
	if pending, err := rawsock.Pending(p.RawConn); err == nil && !pending {
		return nil
	}
	return p.RawConn.Read(f)
}
