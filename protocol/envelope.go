package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
)

// Channel names.
const (
	ChannelChat     = "chat"
	ChannelChatRoom = "chat-room"
	ChannelPing     = "ping"
	ChannelSession  = "session"
	ChannelInbox    = "inbox"
	// ChannelError is the channel of an Error answering a frame whose own
	// channel could not be read or is unknown.
	ChannelError = "error"
)

// Envelope is one frame: a channel name and a typed message. Ref is the
// client's optional correlation id: the server echoes it, unchanged, in
// the direct reply to that frame and in any Error the frame causes.
type Envelope struct {
	Channel string  `json:"channel"`
	Ref     string  `json:"ref,omitempty"`
	Message Message `json:"message"`
}

// MaxRefBytes is the longest ref a client may send.
const MaxRefBytes = 64

// Message is a type name and its contents, kept raw until the channel that
// owns the type decodes them.
type Message struct {
	Type     string          `json:"type"`
	Contents json.RawMessage `json:"contents,omitempty"`
}

// Decode parses one client frame. Its errors are *Error values: invalid_json
// when the frame is not a JSON object shaped like an envelope,
// unknown_channel when the channel is missing, and unknown_type when the
// type is missing. Whether the channel and type exist is for the caller to
// decide.
func Decode(frame []byte) (Envelope, error) {
	var env Envelope
	frame = bytes.TrimSpace(frame)
	if len(frame) == 0 || frame[0] != '{' {
		return env, Errorf(CodeInvalidJSON, "frame is not a JSON object")
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field == "ref" {
			return Envelope{}, Errorf(CodeInvalidContents, `"ref" must be a string of at most %d bytes`, MaxRefBytes)
		}
		return Envelope{}, Errorf(CodeInvalidJSON, "frame is not a valid envelope: %s", jsonProblem(err))
	}
	if len(env.Ref) > MaxRefBytes {
		return Envelope{Channel: env.Channel, Message: env.Message}, Errorf(CodeInvalidContents, `"ref" must be a string of at most %d bytes`, MaxRefBytes)
	}
	if env.Channel == "" {
		return env, Errorf(CodeUnknownChannel, `envelope has no "channel"`)
	}
	if env.Message.Type == "" {
		return env, Errorf(CodeUnknownType, `envelope has no "message.type"`)
	}
	return env, nil
}

// DescribeJSONError turns an encoding/json error into text a client can
// act on, without Go type names (for the HTTP API's bodies too).
func DescribeJSONError(err error) string { return jsonProblem(err) }

// jsonProblem turns encoding/json errors into text a client can act on,
// without Go type names.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%q must be %s", typ.Field, jsonKind(typ.Type.Kind()))
	case errors.As(err, &typ):
		return "contents must be " + jsonKind(typ.Type.Kind())
	default:
		return "unreadable JSON"
	}
}

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a JSON string"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number in range"
	default:
		return "a JSON number"
	}
}

// Encode renders an envelope. Contents must be a value encoding/json can
// marshal; every contents type in this package can, so a failure is a
// programming error and panics.
func Encode(channel, typ string, contents any) []byte {
	return EncodeReply(channel, "", typ, contents)
}

// EncodeReply renders an envelope answering a client frame that carried
// ref ("" for none: the frame is then exactly what Encode gives).
func EncodeReply(channel, ref, typ string, contents any) []byte {
	raw, err := marshal(contents)
	if err != nil {
		panic(fmt.Sprintf("protocol: cannot encode %s/%s contents: %v", channel, typ, err))
	}
	frame, err := marshal(Envelope{Channel: channel, Ref: ref, Message: Message{Type: typ, Contents: raw}})
	if err != nil {
		panic(fmt.Sprintf("protocol: cannot encode %s/%s envelope: %v", channel, typ, err))
	}
	return frame
}

// DecodeContents unmarshals a message's contents into dst, reporting any
// problem as an invalid_contents *Error that names the message type.
func DecodeContents(m Message, dst any) error {
	if len(m.Contents) == 0 || bytes.Equal(m.Contents, []byte("null")) {
		return Errorf(CodeInvalidContents, "%s needs contents", m.Type)
	}
	if err := json.Unmarshal(m.Contents, dst); err != nil {
		return Errorf(CodeInvalidContents, "%s contents: %s", m.Type, jsonProblem(err))
	}
	return nil
}

// marshal is json.Marshal without HTML escaping: encoding/json writes <, >
// and & as six-byte \u escapes by default, which would let a client's
// frame grow sixfold on its way to every recipient (and into history).
// Frames are JSON for programs, never embedded in HTML.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
