package channels

import (
	"context"
	"strings"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// This file holds what the server API (a backend, not a client) asks of
// the chat-room channel. Each call does what the matching client request
// does, with the same validation and the same frames to the members.

// Post publishes a message to a room on behalf of user, exactly as a
// member's SendMessage would: stored in history and delivered as
// NewMessage to every member on every node. It returns the stored id ("",
// without history). The poster need not be a member.
func (cr *ChatRoom) Post(ctx context.Context, room, user, text string) (string, error) {
	if err := ValidateRoomName(room, cr.limits.MaxRoomName); err != nil {
		return "", err
	}
	pub := protocol.NewPublication(protocol.ChannelChatRoom, protocol.TypeNewMessage,
		protocol.RoomMessage{Room: room, User: user, Message: text, PostedAt: now()})
	res, err := cr.broker.Publish(ctx, broker.Message{Topic: RoomTopic(room), Data: pub.Marshal()}, true)
	if err != nil {
		return "", inRoom(brokerError(err), room)
	}
	return res.ID, nil
}

// JoinFor makes connection c join room as if it had sent JoinRoom
// (without a ref): it receives MemberList and JoinedRoom, and the other
// members JoinedRoom when c's user is new to the room. Call it on the connection's own worker, never beside a
// frame being processed. Joining a room c is in already is idempotent.
func (cr *ChatRoom) JoinFor(ctx context.Context, c Client, room string) error {
	if err := ValidateRoomName(room, cr.limits.MaxRoomName); err != nil {
		return err
	}
	return inRoom(cr.join(ctx, c, "", protocol.JoinRoom{Room: room}), room)
}

// LeaveFor takes connection c out of room as if it had sent LeaveRoom; it
// reports false when c was not in the room. Call it on the connection's
// own worker.
func (cr *ChatRoom) LeaveFor(ctx context.Context, c Client, room string) (bool, error) {
	if !cr.isMember(c, room) {
		return false, nil
	}
	return true, cr.leave(ctx, c, "", room)
}

// Rooms is a page of active rooms with their user counts.
type Rooms struct {
	// Rooms lists the rooms in name order.
	Rooms []RoomCount `json:"rooms"`
	// Next is the after of the following page; absent on the last one.
	Next string `json:"next,omitempty"`
}

// RoomCount is a room and how many users are in it.
type RoomCount struct {
	Room  string `json:"room"`
	Count int    `json:"count"`
}

// ActiveRooms lists the rooms that have at least one user, in name order,
// after the room named after ("" for the first page), at most limit of
// them (0: no bound).
func (cr *ChatRoom) ActiveRooms(ctx context.Context, after string, limit int) (Rooms, error) {
	q := broker.ActiveQuery{After: roomTopicPrefix, Limit: limit}
	if after != "" {
		q.After = RoomTopic(after)
	}
	out := Rooms{Rooms: []RoomCount{}}
	for {
		page, err := cr.broker.Active(ctx, q)
		if err != nil {
			return Rooms{}, brokerError(err)
		}
		for _, tc := range page.Topics {
			if !strings.HasPrefix(tc.Topic, roomTopicPrefix) {
				// Topics sort by name: past the rooms, nothing is a room.
				return out, nil
			}
			out.Rooms = append(out.Rooms, RoomCount{Room: roomOf(tc.Topic), Count: tc.Count})
		}
		if page.Next == "" {
			return out, nil
		}
		if limit > 0 {
			out.Next = roomOf(page.Next)
			return out, nil
		}
		q.After = page.Next
	}
}
