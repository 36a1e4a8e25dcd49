package broker

import "testing"

// BenchmarkDecodePayload: reading one pub/sub payload into a Message, once
// per message per node.
func BenchmarkDecodePayload(b *testing.B) {
	payload := "1662747165904-0\n\nchat-room\nNewMessage\n\n" + `{"room":"#haskell","user":"alice","message":"Monad monoid category whatever","postedAt":"2022-09-09T18:12:45.904815Z"}`
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := decodePayload("room:#haskell", payload); !ok {
			b.Fatal("not decoded")
		}
	}
}
