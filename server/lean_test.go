package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// leanPair accepts one WebSocket through leanHijacker and returns the
// server's leanConn with a client reading the other end. sndBuf, when set,
// shrinks the server socket's send buffer so that it fills quickly.
func leanPair(t *testing.T, sndBuf int) (*leanConn, *websocket.Conn) {
	t.Helper()
	accepted := make(chan *leanConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lean := &leanHijacker{ResponseWriter: w}
		ws, err := websocket.Accept(lean, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		if sndBuf > 0 {
			if err := lean.conn.Conn.(*net.TCPConn).SetWriteBuffer(sndBuf); err != nil {
				t.Errorf("SO_SNDBUF: %v", err)
			}
		}
		t.Cleanup(func() { _ = ws.CloseNow() })
		accepted <- lean.conn
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+srv.URL[len("http"):], nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	client.SetReadLimit(-1)
	t.Cleanup(func() { _ = client.CloseNow() })
	select {
	case lc := <-accepted:
		if lc.raw == nil {
			t.Fatal("a TCP connection should offer its descriptor")
		}
		return lc, client
	case <-ctx.Done():
		t.Fatal("no connection accepted")
		return nil, nil
	}
}

// readFrames reads n text frames and checks each against want.
func readFrames(t *testing.T, client *websocket.Conn, want [][]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, w := range want {
		typ, got, err := client.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != websocket.MessageText || !bytes.Equal(got, w) {
			t.Fatalf("frame %d: got %v of %d bytes, want text of %d bytes", i, typ, len(got), len(w))
		}
	}
}

func payload(i, size int) []byte {
	p := bytes.Repeat([]byte{'a' + byte(i%26)}, size)
	copy(p, fmt.Sprintf("%06d", i))
	return p
}

// TestFramesReadBackWhole: every length encoding of appendTextFrame, sent
// both ways, reads back as the library's client expects.
func TestFramesReadBackWhole(t *testing.T) {
	lc, client := leanPair(t, 0)
	var want [][]byte
	for i, size := range []int{0, 1, 125, 126, 127, 65535, 65536, 300_000} {
		p := payload(i, max(size, 6))[:size]
		want = append(want, p, p)
		res, err := lc.tryWrite(p)
		if err != nil {
			t.Fatalf("size %d: tryWrite: %v", size, err)
		}
		if res == tryRefused {
			t.Fatalf("size %d: refused on an idle socket", size)
		}
		if err := lc.writeFrames([][]byte{p}); err != nil { // flushes a partial one first
			t.Fatalf("size %d: writeFrames: %v", size, err)
		}
	}
	readFrames(t, client, want)
}

// TestTryWriteNeverBlocks: with a client that does not read, tryWrite
// fills the socket and then refuses instead of waiting; the tail of a
// frame it sent in part stays pending and leaves first, so the client
// reads every frame whole and in order once it reads.
func TestTryWriteNeverBlocks(t *testing.T) {
	lc, client := leanPair(t, 16<<10)
	var want [][]byte
	partial, refused := false, false
	for i := 0; !refused; i++ {
		if i > 100_000 {
			t.Fatal("the socket never filled")
		}
		size := 1000
		if i%5 == 4 {
			size = 4 << 20 // more than the socket takes at once
		}
		p := payload(i, size)
		start := time.Now()
		res, err := lc.tryWrite(p)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("frame %d: tryWrite took %s", i, d)
		}
		switch res {
		case trySent:
			want = append(want, p)
		case tryPartial:
			partial = true
			want = append(want, p)
		case tryRefused:
			refused = true
		}
		if partial && res != tryRefused {
			// Anything after a partial frame must wait for the flush.
			if res2, _ := lc.tryWrite(p); res2 != tryRefused {
				t.Fatal("tryWrite sent a frame while another's tail was pending")
			}
			refused = true
		}
	}
	if !partial {
		t.Fatal("no frame was sent in part: the test did not exercise the pending tail")
	}
	// The writer's part: flush what is pending, then send more, while the
	// client reads.
	more := [][]byte{payload(-1, 70_000), payload(-2, 10)}
	errs := make(chan error, 1)
	go func() { errs <- lc.writeFrames(more) }()
	readFrames(t, client, append(want, more...))
	if err := <-errs; err != nil {
		t.Fatalf("writeFrames: %v", err)
	}
	t.Logf("%d frames sent without blocking, the last in part", len(want))
}

// TestPingWithoutDescriptor: a socket that cannot be written without
// blocking (no descriptor) is still pinged, by a goroutine of its own,
// and the ping is recorded as in flight.
func TestPingWithoutDescriptor(t *testing.T) {
	server, peer := net.Pipe()
	t.Cleanup(func() { _ = server.Close(); _ = peer.Close() })
	c := newClient("c", nil, newReadMark(), nil, 1<<20, time.Second, frameCounters{
		sent:   prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"}),
		atOnce: prometheus.NewCounter(prometheus.CounterOpts{Name: "at_once"}),
	}, slog.New(slog.DiscardHandler))
	c.conn = &leanConn{Conn: server}
	if c.conn.canTry() {
		t.Fatal("a pipe has no descriptor")
	}
	if !c.sendPing() {
		t.Fatal("ping not sent")
	}
	if c.pingSent.Load() == 0 {
		t.Error("ping not recorded as in flight")
	}
	got := make([]byte, len(pingFrame))
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, pingFrame) {
		t.Fatalf("peer read %x (%v), want a ping frame %x", got, err, pingFrame)
	}
}
