package server

import (
	"context"
	"errors"
	"unicode/utf8"

	"time"

	"github.com/coder/websocket"
)

// inboxFrames is how many read frames may wait for a connection's worker.
// Small on purpose: it is per connection, and the rate limit, not this
// buffer, is what bounds a client.
const inboxFrames = 16

// inboxFrame is a frame read from the client; refused means the rate
// limiter dropped it and the worker answers rate_limited; flooded means
// the reader stopped: the worker answers what came before, then closes.
type inboxFrame struct {
	data    []byte
	refused bool
	flooded bool
}

// read is the connection's reader: it reads frames, applies the rate limit
// and hands them to the worker in order, so that pings and close frames
// are read even while the worker waits for the broker. It stops when Read
// fails, which the writer guarantees by closing the socket once a close is
// requested; while it waits for the worker it stops on the close request
// itself. When Read fails first (the peer is gone, or sent too big a
// frame) it requests the close and calls peerGone, which abandons the
// worker's operation in progress. It also stops after handing over the
// flooded marker: the worker then answers what came before and closes.
func (s *Server) read(ctx context.Context, cl *client, inbox chan<- inboxFrame, peerGone context.CancelFunc) {
	lim := cl.limits
	for {
		cl.reading.enter()
		_, data, err := cl.ws.Read(ctx)
		cl.reading.leave()
		if err != nil {
			s.readEnded(cl, err)
			peerGone()
			return
		}
		if !utf8.Valid(data) {
			// RFC 6455 §8.1: a text message must be UTF-8; so must JSON in a
			// binary one. Nothing of it is processed or stored.
			cl.logger().Info("frame is not valid UTF-8")
			cl.close(closeFor(causeInvalid))
			return
		}
		ok, abusive := lim.charge(len(data))
		if abusive {
			// The client still gets the answers to what it sent before,
			// its rate_limited errors included, then the close frame.
			cl.logger().Info("closing flooding connection")
			cl.handOver(inbox, inboxFrame{flooded: true})
			return
		}
		if !cl.handOver(inbox, inboxFrame{data: data, refused: !ok}) {
			return
		}
	}
}

// handOver gives a read frame to the worker, waiting while the worker is
// busy; it reports false if a close was requested meanwhile. Time spent
// waiting is the server's doing (a slow broker): the frames that queued up
// in TCP meanwhile are credited, not charged as one burst.
func (c *client) handOver(inbox chan<- inboxFrame, f inboxFrame) bool {
	select {
	case inbox <- f:
		return true
	default:
	}
	start := time.Now()
	defer func() { c.limits.credit(time.Since(start)) }()
	select {
	case inbox <- f:
		return true
	case <-c.closing:
		return false
	}
}

// readEnded logs why the reader stopped and requests the close.
func (s *Server) readEnded(cl *client, err error) {
	cl.notePeerClose(err)
	switch status := websocket.CloseStatus(err); {
	case errors.Is(err, websocket.ErrMessageTooBig):
		// coder/websocket has already sent the 1009 close frame.
		cl.logger().Info("frame too large", "limit", s.cfg.MaxFrameBytes)
		cl.close(closeFor(causeTooBig))
	case status != -1:
		cl.logger().Debug("peer closed", "code", int(status))
	default:
		cl.logger().Debug("read ended", "err", err)
	}
	cl.close(closeFor(causePeer)) // unless a close was requested before
}
