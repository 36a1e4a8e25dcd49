package server

import (
	"errors"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// closeCause is why a connection ended. Each cause has a metric label, a
// close code and reason (for the close frame, and for the log when no frame
// is sent), and a way for the writer to end the connection.
type closeCause int

const (
	// causePeer: the peer closed or went away (a read failed), or the
	// connection ended without another cause.
	causePeer closeCause = iota
	// causeSlow: the send queue overflowed.
	causeSlow
	// causeRateLimit: the client kept sending while rate limited.
	causeRateLimit
	// causePingTimeout: a ping went unanswered.
	causePingTimeout
	// causeShutdown: the node is shutting down.
	causeShutdown
	// causeAuth: no valid ticket in time.
	causeAuth
	// causeTooBig: a frame exceeded MAX_FRAME_BYTES.
	causeTooBig
	// causeWriteError: a write to the socket failed or timed out.
	causeWriteError
	// causeUnavailable: the connection could not be subscribed (broker down).
	causeUnavailable
	// causeInvalid: a frame was not valid UTF-8 (1007, RFC 6455 §8.1).
	causeInvalid
	// causeBusy: the node admits no more connections right now (a connect
	// storm); the reason carries a retry hint.
	causeBusy
	// causeKicked: the server API closed it (DELETE /connections/{id},
	// DELETE /users/{user}/connections), with the code and reason asked.
	causeKicked
	// causeRefused: the backend's connect webhook refused it (1008).
	causeRefused
)

// label is the cause in switchboard_connections_closed_total.
func (c closeCause) label() string {
	switch c {
	case causeSlow:
		return "slow"
	case causeRateLimit:
		return "rate_limit"
	case causePingTimeout:
		return "ping_timeout"
	case causeShutdown:
		return "shutdown"
	case causeAuth:
		return "auth"
	case causeTooBig:
		return "too_big"
	case causeWriteError:
		return "write_error"
	case causeUnavailable:
		return "unavailable"
	case causeBusy:
		return "busy"
	case causeInvalid:
		return "invalid"
	case causeKicked:
		return "kicked"
	case causeRefused:
		return "refused"
	default:
		return "peer"
	}
}

// code is the RFC 6455 status the close frame carries. For causes that end
// the connection without a close frame from the writer it is what is
// logged: 1009 for too_big (coder/websocket has sent that frame itself),
// 1001 for ping_timeout, none for peer and write_error.
func (c closeCause) code() websocket.StatusCode {
	switch c {
	case causeSlow, causeRateLimit, causeAuth, causeRefused:
		return websocket.StatusPolicyViolation
	case causeKicked:
		return websocket.StatusNormalClosure
	case causePingTimeout, causeShutdown:
		return websocket.StatusGoingAway
	case causeTooBig:
		return websocket.StatusMessageTooBig
	case causeUnavailable, causeBusy:
		return websocket.StatusTryAgainLater
	case causeInvalid:
		return websocket.StatusInvalidFramePayloadData
	default:
		return 0
	}
}

// reason is the default close reason; RFC 6455 limits it to 123 bytes.
func (c closeCause) reason() string {
	switch c {
	case causeSlow:
		return "connection too slow to keep up with messages"
	case causeRateLimit:
		return "rate limit exceeded"
	case causePingTimeout:
		return "ping timeout"
	case causeShutdown:
		return "server shutting down"
	case causeAuth:
		return "authentication failed"
	case causeTooBig:
		return "frame too large"
	case causeUnavailable:
		return "server cannot subscribe you now, try again"
	case causeBusy:
		return "server busy, try again"
	case causeInvalid:
		return "frame is not valid UTF-8"
	case causeRefused:
		return "refused by backend"
	default:
		return ""
	}
}

// ending is how the writer carries out a close.
type ending int

const (
	// endAbrupt closes the socket without a handshake and abandons any
	// write in progress: the peer is gone, or must not be waited for.
	endAbrupt ending = iota
	// endDrop drops what is queued and sends the close frame once the
	// write in progress (if any) is done; that write gets stuckWriteGrace.
	endDrop
	// endFlush writes everything queued, then the close frame.
	endFlush
)

// ending is how a connection closed for c ends.
func (c closeCause) ending() ending {
	switch c {
	case causeShutdown, causeRateLimit, causeKicked:
		// Everything queued is an answer or a broadcast the client is owed.
		return endFlush
	case causeSlow, causeAuth, causeUnavailable, causeBusy, causeRefused, causeInvalid:
		return endDrop
	default:
		// peer, write_error: the socket is unusable; too_big: the library
		// has closed it; ping_timeout: the peer does not answer.
		return endAbrupt
	}
}

// closeRequest is a request to end a connection: its cause, and the code
// and reason of the close frame (the cause's unless it has more specific
// ones, as an authentication refusal does).
type closeRequest struct {
	cause  closeCause
	code   websocket.StatusCode
	reason string
}

// closeFor is the request to close for cause with its code and reason.
func closeFor(cause closeCause) closeRequest {
	return closeRequest{cause: cause, code: cause.code(), reason: cause.reason()}
}

// maxReasonBytes is the longest close reason RFC 6455 allows (a control
// frame carries 125 bytes, two of them the code); coder/websocket sends no
// close frame at all for a longer one.
const maxReasonBytes = 123

// truncateReason cuts reason to maxReasonBytes on a rune boundary.
func truncateReason(reason string) string {
	if len(reason) <= maxReasonBytes {
		return reason
	}
	cut := maxReasonBytes
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// notePeerClose keeps the code and reason of the close frame the peer
// sent, if err carries one, for the DELETE webhook.
func (c *client) notePeerClose(err error) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		c.peerClose.Store(&ce)
	}
}

// outcome is the close code and reason the connection ended with, as the
// backend's DELETE webhook reports them: the peer's own close frame when it
// closed first, 1006 when the connection was lost without one, else the
// close the server sent.
func (c *client) outcome() (int, string) {
	req := c.closeReq
	if req.cause == causePeer {
		if ce := c.peerClose.Load(); ce != nil {
			return int(ce.Code), ce.Reason
		}
		return int(websocket.StatusAbnormalClosure), "connection lost"
	}
	if req.code == 0 {
		return int(websocket.StatusAbnormalClosure), req.cause.label()
	}
	return int(req.code), req.reason
}
