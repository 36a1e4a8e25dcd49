package e2e

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// expectGap waits for a Gap on channel, skipping nothing else: the frame
// before it must be the Gap.
func expectGap(t *testing.T, c *wstest.Client, channel string) protocol.Gap {
	t.Helper()
	var g protocol.Gap
	c.Expect(channel, protocol.TypeGap).Decode(t, &g)
	return g
}

// TestRedisLosingItsDataDisconnectsNobody: Redis is killed and restarted
// empty (no persistence) under traffic. Every client stays connected;
// each one of a topic with history is told, in band, from which id it may
// have missed messages (the node saw Redis's epoch change), and traffic
// flows again once Redis is back.
func TestRedisLosingItsDataDisconnectsNobody(t *testing.T) {
	d, srv := singleRedis(t)
	ns := d.nodes(t, 2, nil)
	alice, bob := aliceAndBob(t, ns[0].WS(), ns[1].WS(), "#r")
	carol := wstest.Open(t, ns[1].WS()+"?user=carol") // in no room, only in chat

	var last protocol.RoomMessage
	for i := range 5 {
		alice.Say("#r", "before "+string(rune('a'+i)))
		alice.ExpectRoomMessage("#r", "alice", "before "+string(rune('a'+i)))
		last = bob.ExpectRoomMessage("#r", "alice", "before "+string(rune('a'+i)))
	}
	carol.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "chat before")
	var chatLast protocol.ChatMessage
	carol.Expect(protocol.ChannelChat, protocol.TypeNewMessageReceived).Decode(t, &chatLast)
	for _, c := range []*wstest.Client{alice, bob} {
		c.Expect(protocol.ChannelChat, protocol.TypeNewMessageReceived)
	}

	srv.Kill(t)
	srv.Restart(t)
	for _, n := range ns {
		wait.For(t, converge, "node ready again", func() bool {
			status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil)
			return status == http.StatusOK
		})
	}

	// Room members on both nodes get a Gap naming the room and their last
	// message; everyone gets one for the chat. Nobody was closed.
	for _, c := range []*wstest.Client{alice, bob, carol} {
		gaps := map[string]protocol.Gap{}
		want := 2
		if c == carol {
			want = 1
		}
		for len(gaps) < want {
			f := c.Next()
			if f.Type != protocol.TypeGap {
				t.Fatalf("unexpected %s before the gap notices", f.Raw)
			}
			var g protocol.Gap
			f.Decode(t, &g)
			gaps[f.Channel] = g
		}
		if g := gaps[protocol.ChannelChat]; g.After != chatLast.ID {
			t.Errorf("chat gap after %q, want %q", g.After, chatLast.ID)
		}
		if c != carol {
			if g := gaps[protocol.ChannelChatRoom]; g.Room != "#r" || g.After != last.ID {
				t.Errorf("room gap %+v, want #r after %q", g, last.ID)
			}
		}
	}

	bob.Say("#r", "after")
	alice.ExpectRoomMessage("#r", "bob", "after")
	bob.ExpectRoomMessage("#r", "bob", "after")
	carol.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "chat after")
	for _, c := range []*wstest.Client{alice, bob, carol} {
		c.Expect(protocol.ChannelChat, protocol.TypeNewMessageReceived)
	}
}
