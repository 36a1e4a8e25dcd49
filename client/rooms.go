package client

import (
	"context"

	"github.com/switchboard/switchboard/protocol"
)

// JoinOptions refine Join.
type JoinOptions struct {
	// Since resumes after this message id: the server replays the room's
	// stored messages after it (returned by Next, after the join), and
	// JoinedRoom.Recovered tells whether none were lost.
	Since string
}

// Join joins room and returns the room's member list and this
// connection's JoinedRoom. A refusal (invalid name, too_many_rooms,
// forbidden, …) is a *protocol.Error.
func (c *Conn) Join(ctx context.Context, room string, o JoinOptions) (protocol.MemberList, protocol.JoinedRoom, error) {
	return c.join(ctx, room, o, false)
}

func (c *Conn) join(ctx context.Context, room string, o JoinOptions, echo bool) (protocol.MemberList, protocol.JoinedRoom, error) {
	var list protocol.MemberList
	var joined protocol.JoinedRoom
	r := &request{kind: kindJoin, channel: protocol.ChannelChatRoom, room: room, echo: echo}
	f, err := c.roundTrip(ctx, r, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room, Since: o.Since})
	if err != nil {
		return list, joined, err
	}
	if r.list != nil {
		if err := r.list.Decode(&list); err != nil {
			return list, joined, err
		}
	}
	err = f.Decode(&joined)
	return list, joined, err
}

// Leave leaves room and waits for the server's LeftRoom acknowledgement.
func (c *Conn) Leave(ctx context.Context, room string) error {
	r := &request{kind: kindLeave, channel: protocol.ChannelChatRoom, room: room}
	_, err := c.roundTrip(ctx, r, protocol.TypeLeaveRoom, protocol.RoomRef{Room: room})
	return err
}

// sendMessageAck is SendMessage asking for a Sent acknowledgement.
type sendMessageAck struct {
	protocol.SendMessage
	Ack bool `json:"ack"`
}

// SendMessage posts text to a joined room and returns the id the server
// stored it under (empty when history is off). A refusal (not_member,
// invalid_contents, rate_limited, unavailable) is a *protocol.Error. The
// message also comes back through Next, as to every member.
//
// The id comes from the server's Sent acknowledgement, or, from a server
// that does not echo refs, from the sender's own copy of the message.
func (c *Conn) SendMessage(ctx context.Context, room, text string) (string, error) {
	r := &request{kind: kindSend, channel: protocol.ChannelChatRoom, room: room, text: text}
	f, err := c.roundTrip(ctx, r, protocol.TypeSendMessage, sendMessageAck{SendMessage: protocol.SendMessage{Room: room, Message: text}, Ack: true})
	if err != nil {
		return "", err
	}
	var sent struct{ ID string }
	err = f.Decode(&sent)
	return sent.ID, err
}

// History fetches stored messages: of q.Room on chat-room, or of the
// global chat when q.Room is empty. Messages hold protocol.RoomMessage or
// protocol.ChatMessage contents, oldest first.
func (c *Conn) History(ctx context.Context, q protocol.GetHistory) (protocol.History, error) {
	var h protocol.History
	channel := protocol.ChannelChatRoom
	if q.Room == "" {
		channel = protocol.ChannelChat
	}
	r := &request{kind: kindHistory, channel: channel, room: q.Room}
	f, err := c.roundTrip(ctx, r, protocol.TypeGetHistory, q)
	if err != nil {
		return h, err
	}
	err = f.Decode(&h)
	return h, err
}
