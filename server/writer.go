package server

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// stuckWriteGrace is how long a write may still take once the connection
// is being closed with its queue dropped (too slow, resync…): long enough
// for a client that is merely slow to take the frame and then read the
// close frame, short enough that a stalled one does not hold its memory
// for WRITE_TIMEOUT. (coder/websocket gives the close frame itself 5 s as
// well.)
const stuckWriteGrace = 5 * time.Second

// writeLoop is the connection's writer, the one goroutine that writes data
// and close frames (the keep-alive writes pings; coder/websocket writes
// pongs, and the 1009 close frame, from within Read). It writes queued
// frames until a close is requested, its one way to stop, and then carries
// the request out. A failed write requests an abrupt close.
func (c *client) writeLoop() {
	defer c.cancelWrites()
	for {
		select {
		case <-c.closing:
			c.finish()
			return
		case <-c.queue.ready:
		}
		if err := c.writeQueued(); err != nil {
			c.logger().Debug("write failed", "err", err)
			c.close(closeFor(causeWriteError))
		}
	}
}

// writeQueued writes everything queued, stopping early if a close that
// does not flush is requested meanwhile.
func (c *client) writeQueued() error {
	for _, frame := range c.queue.take() {
		if c.isClosing() && c.closeReq.cause.ending() != endFlush {
			return nil
		}
		err := c.write(frame)
		c.queue.done(frame)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish carries out the close request: an abrupt close, or the close
// handshake (bounded by the library's own timeouts) after flushing the
// queue if the request asks for it.
func (c *client) finish() {
	if c.stuckTimer != nil {
		c.stuckTimer.Stop()
	}
	req := c.closeReq
	switch req.cause.ending() {
	case endAbrupt:
		_ = c.ws.CloseNow()
		return
	case endFlush:
		if err := c.writeQueued(); err != nil {
			_ = c.ws.CloseNow()
			return
		}
	case endDrop:
	}
	_ = c.ws.Close(req.code, req.reason)
}

// write writes one frame within WRITE_TIMEOUT.
func (c *client) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(c.writes, c.writeT)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return err
	}
	c.sent.Inc()
	return nil
}
