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
	published, refused := 0, 0
	for _, w := range writers {
		w.SendRef(protocol.ChannelChatRoom, "end", protocol.TypeGetMembers, protocol.GetMembers{Room: "#busy"})
		for {
			f := w.Next()
			if f.Ref == "end" {
				break
			}
			switch f.Type {
			case protocol.TypeNewMessage:
				published++
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
	// Each published message reaches both writers.
	if published%2 != 0 || published/2+refused != 2*each {
		t.Fatalf("%d deliveries and %d refusals for %d messages", published, refused, 2*each)
	}
	if got := published / 2; got < 9 || got > 16 {
		t.Fatalf("%d messages of 4 KB published, want about the 40 KB burst (10) plus what a second added", got)
	}
}
