package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/tcptest"
	"github.com/switchboard/switchboard/internal/wait"
)

// counted is a TCP connection that counts the reads and writes made
// through its own methods, which a Conn must not use.
type counted struct {
	*net.TCPConn
	reads, writes atomic.Int64
}

func (c *counted) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.TCPConn.Read(p)
}

func (c *counted) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(p)
}

// pair returns a wrapped loopback TCP connection, the TCP connection under
// it, and its peer. Both ends' buffers are small, so that a few hundred
// KiB fill them.
func pair(t *testing.T) (net.Conn, *counted, *net.TCPConn) {
	t.Helper()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("sockets are not read through rawsock here")
	}
	tcp, peer := tcptest.Pair(t)
	for _, end := range []*net.TCPConn{tcp, peer} {
		if err := end.SetReadBuffer(16 << 10); err != nil {
			t.Fatal(err)
		}
		if err := end.SetWriteBuffer(16 << 10); err != nil {
			t.Fatal(err)
		}
	}
	under := &counted{TCPConn: tcp}
	return Wrap(under), under, peer
}

func TestWrap(t *testing.T) {
	c, _, _ := pair(t)
	if _, ok := c.(*Conn); !ok {
		t.Fatalf("Wrap(tcp) = %T, want *Conn", c)
	}
	if Of(c) == nil {
		t.Fatal("a wrapped connection hides its descriptor")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Fatalf("Wrap(pipe) = %T, want the pipe itself", got)
	}
}

// TestRoundTrip: a write larger than both sockets' buffers, to a peer not
// reading, waits for room until its deadline and reports what it wrote;
// once the peer reads, the rest goes; every byte arrives in order, both
// ways; and none of it went through the connection's own Read or Write.
func TestRoundTrip(t *testing.T) {
	c, under, peer := pair(t)
	payload := bytes.Repeat([]byte("switchboard "), 1<<15) // 384 KiB

	if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Write(payload)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write to a peer not reading = %d, %v; want a timeout", n, err)
	}
	if n <= 0 || n >= len(payload) {
		t.Fatalf("Write to a peer not reading wrote %d of %d", n, len(payload))
	}

	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		m, err := c.Write(payload[n:])
		if err == nil && m != len(payload)-n {
			err = io.ErrShortWrite
		}
		errs <- err
	}()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("peer read other bytes than were written")
	}

	go func() {
		_, err := peer.Write(payload)
		errs <- err
	}()
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("Read: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("read other bytes than the peer wrote")
	}
	if r, w := under.reads.Load(), under.writes.Load(); r != 0 || w != 0 {
		t.Fatalf("%d reads and %d writes went through net.Conn", r, w)
	}
}

// TestEnds: how a read or a write ends when it cannot go on, with the
// errors net.Conn gives.
func TestEnds(t *testing.T) {
	var ne net.Error
	tests := []struct {
		name  string
		write bool                        // a write blocked on a full socket, else a read waiting for data
		end   func(c, peer net.Conn)      // what ends it
		check func(n int, err error) bool // what it must answer
	}{
		{"read: peer closed", false, func(_, peer net.Conn) { peer.Close() },
			func(n int, err error) bool { return n == 0 && err == io.EOF }},
		{"read: peer reset", false, func(_, peer net.Conn) { peer.(*net.TCPConn).SetLinger(0); peer.Close() },
			func(n int, err error) bool {
				return n == 0 && errors.Is(err, syscall.ECONNRESET) && strings.Contains(err.Error(), "read tcp 127.0.0.1:")
			}},
		{"read: deadline", false, func(c, _ net.Conn) { c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) },
			func(n int, err error) bool {
				return n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
			}},
		{"read: closed here", false, func(c, _ net.Conn) { time.AfterFunc(20*time.Millisecond, func() { c.Close() }) },
			func(n int, err error) bool { return n == 0 && errors.Is(err, net.ErrClosed) }},
		{"write: closed here", true, func(c, _ net.Conn) { time.AfterFunc(20*time.Millisecond, func() { c.Close() }) },
			func(n int, err error) bool { return n < 4<<20 && errors.Is(err, net.ErrClosed) }},
		{"write: peer reset", true, func(_, peer net.Conn) { peer.(*net.TCPConn).SetLinger(0); peer.Close() },
			func(n int, err error) bool {
				return n < 4<<20 && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, peer := pair(t)
			tt.end(c, peer)
			var (
				n   int
				err error
			)
			if tt.write {
				n, err = c.Write(make([]byte, 4<<20))
			} else {
				n, err = c.Read(make([]byte, 16))
			}
			if !tt.check(n, err) {
				t.Fatalf("got %d, %v", n, err)
			}
		})
	}
}

// TestWriteNonBlocking fills a socket nobody reads: the call returns what
// the buffer took, then 0, and never waits; a reset peer is an error.
func TestWriteNonBlocking(t *testing.T) {
	c, under, peer := pair(t)
	raw := c.(*Conn).raw
	chunk := make([]byte, 64<<10)
	total := 0
	for i := 0; ; i++ {
		n, err := WriteNonBlocking(raw, chunk)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < len(chunk) {
			break
		}
		if i > 1000 {
			t.Fatal("64 MiB went into a socket nobody reads")
		}
	}
	if n, err := WriteNonBlocking(raw, chunk); n != 0 || err != nil {
		t.Fatalf("on a full socket: %d, %v; want 0, nil", n, err)
	}
	got, err := io.ReadFull(peer, make([]byte, total))
	if err != nil || got != total {
		t.Fatalf("peer read %d of %d: %v", got, total, err)
	}
	if w := under.writes.Load(); w != 0 {
		t.Fatalf("%d writes went through net.Conn", w)
	}
	peer.SetLinger(0)
	peer.Close()
	var werr error
	for i := 0; i < 100 && werr == nil; i++ { // the reset can take a moment to arrive
		_, werr = WriteNonBlocking(raw, chunk[:1])
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, syscall.ECONNRESET) && !errors.Is(werr, syscall.EPIPE) {
		t.Fatalf("writes to a reset peer: %v", werr)
	}
}

// TestPending: nothing to read is not pending; data is, until read; so is
// the end of the stream. Pending never takes data.
func TestPending(t *testing.T) {
	c, _, peer := pair(t)
	raw := c.(*Conn).raw
	pending := func() bool {
		p, err := Pending(raw)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if p, err := Pending(raw); p || err != nil {
		t.Fatalf("nothing sent: Pending = %v, %v", p, err)
	}
	if _, err := peer.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "the data to be pending", pending)
	if p, _ := Pending(raw); !p {
		t.Fatal("Pending took the data")
	}
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	if p, err := Pending(raw); p || err != nil {
		t.Fatalf("all read: Pending = %v, %v", p, err)
	}
	peer.Close()
	wait.For(t, 5*time.Second, "the end of the stream to be pending", pending)
}
