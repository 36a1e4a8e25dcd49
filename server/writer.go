package server

import "time"

// stuckWriteGrace is how long a write may still take once the connection
// is being closed with its queue dropped (too slow, refused…): long enough
// for a client that is merely slow to take the frame and then read the
// close frame, short enough that a stalled one does not hold its memory
// for WRITE_TIMEOUT. (coder/websocket gives the close frame itself 5 s as
// well.)
const stuckWriteGrace = 5 * time.Second

// writeLoop is the connection's writer, the one goroutine that writes
// queued frames and the close frame (frames sent at once by whoever
// produced them go out in sendQueue.sendNow; the keep-alive writes pings;
// coder/websocket writes pongs, and the 1009 close frame, from within
// Read). It runs on demand (sendQueue): started by the push that finds it
// idle or leaves part of a frame pending, it writes what is pending and
// queued and ends when nothing is left, so an idle connection costs no
// goroutine here. Once a close is requested (close kicks a writer) it
// carries the request out, closes written and ends for good. A failed
// write requests an abrupt close.
func (c *client) writeLoop() {
	for {
		if err := c.flushPending(); err != nil {
			c.logger().Debug("write failed", "err", err)
			c.close(closeFor(causeWriteError))
		}
		frames, closing := c.queue.next(c.closing)
		if closing {
			c.finish()
			close(c.written)
			return
		}
		if frames == nil {
			return // idle; the next push starts a writer
		}
		if err := c.writeFrames(frames); err != nil {
			c.logger().Debug("write failed", "err", err)
			c.close(closeFor(causeWriteError))
		}
	}
}

// flushPending sends the rest of a frame that was sent in part without
// blocking, within WRITE_TIMEOUT.
func (c *client) flushPending() error {
	if c.conn == nil || !c.conn.hasPending() {
		return nil
	}
	c.watchdog.Reset(c.writeT)
	defer c.watchdog.Stop()
	return c.conn.flush()
}

// writeQueued writes everything queued (see writeFrames).
func (c *client) writeQueued() error { return c.writeFrames(c.queue.take()) }

// writeFrames writes frames taken from the queue, unless a close that
// does not flush was requested meanwhile. The frames of one batch leave
// in one system call, within one WRITE_TIMEOUT that the watchdog
// enforces.
func (c *client) writeFrames(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	defer func() {
		for _, frame := range frames {
			c.queue.done(frame)
		}
	}()
	if c.isClosing() && c.closeReq.cause.ending() != endFlush {
		return nil
	}
	c.watchdog.Reset(c.writeT)
	defer c.watchdog.Stop()
	if err := c.conn.writeFrames(frames); err != nil {
		return err
	}
	c.count.sent.Add(float64(len(frames)))
	return nil
}

// finish carries out the close request: an abrupt close, or the close
// handshake (bounded by the library's own timeouts) after flushing the
// queue if the request asks for it.
func (c *client) finish() {
	defer c.watchdog.Stop()
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
