package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// TestWritersCannotOverflowRedisPubSubBuffers: ten clients write the
// largest room messages as fast as they may, against a Redis whose pub/sub
// output buffer limit is small. The node bounds what it publishes
// (NODE_PUBLISH_BYTES) and drains its subscription on a goroutine that
// never delivers, so Redis never cuts a node's subscription: the readers
// on the other node get every message that was published, in order, with
// no Gap and no close, and Redis counts no output-buffer disconnection.
func TestWritersCannotOverflowRedisPubSubBuffers(t *testing.T) {
	srv := testredis.Start(t, "--client-output-buffer-limit", "pubsub 2mb 1mb 5")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	d := deployment{name: "single", env: map[string]string{"REDIS_URL": srv.URL()}, redis: rc}
	ns := d.nodes(t, 2, map[string]string{
		"NODE_PUBLISH_BYTES": "262144", // 256 KiB/s per node, bursts of 512 KiB
		"RATE_LIMIT":         "1000", "RATE_BURST": "1000",
		"RATE_BYTES": "16777216", "RATE_BYTES_BURST": "16777216",
	})
	const room = "#firehose"
	readers := make([]*wstest.Client, 3)
	for i := range readers {
		readers[i] = wstest.Open(t, ns[1].WS())
		readers[i].Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room})
		readers[i].Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
		readers[i].Expect(protocol.ChannelChatRoom, protocol.TypeJoinedRoom)
	}
	writers := make([]*wstest.Client, 10)
	for i := range writers {
		writers[i] = wstest.Open(t, ns[0].WS())
		writers[i].Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room})
		writers[i].Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
		writers[i].Expect(protocol.ChannelChatRoom, protocol.TypeJoinedRoom)
	}

	text := strings.Repeat("z", 16000)
	frame := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeSendMessage, protocol.SendMessage{Room: room, Message: text})
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for _, w := range writers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := w.Conn.Write(ctx, websocket.MessageText, frame)
				cancel()
				if err != nil {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()

	// What the writers' node published is what each of them saw come back
	// (they are members too); the readers must have all of it.
	var published int
	for _, w := range writers[:1] {
		w.SendRef(protocol.ChannelChatRoom, "end", protocol.TypeGetMembers, protocol.GetMembers{Room: room})
		for {
			f := w.Next()
			if f.Ref == "end" {
				break
			}
			if f.Type == protocol.TypeNewMessage {
				published++
			}
		}
	}
	if published == 0 {
		t.Fatal("nothing was published")
	}
	for _, r := range readers {
		for got := 0; got < published; {
			f, ok := r.NextOrClose()
			if !ok {
				code, reason := r.ExpectClose()
				t.Fatalf("a reader was closed after %d of %d messages: %d %q", got, published, code, reason)
			}
			switch f.Type {
			case protocol.TypeNewMessage:
				got++
			case protocol.TypeGap:
				t.Fatalf("a reader got %s: the node's subscription was cut", f.Raw)
			}
		}
	}
	stats, err := rc.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stats, "client_output_buffer_limit_disconnections:") &&
		!strings.Contains(stats, "client_output_buffer_limit_disconnections:0") {
		t.Errorf("Redis disconnected a client for its output buffer:\n%s", stats)
	}
	t.Logf("%d messages of 16 KB published in 3 s by 10 writers, all delivered", published)
}
