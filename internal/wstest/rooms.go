package wstest

import (
	"slices"

	"github.com/switchboard/switchboard/protocol"
)

// Join sends JoinRoom and checks the joiner's answer: a MemberList of
// exactly members (in any order) and its own JoinedRoom as user.
func (c *Client) Join(room, user string, members ...string) protocol.JoinedRoom {
	c.t.Helper()
	return c.JoinSince(room, "", user, members...)
}

// JoinSince is Join resuming after message id since ("" for none).
func (c *Client) JoinSince(room, since, user string, members ...string) protocol.JoinedRoom {
	c.t.Helper()
	c.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room, Since: since})
	var list protocol.MemberList
	c.Expect(protocol.ChannelChatRoom, protocol.TypeMemberList).Decode(c.t, &list)
	want := slices.Sorted(slices.Values(members))
	if want == nil {
		want = []string{}
	}
	if list.Room != room || !slices.Equal(list.Users, want) {
		c.t.Fatalf("MemberList = %+v, want room %q users %v", list, room, want)
	}
	var joined protocol.JoinedRoom
	c.Expect(protocol.ChannelChatRoom, protocol.TypeJoinedRoom).Decode(c.t, &joined)
	if joined.Room != room || joined.User != user {
		c.t.Fatalf("JoinedRoom = %+v, want room %q user %q", joined, room, user)
	}
	return joined
}

// Say sends SendMessage to a room.
func (c *Client) Say(room, text string) {
	c.t.Helper()
	c.Send(protocol.ChannelChatRoom, protocol.TypeSendMessage, protocol.SendMessage{Room: room, Message: text})
}

// ExpectRoomUser expects a JoinedRoom or LeftRoom (typ) of user in room.
func (c *Client) ExpectRoomUser(typ, room, user string) {
	c.t.Helper()
	var got protocol.RoomUser
	c.Expect(protocol.ChannelChatRoom, typ).Decode(c.t, &got)
	if got.Room != room || got.User != user {
		c.t.Fatalf("%s = %+v, want room %q user %q", typ, got, room, user)
	}
}

// ExpectRoomMessage expects a NewMessage from user with text in room.
func (c *Client) ExpectRoomMessage(room, user, text string) protocol.RoomMessage {
	c.t.Helper()
	var got protocol.RoomMessage
	c.Expect(protocol.ChannelChatRoom, protocol.TypeNewMessage).Decode(c.t, &got)
	if got.Room != room || got.User != user || got.Message != text {
		c.t.Fatalf("NewMessage = %+v, want %s/%s/%q", got, room, user, text)
	}
	return got
}
