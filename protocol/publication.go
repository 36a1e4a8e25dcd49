package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Publication is a server message on its way to many connections: an
// envelope's channel and type, its contents as the publisher encoded them,
// and the id the broker gave it when it was stored. Publishers encode the
// contents once, without an id (it does not exist yet); each node then
// renders the frame once, with the id in place, and every recipient on that
// node gets the same bytes.
//
// A Publication travels between nodes, and lives in history, in the form
// Marshal writes and ParsePublication reads: nothing else knows that form.
type Publication struct {
	Channel string
	Type    string
	// ID is the message's id in its topic's history; empty when it was not
	// stored. With an id, Contents must be a JSON object.
	ID string
	// About names the user a presence announcement (JoinedRoom, LeftRoom)
	// is about, so that a joiner can drop stale news of itself without
	// reading the contents; empty for other messages.
	About string
	// Contents is the encoded contents (a JSON value) without an id.
	Contents json.RawMessage
}

// NewPublication encodes contents for publishing. Contents must be a value
// encoding/json can marshal; as with Encode, a failure panics.
func NewPublication(channel, typ string, contents any) Publication {
	raw, err := marshal(contents)
	if err != nil {
		panic(fmt.Sprintf("protocol: cannot encode %s/%s contents: %v", channel, typ, err))
	}
	return Publication{Channel: channel, Type: typ, Contents: raw}
}

// Marshal writes the publication for the broker:
//
//	channel "\n" type "\n" about "\n" contents
//
// Channel, type and user names never hold a newline (names are validated,
// and user names have no control characters); contents may hold anything.
// The id is not written: the broker assigns it and carries it beside.
func (p Publication) Marshal() []byte {
	b := make([]byte, 0, len(p.Channel)+len(p.Type)+len(p.About)+len(p.Contents)+3)
	b = append(b, p.Channel...)
	b = append(b, '\n')
	b = append(b, p.Type...)
	b = append(b, '\n')
	b = append(b, p.About...)
	b = append(b, '\n')
	return append(b, p.Contents...)
}

// errBadPublication is returned for broker data that Marshal did not write.
var errBadPublication = errors.New("not a publication")

// ParsePublication reads what Marshal wrote, giving it the broker's id. The
// result's Contents aliases data.
func ParsePublication(data []byte, id string) (Publication, error) {
	var fields [3][]byte
	rest := data
	for i := range fields {
		head, tail, ok := bytes.Cut(rest, []byte{'\n'})
		if !ok {
			return Publication{}, errBadPublication
		}
		fields[i], rest = head, tail
	}
	if len(fields[0]) == 0 || len(fields[1]) == 0 || len(rest) == 0 {
		return Publication{}, errBadPublication
	}
	if id != "" && rest[0] != '{' {
		return Publication{}, fmt.Errorf("%w: a stored message's contents must be an object", errBadPublication)
	}
	return Publication{Channel: string(fields[0]), Type: string(fields[1]), About: string(fields[2]), ID: id, Contents: rest}, nil
}

// Frame renders the envelope a client receives: the contents with "id" as
// their first member when the publication has one. The publisher's
// contents are written as they are, never parsed again.
func (p Publication) Frame() []byte {
	b := make([]byte, 0, len(p.Contents)+len(p.Channel)+len(p.Type)+len(p.ID)+56)
	b = append(b, `{"channel":`...)
	b = appendString(b, p.Channel)
	b = append(b, `,"message":{"type":`...)
	b = appendString(b, p.Type)
	b = append(b, `,"contents":`...)
	b = p.appendContents(b)
	return append(b, "}}"...)
}

// ContentsWithID is the contents as History lists them: with the id as
// their first member when there is one.
func (p Publication) ContentsWithID() json.RawMessage {
	return p.appendContents(make([]byte, 0, len(p.Contents)+len(p.ID)+8))
}

// appendContents writes the contents, putting the id first in the object.
func (p Publication) appendContents(b []byte) []byte {
	if p.ID == "" {
		return append(b, p.Contents...)
	}
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	members := bytes.TrimSpace(p.Contents[1:]) // after the '{' ParsePublication checked
	if len(members) > 0 && members[0] != '}' {
		b = append(b, ',')
	}
	return append(b, members...)
}

// appendString appends s as a JSON string. Names and ids are plain ASCII
// and are copied as they are; anything else goes through encoding/json
// (without HTML escaping, as every frame).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			quoted, _ := marshal(s) // a string always marshals
			return append(b, quoted...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// UserTemplate is a publication about one user that only the broker can
// complete (users whose presence expired, known only to Redis): the
// marshalled publication is Head + the user's name + Middle + the name as
// a JSON string + Tail.
type UserTemplate struct {
	Head, Middle, Tail []byte
}

// RoomUserTemplate returns the template of a RoomUser announcement
// (JoinedRoom or LeftRoom) in room.
func RoomUserTemplate(channel, typ, room string) UserTemplate {
	const marker = `"\u0000"` // how the placeholder user encodes
	p := NewPublication(channel, typ, RoomUser{Room: room, User: "\x00"})
	i := bytes.Index(p.Contents, []byte(marker))
	header := Publication{Channel: channel, Type: typ}.Marshal() // "channel\ntype\n\n"
	return UserTemplate{
		Head:   header[:len(header)-1],
		Middle: append([]byte{'\n'}, p.Contents[:i]...),
		Tail:   p.Contents[i+len(marker):],
	}
}

// Complete fills the template in for user, as the broker does.
func (t UserTemplate) Complete(user string) []byte {
	name, _ := marshal(user)
	b := append([]byte(nil), t.Head...)
	b = append(b, user...)
	b = append(b, t.Middle...)
	b = append(b, name...)
	return append(b, t.Tail...)
}
