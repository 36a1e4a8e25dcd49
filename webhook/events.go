package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ConnectEvent is the POST sent when a socket opens. Its JSON body is
// {"connection", "user", "ws_uri"}; Header is forwarded as request headers
// (see ForwardHeader), never put in the body.
type ConnectEvent struct {
	// Connection is the new connection's id.
	Connection string `json:"connection"`
	// User is the user the handshake authenticated, if any.
	User string `json:"user"`
	// WSURI is "<public base>/connections/<id>", the address of the
	// per-connection API for this socket.
	WSURI string `json:"ws_uri"`
	// Header holds the handshake headers to forward to the backend.
	Header http.Header `json:"-"`
}

// ConnectReply is what an accepting backend answered.
type ConnectReply struct {
	// User is the user to name the connection; the event's user when the
	// backend named none.
	User string
	// Rooms lists rooms the connection joins right away.
	Rooms []string
	// FailedOpen is true when the backend could not be reached and the
	// client was configured to accept anyway.
	FailedOpen bool
}

// MessageEvent is the PUT sent for an envelope on an application channel;
// its JSON body is {"connection", "user", "envelope"}.
type MessageEvent struct {
	// Connection is the sending connection's id.
	Connection string `json:"connection"`
	// User is the sending connection's user.
	User string `json:"user"`
	// Envelope is the client's envelope as received.
	Envelope json.RawMessage `json:"envelope"`
}

// DisconnectEvent is the DELETE sent after a socket closed; its JSON body
// is {"connection", "user", "code", "reason", "node", "crashed"}.
type DisconnectEvent struct {
	// Connection is the closed connection's id, also the Idempotency-Key.
	Connection string `json:"connection"`
	// User is the closed connection's user.
	User string `json:"user"`
	// Code is the WebSocket close code (1006 when the node crashed).
	Code int `json:"code"`
	// Reason is the close reason.
	Reason string `json:"reason"`
	// Node names the node that held the connection.
	Node string `json:"node"`
	// Crashed is true when a surviving node sends the event on behalf of a
	// node that stopped without sending it.
	Crashed bool `json:"crashed"`
}

// connectAnswer is the backend's answer to a ConnectEvent.
type connectAnswer struct {
	Code   string   `json:"code"`
	User   string   `json:"user"`
	Rooms  []string `json:"rooms"`
	Reason string   `json:"reason"`
}

// MaxCloseReason is the longest close reason a WebSocket close frame can
// carry, in bytes.
const MaxCloseReason = 123

// ErrClosed is returned by calls made after Close began.
var ErrClosed = errors.New("webhook: client closed")

// Failure reasons, used in errors and as the "reason" metric label.
const (
	ReasonTimeout   = "timeout"   // no answer within WEBHOOK_TIMEOUT, or no free slot
	ReasonTransport = "transport" // connection refused, reset, DNS…
	ReasonStatus    = "status"    // a non-2xx status
	ReasonRefused   = "refused"   // a 2xx answer whose body is not {"code":"OK"}
	ReasonBadReply  = "bad_reply" // a 2xx answer that could not be read
	ReasonClosed    = "closed"    // the client was closing
	ReasonCanceled  = "canceled"  // the caller's context was cancelled
)

// Error is a failed webhook call. For Connect it is a refusal: the caller
// closes the socket with 1008 and CloseReason.
type Error struct {
	// Event is "connect", "message" or "disconnect".
	Event string
	// Reason is one of the Reason constants.
	Reason string
	// Status is the HTTP status, when one was received.
	Status int
	// Detail is a short human-readable explanation.
	Detail string
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	s := "webhook " + e.Event + ": " + e.Reason
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether retrying might succeed: timeouts, transport
// failures and the statuses 408, 425, 429 and 5xx.
func (e *Error) Temporary() bool {
	switch e.Reason {
	case ReasonTimeout, ReasonTransport:
		return true
	case ReasonStatus:
		return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooEarly ||
			e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return false
}

// CloseReason returns a WebSocket close reason of at most MaxCloseReason
// bytes, cut on a UTF-8 boundary, without internal details such as
// addresses.
func (e *Error) CloseReason() string {
	var s string
	switch e.Reason {
	case ReasonRefused:
		s = "refused by backend"
		if e.Detail != "" {
			s += ": " + e.Detail
		}
	case ReasonStatus:
		s = fmt.Sprintf("backend answered %d", e.Status)
	case ReasonTimeout:
		s = "backend timeout"
	case ReasonClosed:
		s = "server shutting down"
	default:
		s = "backend unavailable"
	}
	return truncate(s, MaxCloseReason)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// ForwardHeader picks the handshake headers to forward with a ConnectEvent:
// Authorization, and one Cookie header holding only the cookies named in
// cookies (the setting that lists them). The result is nil when there is
// nothing to forward.
func ForwardHeader(handshake http.Header, cookies []string) http.Header {
	var h http.Header
	if a := handshake.Get("Authorization"); a != "" {
		h = http.Header{"Authorization": {a}}
	}
	if len(cookies) == 0 {
		return h
	}
	r := http.Request{Header: handshake}
	var picked []string
	for _, c := range r.Cookies() {
		for _, name := range cookies {
			if c.Name == name {
				picked = append(picked, c.Name+"="+c.Value)
				break
			}
		}
	}
	if len(picked) > 0 {
		if h == nil {
			h = http.Header{}
		}
		h.Set("Cookie", strings.Join(picked, "; "))
	}
	return h
}
