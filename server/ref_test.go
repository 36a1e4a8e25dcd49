package server_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// expectRef waits for the next frame and checks its type and ref.
func expectRef(t *testing.T, c *wstest.Client, channel, typ, ref string) wstest.Frame {
	t.Helper()
	f := c.Expect(channel, typ)
	if f.Ref != ref {
		t.Fatalf("%s/%s carries ref %q, want %q: %s", channel, typ, f.Ref, ref, f.Raw)
	}
	return f
}

// TestRefIsEchoed: every direct reply, and every Error, carries the ref
// of the frame it answers; broadcasts carry none.
func TestRefIsEchoed(t *testing.T) {
	n := startNode(t, map[string]string{"MAX_ROOMS": "1"})
	a := wstest.Open(t, n.WS())
	const cr = protocol.ChannelChatRoom

	a.SendRef(cr, "j1", protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#r"})
	expectRef(t, a, cr, protocol.TypeMemberList, "j1")
	expectRef(t, a, cr, protocol.TypeJoinedRoom, "j1")

	a.SendRef(cr, "s1", protocol.TypeSendMessage, protocol.SendMessage{Room: "#r", Message: "hi", Ack: true})
	var sent protocol.Sent
	var got protocol.RoomMessage
	for range 2 { // the broadcast and the ack, in either order
		f := a.Next()
		switch f.Type {
		case protocol.TypeNewMessage:
			if f.Ref != "" {
				t.Errorf("a broadcast carries ref %q", f.Ref)
			}
			f.Decode(t, &got)
		case protocol.TypeSent:
			if f.Ref != "s1" {
				t.Errorf("Sent carries ref %q", f.Ref)
			}
			f.Decode(t, &sent)
		default:
			t.Fatalf("unexpected %s", f.Raw)
		}
	}
	if sent.Room != "#r" || sent.ID == "" || sent.ID != got.ID {
		t.Errorf("Sent = %+v, broadcast id %q", sent, got.ID)
	}

	a.SendRef(cr, "s2", protocol.TypeSendMessage, protocol.SendMessage{Room: "#r", Message: "no ack"})
	if f := a.Expect(cr, protocol.TypeNewMessage); f.Ref != "" {
		t.Errorf("broadcast carries ref %q", f.Ref)
	}
	a.Barrier() // no Sent without ack

	a.SendRef(cr, "h1", protocol.TypeGetHistory, protocol.GetHistory{Room: "#r"})
	expectRef(t, a, cr, protocol.TypeHistory, "h1")
	a.SendRef(cr, "m1", protocol.TypeGetMembers, protocol.GetMembers{Room: "#r"})
	expectRef(t, a, cr, protocol.TypeMembers, "m1")

	// Errors name their room when the frame had a ref, and only then.
	a.SendRef(cr, "j2", protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#other"})
	var e protocol.Error
	expectRef(t, a, cr, protocol.TypeError, "j2").Decode(t, &e)
	if e.Code != protocol.CodeTooManyRooms || e.Room != "#other" {
		t.Errorf("error = %+v, want too_many_rooms about #other", e)
	}
	a.Send(cr, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#other"})
	if f := expectRef(t, a, cr, protocol.TypeError, ""); strings.Contains(string(f.Raw), `"room"`) {
		t.Errorf("an error answering a frame without ref names its room: %s", f.Raw)
	}
	a.SendRef(cr, "x1", protocol.TypeSendMessage, protocol.SendMessage{Room: "#nope", Message: "?"})
	expectRef(t, a, cr, protocol.TypeError, "x1").Decode(t, &e)
	if e.Code != protocol.CodeNotMember || e.Room != "#nope" {
		t.Errorf("error = %+v, want not_member about #nope", e)
	}
	a.SendRef("nope", "u1", "X", nil)
	expectRef(t, a, protocol.ChannelError, protocol.TypeError, "u1")

	// A ref too long, or not a string, is refused, and not echoed.
	a.SendRaw(`{"channel":"chat-room","ref":"` + strings.Repeat("r", protocol.MaxRefBytes+1) + `","message":{"type":"LeaveRoom","contents":{"room":"#r"}}}`)
	a.ExpectError(cr, protocol.CodeInvalidContents)
	a.SendRaw(`{"channel":"chat-room","ref":7,"message":{"type":"LeaveRoom","contents":{"room":"#r"}}}`)
	if f := a.Expect(protocol.ChannelError, protocol.TypeError); f.Ref != "" || !strings.Contains(string(f.Contents), "invalid_contents") {
		t.Errorf("a numeric ref answered %s", f.Raw)
	}

	a.SendRef(cr, "l1", protocol.TypeLeaveRoom, protocol.RoomRef{Room: "#r"})
	expectRef(t, a, cr, protocol.TypeLeftRoom, "l1")
	a.SendRef(protocol.ChannelChat, "c1", protocol.TypeGetHistory, nil)
	expectRef(t, a, protocol.ChannelChat, protocol.TypeHistory, "c1")
}
