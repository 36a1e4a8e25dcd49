package protocol

import "fmt"

// Code is a machine-readable error code carried in an Error message.
type Code string

// Error codes a client can receive.
const (
	CodeInvalidJSON     Code = "invalid_json"          // the frame is not a JSON envelope
	CodeUnknownChannel  Code = "unknown_channel"       // no such channel
	CodeUnknownType     Code = "unknown_type"          // the channel has no such message type
	CodeInvalidContents Code = "invalid_contents"      // contents missing, mistyped or out of limits
	CodeNotMember       Code = "not_member"            // the room must be joined first
	CodeRateLimited     Code = "rate_limited"          // too many frames; this one was dropped
	CodeTooManyRooms    Code = "too_many_rooms"        // the connection is in as many rooms as allowed
	CodeForbidden       Code = "forbidden"             // the ticket does not allow this room
	CodeUnauthenticated Code = "unauthenticated"       // authenticate before anything else
	CodeAlreadyAuthed   Code = "already_authenticated" // the connection authenticated already
	CodeHistoryDisabled Code = "history_disabled"      // the server keeps no history
	CodeUnavailable     Code = "unavailable"           // the broker (Redis) cannot be reached; retry later
	CodeInternal        Code = "internal"              // a server bug; the frame was not processed
)

// Error is a request the server cannot honour. It is both a Go error and
// the contents of an Error message.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Room names the room the error is about. It is sent only in answers
	// to frames that carried a ref, so clients that send none see the
	// frames they always saw.
	Room string `json:"room,omitempty"`
}

// Errorf builds an *Error with a formatted human message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// InRoom returns e naming the room it is about.
func (e *Error) InRoom(room string) *Error {
	e.Room = room
	return e
}

// TypeError is the message type of every error reply.
const TypeError = "Error"

// EncodeError renders the Error envelope answering a frame on channel. An
// empty channel (the frame's own could not be read) becomes "error".
func EncodeError(channel string, e *Error) []byte {
	return EncodeErrorReply(channel, "", e)
}

// EncodeErrorReply renders the Error answering a frame that carried ref.
// Without a ref the room is left out (see Error.Room).
func EncodeErrorReply(channel, ref string, e *Error) []byte {
	if channel == "" {
		channel = ChannelError
	}
	if ref == "" && e.Room != "" {
		plain := *e
		plain.Room = ""
		e = &plain
	}
	return EncodeReply(channel, ref, TypeError, e)
}
