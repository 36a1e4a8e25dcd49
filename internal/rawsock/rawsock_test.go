package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection, the first wrapped.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return Wrap(c), peer
}

func skipWithoutDescriptors(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("sockets are not read through rawsock here")
	}
}

func TestWrap(t *testing.T) {
	skipWithoutDescriptors(t)
	c, _ := pair(t)
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

// TestRoundTrip sends more than a socket buffer holds both ways, so that
// Write waits for room and Read waits for data.
func TestRoundTrip(t *testing.T) {
	skipWithoutDescriptors(t)
	c, peer := pair(t)
	payload := bytes.Repeat([]byte("switchboard "), 1<<18) // 3 MiB
	errs := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
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
}

func TestReadEnds(t *testing.T) {
	skipWithoutDescriptors(t)
	tests := []struct {
		name  string
		setup func(c, peer net.Conn)
		check func(error) bool
	}{
		{"peer closed", func(_, peer net.Conn) { peer.Close() }, func(err error) bool { return err == io.EOF }},
		{"deadline passed", func(c, _ net.Conn) { c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) }, func(err error) bool {
			var ne net.Error
			return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
		}},
		{"closed here", func(c, _ net.Conn) { time.AfterFunc(20*time.Millisecond, func() { c.Close() }) }, func(err error) bool { return errors.Is(err, net.ErrClosed) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := pair(t)
			tt.setup(c, peer)
			n, err := c.Read(make([]byte, 16))
			if n != 0 || !tt.check(err) {
				t.Fatalf("Read = %d, %v", n, err)
			}
		})
	}
}

// TestWriteNonBlocking fills a socket nobody reads: the call returns what
// the buffer took, then 0, and never waits.
func TestWriteNonBlocking(t *testing.T) {
	skipWithoutDescriptors(t)
	c, peer := pair(t)
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
	peer.Close()
	var err2 error
	for i := 0; i < 100 && err2 == nil; i++ { // the reset arrives after a write or two
		_, err2 = WriteNonBlocking(raw, chunk[:1])
		time.Sleep(time.Millisecond)
	}
	if err2 == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
}
