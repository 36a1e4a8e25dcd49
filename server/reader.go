package server

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// creditFloor is how long processing one frame may take before the time
// is credited back to the client's rate budget (limiter.credit): past it,
// the server (a slow broker) kept the connection from reading, and the
// frames that queued up in TCP meanwhile are not charged as one burst.
const creditFloor = 10 * time.Millisecond

// nextFrame reads the client's next frame and charges it to the rate
// budget; refused means the budget dropped it (the caller answers
// rate_limited). ok is false when the connection must end: the peer is
// gone or the socket was closed (Read failed: a close was requested and
// carried out), the frame is not UTF-8, or the client floods. It is the
// connection's only reader; while it waits in Read, pongs and the peer's
// pings and close frame are read too.
func (s *Server) nextFrame(cl *client) (data []byte, refused, ok bool) {
	cl.reading.enter()
	// A context that is never done: the library arms nothing per read.
	// Read ends when the writer closes the socket.
	_, data, err := cl.ws.Read(context.Background())
	cl.reading.leave()
	if err != nil {
		s.readEnded(cl, err)
		return nil, false, false
	}
	if !utf8.Valid(data) {
		// RFC 6455 §8.1: a text message must be UTF-8; so must JSON in a
		// binary one. Nothing of it is processed or stored.
		cl.logger().Info("frame is not valid UTF-8")
		cl.close(closeFor(causeInvalid))
		return nil, false, false
	}
	allowed, abusive := cl.limits.charge(len(data))
	if abusive {
		// Every frame before this one was answered already.
		cl.logger().Info("closing flooding connection")
		cl.close(closeFor(causeRateLimit))
		return nil, false, false
	}
	return data, !allowed, true
}

// readEnded logs why reading stopped and requests the close.
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
