package server_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// TestNodePublishingIsBounded: however many clients write, a node
// publishes at most NODE_PUBLISH_BYTES a second (bursts of twice that);
// past it, publishes are refused with rate_limited and nothing else breaks.
func TestNodePublishingIsBounded(t *testing.T) {
	n := startNode(t, map[string]string{
		"NODE_PUBLISH_BYTES": "20000", "MAX_FRAME_BYTES": "16384",
		"RATE_LIMIT": "1000", "RATE_BURST": "1000", "SEND_QUEUE_BYTES": "4194304",
	})
	writers := []*wstest.Client{wstest.Open(t, n.WS()+"?user=w1"), wstest.Open(t, n.WS()+"?user=w2")}
	writers[0].Join("#busy", "w1", "w1")
	writers[1].Join("#busy", "w2", "w1", "w2")
	writers[0].ExpectRoomUser(protocol.TypeJoinedRoom, "#busy", "w2")
	text := strings.Repeat("x", 4000)
	const each = 20 // 2 × 20 × 4 KB = 160 KB against a 40 KB burst
	for range each {
		for _, w := range writers {
			w.Say("#busy", text)
		}
	}
	// Each writer's replies come in order, so its refusals all precede
	// its "end"; what the other writer published may still be on its way.
	refused := 0
	heard := make([]int, len(writers)) // NewMessages each writer received
	for i, w := range writers {
		w.SendRef(protocol.ChannelChatRoom, "end", protocol.TypeGetMembers, protocol.GetMembers{Room: "#busy"})
		for {
			f := w.Next()
			if f.Ref == "end" {
				break
			}
			switch f.Type {
			case protocol.TypeNewMessage:
				heard[i]++
			case protocol.TypeError:
				var e protocol.Error
				f.Decode(t, &e)
				if e.Code != protocol.CodeRateLimited || !strings.Contains(e.Message, "NODE_PUBLISH_BYTES") {
					t.Fatalf("refused with %+v", e)
				}
				refused++
			}
		}
	}
	// Every message not refused was published and reaches both writers.
	published := 2*each - refused
	for i, w := range writers {
		for heard[i] < published {
			w.Expect(protocol.ChannelChatRoom, protocol.TypeNewMessage)
			heard[i]++
		}
		if heard[i] > published {
			t.Fatalf("writer %d heard %d messages, %d were published", i, heard[i], published)
		}
	}
	if published < 9 || published > 16 {
		t.Fatalf("%d messages of 4 KB published, want about the 40 KB burst (10) plus what a second added", published)
	}
}
