package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// Envelope is one frame: a channel name and a typed message.
type Envelope struct {
	Channel string  `json:"channel"`
	Message Message `json:"message"`
}

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
		return Envelope{}, Errorf(CodeInvalidJSON, "frame is not a valid envelope: %s", jsonProblem(err))
	}
	if env.Channel == "" {
		return env, Errorf(CodeUnknownChannel, `envelope has no "channel"`)
	}
	if env.Message.Type == "" {
		return env, Errorf(CodeUnknownType, `envelope has no "message.type"`)
	}
	return env, nil
}

// jsonProblem turns encoding/json errors into text a client can act on,
// without Go type names.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		if e.Field != "" {
			return fmt.Sprintf("%q must be a JSON %s", e.Field, jsonKind(e.Type.Kind().String()))
		}
		return "wrong JSON type"
	default:
		return "unreadable JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// Encode renders an envelope. Contents must be a value encoding/json can
// marshal; every contents type in this package can, so a failure is a
// programming error and panics.
func Encode(channel, typ string, contents any) []byte {
	raw, err := json.Marshal(contents)
	if err != nil {
		panic(fmt.Sprintf("protocol: cannot encode %s/%s contents: %v", channel, typ, err))
	}
	frame, err := json.Marshal(Envelope{Channel: channel, Message: Message{Type: typ, Contents: raw}})
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

// WithID returns a copy of an encoded envelope whose contents object gains
// an "id" field as its first member. Brokers assign ids when they store a
// message, after the publisher encoded it, so each node stamps the id once
// before fanning the frame out.
func WithID(frame []byte, id string) ([]byte, error) {
	env, err := stamp(frame, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

// ContentsWithID is WithID returning only the stamped contents, as History
// lists them.
func ContentsWithID(frame []byte, id string) (json.RawMessage, error) {
	env, err := stamp(frame, id)
	return env.Message.Contents, err
}

func stamp(frame []byte, id string) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(frame, &env); err != nil {
		return env, fmt.Errorf("stamp id: %w", err)
	}
	contents := bytes.TrimSpace(env.Message.Contents)
	if len(contents) < 2 || contents[0] != '{' {
		return env, fmt.Errorf("stamp id: contents of %s/%s are not an object", env.Channel, env.Message.Type)
	}
	quotedID, _ := json.Marshal(id) // a string always marshals
	stamped := make([]byte, 0, len(contents)+len(quotedID)+8)
	stamped = append(stamped, `{"id":`...)
	stamped = append(stamped, quotedID...)
	rest := bytes.TrimSpace(contents[1:])
	if rest[0] != '}' {
		stamped = append(stamped, ',')
	}
	stamped = append(stamped, rest...)
	env.Message.Contents = stamped
	return env, nil
}
