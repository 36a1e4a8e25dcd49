package protocol_test

import (
	"testing"

	"github.com/switchboard/switchboard/protocol"
)

// BenchmarkDecode: one client frame, as the worker reads it.
func BenchmarkDecode(b *testing.B) {
	frame := []byte(`{"channel":"chat-room","ref":"s-17","message":{"type":"SendMessage","contents":{"room":"#haskell","message":"Monad monoid category whatever"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublicationFrame: what each node does once per message it
// receives: read the framing and render the client frame with its id.
func BenchmarkPublicationFrame(b *testing.B) {
	data := protocol.NewPublication(protocol.ChannelChatRoom, protocol.TypeNewMessage, protocol.RoomMessage{
		Room: "#haskell", User: "b5eda4bd-a8f2-4d6f-81c5-3da4c4333679", Message: "Monad monoid category whatever", PostedAt: "2022-09-09T18:12:45.904815Z",
	}).Marshal()
	b.ReportAllocs()
	for b.Loop() {
		p, err := protocol.ParsePublication(data, "1662747165904-0")
		if err != nil {
			b.Fatal(err)
		}
		_ = p.Frame()
	}
}
