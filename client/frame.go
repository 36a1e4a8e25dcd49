package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/protocol"
)

// MaxRefBytes is the longest ref the server echoes.
const MaxRefBytes = protocol.MaxRefBytes

// Frame is one envelope received from the server.
type Frame struct {
	// Channel is the envelope's channel, e.g. "chat-room".
	Channel string
	// Ref is the request reference the server echoed, or empty.
	Ref string
	// Type is the message type, e.g. "NewMessage".
	Type string
	// Contents is the message's contents, undecoded.
	Contents json.RawMessage
	// Raw is the whole frame as received.
	Raw []byte
}

// Decode unmarshals the frame's contents into dst.
func (f Frame) Decode(dst any) error {
	if err := json.Unmarshal(f.Contents, dst); err != nil {
		return fmt.Errorf("client: decode %s/%s contents: %w", f.Channel, f.Type, err)
	}
	return nil
}

// Err returns the frame's contents as a *protocol.Error when it is an
// Error message, and nil otherwise.
func (f Frame) Err() error {
	if f.Type != protocol.TypeError {
		return nil
	}
	e := &protocol.Error{}
	if err := json.Unmarshal(f.Contents, e); err != nil || e.Code == "" {
		return &protocol.Error{Code: protocol.CodeInternal, Message: "unreadable Error frame: " + string(f.Contents)}
	}
	return e
}

// String returns the raw frame.
func (f Frame) String() string { return string(f.Raw) }

// inEnvelope is an envelope as the server sends it.
type inEnvelope struct {
	Channel string           `json:"channel"`
	Ref     string           `json:"ref"`
	Message protocol.Message `json:"message"`
}

// parseFrame reads one server frame.
func parseFrame(data []byte) (Frame, error) {
	var env inEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return Frame{}, fmt.Errorf("client: server sent a frame that is not an envelope: %w", err)
	}
	return Frame{Channel: env.Channel, Ref: env.Ref, Type: env.Message.Type, Contents: env.Message.Contents, Raw: data}, nil
}

// outEnvelope is an envelope as a client sends it, with its optional ref.
type outEnvelope struct {
	Channel string     `json:"channel"`
	Ref     string     `json:"ref,omitempty"`
	Message outMessage `json:"message"`
}

type outMessage struct {
	Type     string `json:"type"`
	Contents any    `json:"contents,omitempty"`
}

// encode renders a client envelope without HTML escaping (which would
// grow <, > and & sixfold on their way to every recipient).
func encode(channel, ref, typ string, contents any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(outEnvelope{Channel: channel, Ref: ref, Message: outMessage{Type: typ, Contents: contents}}); err != nil {
		return nil, fmt.Errorf("client: encode %s/%s: %w", channel, typ, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// CompareIDs orders two message ids of one stream: negative when a comes
// before b, zero when equal, positive after. Ids are Redis stream ids,
// "<milliseconds>-<sequence>", compared numerically; ids of another shape
// are compared by length, then bytewise.
func CompareIDs(a, b string) int {
	am, as, aok := splitID(a)
	bm, bs, bok := splitID(b)
	if aok && bok {
		switch {
		case am != bm:
			return cmpUint(am, bm)
		default:
			return cmpUint(as, bs)
		}
	}
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func splitID(id string) (ms, seq uint64, ok bool) {
	l, r, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(l, 10, 64)
	seq, err2 := strconv.ParseUint(r, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
