package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/switchboard/switchboard/internal/rawsock"
)

// Sizes of the buffers a WebSocket keeps for its whole life. net/http's
// are 4 KiB each; an idle socket needs far less. The library's write
// buffer carries only control frames (data frames are framed and sent by
// leanConn itself), and a control frame is at most 127 bytes from a
// server (RFC 6455 §5.5: a payload of at most 125, unmasked), so each
// one still leaves in one Write.
const (
	leanReadBuffer  = 1024
	leanWriteBuffer = 256
)

// leanHijacker hands the WebSocket library a connection with small
// buffers of its own instead of net/http's, and one that can send data
// frames without blocking. What net/http had read ahead of the upgrade is
// served first.
type leanHijacker struct {
	http.ResponseWriter
	conn *leanConn // set by Hijack
}

// Hijack takes the connection over from net/http.
func (h *leanHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The 101 response may still sit in net/http's writer.
	if err := brw.Writer.Flush(); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	ahead, _ := brw.Reader.Peek(brw.Reader.Buffered())
	lc := &leanConn{Conn: conn, ahead: append([]byte(nil), ahead...), raw: rawsock.Of(conn)}
	h.conn = lc
	return lc, bufio.NewReadWriter(bufio.NewReaderSize(lc, leanReadBuffer), bufio.NewWriterSize(lc, leanWriteBuffer)), nil
}

// leanConn is a hijacked connection that serves bytes read ahead first
// and sends data frames two ways: tryWrite, without blocking, for whoever
// produced the frame while the connection's writer is idle; writeFrames,
// blocking, for the writer. The library's control frames come through
// Write. Each write is whole: writes never interleave, and the unsent
// tail of a frame tryWrite could only partly send (pending) leaves before
// anything else.
type leanConn struct {
	net.Conn
	ahead []byte          // read by net/http before the hijack; owned by the reader
	raw   syscall.RawConn // the socket's descriptor; nil when it has none (no tryWrite)

	mu      sync.Mutex
	pending []byte // the rest of a frame tryWrite sent in part
}

// batches recycles frame buffers: a connection holds one only while it
// writes.
var batches = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// recycle returns a frame buffer to batches; a huge one is not kept.
func recycle(b *[]byte) {
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		batches.Put(b)
	}
}

// Read serves what was read ahead, then the socket.
func (c *leanConn) Read(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		if len(c.ahead) == 0 {
			c.ahead = nil
		}
		return n, nil
	}
	if c.raw != nil {
		return rawsock.Read(c.raw, p)
	}
	return c.Conn.Read(p)
}

// Write sends p (a control frame from the library) after anything
// pending.
func (c *leanConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.write(p)
}

// write sends p, blocking. Caller holds mu.
func (c *leanConn) write(p []byte) (int, error) {
	if c.raw != nil {
		return rawsock.Write(c.raw, p)
	}
	return c.Conn.Write(p)
}

// flushLocked sends what is pending, blocking. Caller holds mu.
func (c *leanConn) flushLocked() error {
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.write(c.pending)
	c.pending = nil
	return err
}

// hasPending reports whether part of a frame waits to be sent.
func (c *leanConn) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}

// flush sends what is pending, blocking.
func (c *leanConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

// writeFrames sends payloads as text frames after anything pending, in one
// system call when they fit one, blocking until all is sent.
func (c *leanConn) writeFrames(payloads [][]byte) error {
	b := batches.Get().(*[]byte)
	defer recycle(b)
	for _, p := range payloads {
		*b = appendTextFrame(*b, p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	_, err := c.write(*b)
	return err
}

// Outcomes of tryWrite.
type trySend int

const (
	// tryRefused: nothing was sent (the socket is busy or full, or has no
	// descriptor); the frame is the writer's to send.
	tryRefused trySend = iota
	// trySent: the whole frame was sent.
	trySent
	// tryPartial: part of the frame was sent and the rest is pending; a
	// writer must send it (flush) before the connection is idle again.
	tryPartial
)

// tryWrite sends payload as a text frame if it can without blocking (see
// trySend).
func (c *leanConn) tryWrite(payload []byte) (trySend, error) {
	b := batches.Get().(*[]byte)
	defer recycle(b)
	*b = appendTextFrame(*b, payload)
	return c.trySend(*b)
}

// canTry reports whether the socket can be written without blocking: it
// has a descriptor.
func (c *leanConn) canTry() bool { return c.raw != nil }

// trySend sends a whole frame if it can without blocking: only when
// nothing else is being written or pending, and only what the socket's
// buffer takes at once; the rest of a frame sent in part is kept
// (pending). An error is the socket's (the peer is gone); nothing is
// pending then.
func (c *leanConn) trySend(frame []byte) (trySend, error) {
	if c.raw == nil || !c.mu.TryLock() {
		return tryRefused, nil
	}
	defer c.mu.Unlock()
	if len(c.pending) > 0 {
		return tryRefused, nil
	}
	n, err := rawsock.WriteNonBlocking(c.raw, frame)
	switch {
	case err != nil:
		return trySent, err
	case n == len(frame):
		return trySent, nil
	case n == 0:
		return tryRefused, nil
	}
	c.pending = append([]byte(nil), frame[n:]...)
	return tryPartial, nil
}
