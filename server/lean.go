package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// Sizes of the buffers a WebSocket keeps for its whole life. net/http's
// are 4 KiB each; an idle socket needs far less, and a busy one is served
// by corking (below), not by its write buffer.
const (
	leanReadBuffer  = 1024
	leanWriteBuffer = 1024
)

// leanHijacker hands the WebSocket library a connection with small
// buffers of its own instead of net/http's, and one the writer can cork.
// What net/http had read ahead of the upgrade is served first.
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
	lc := &leanConn{Conn: conn, ahead: append([]byte(nil), ahead...)}
	h.conn = lc
	return lc, bufio.NewReadWriter(bufio.NewReaderSize(lc, leanReadBuffer), bufio.NewWriterSize(lc, leanWriteBuffer)), nil
}

// leanConn is a hijacked connection that serves bytes read ahead first
// and can be corked: while corked, writes are gathered and sent with one
// system call when it is uncorked. The writer corks around a batch of
// queued frames; anything else written meanwhile (a pong from the reader)
// joins the batch, in order.
type leanConn struct {
	net.Conn
	ahead []byte // read by net/http before the hijack; owned by the reader

	mu     sync.Mutex
	corked bool
	batch  *[]byte
}

// batches recycles cork buffers: a connection holds one only while it
// writes.
var batches = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

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
	return c.Conn.Read(p)
}

// Write sends p, or adds it to the batch while corked.
func (c *leanConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		*c.batch = append(*c.batch, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// cork starts gathering writes.
func (c *leanConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = true
	c.batch = batches.Get().(*[]byte)
}

// uncork sends what was gathered in one write and stops gathering.
func (c *leanConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	b := c.batch
	c.batch = nil
	var err error
	if len(*b) > 0 {
		_, err = c.Conn.Write(*b)
	}
	if cap(*b) <= 256<<10 { // a huge batch is not kept for the next connection
		*b = (*b)[:0]
		batches.Put(b)
	}
	return err
}
