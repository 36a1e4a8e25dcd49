package rooms

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// sink is a member that keeps only the last frame, like a queue that is
// drained at once.
type sink struct {
	id   string
	last []byte
}

func (s *sink) ID() string           { return s.id }
func (s *sink) User() string         { return s.id }
func (s *sink) Deliver(frame []byte) { s.last = frame }
func (s *sink) Queue(frame []byte)   { s.last = frame }

// BenchmarkHubDeliver: local fan-out of one broker message to N members.
// The frame is rendered once per message, whatever N: allocations per
// message must not grow with the room.
func BenchmarkHubDeliver(b *testing.B) {
	data := protocol.NewPublication(protocol.ChannelChatRoom, protocol.TypeNewMessage, protocol.RoomMessage{
		Room: "#r", User: "u", Message: "hello, room", PostedAt: "2022-09-09T18:12:45.904815Z",
	}).Marshal()
	for _, n := range []int{1, 100, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			h := New(&countingBroker{subscribed: map[string]bool{}, pending: map[string]bool{}}, 1<<20, nil, slog.New(slog.DiscardHandler))
			for i := range n {
				if _, err := h.Join(ctx, "room:#r", &sink{id: fmt.Sprint(i)}, false); err != nil {
					b.Fatal(err)
				}
			}
			msg := broker.Message{Topic: "room:#r", ID: "1662747165904-0", Data: data}
			b.ReportAllocs()
			for b.Loop() {
				h.Deliver(msg)
			}
		})
	}
}
