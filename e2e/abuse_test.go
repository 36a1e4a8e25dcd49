package e2e

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// TestChatFloodIsBoundedByBytes: one client flooding the global chat with
// the largest messages it may send gets through no more than its byte
// budget (chat counting CHAT_COST times), is answered rate_limited for
// the rest, and a bystander on the other node is served throughout.
func TestChatFloodIsBoundedByBytes(t *testing.T) {
	d, _ := singleRedis(t)
	// The frame rate is generous so that bytes are what binds.
	ns := d.nodes(t, 2, map[string]string{"RATE_LIMIT": "1000", "RATE_BURST": "1000", "RATE_LIMIT_STRIKES": "1000000"})
	flooder := wstest.Open(t, ns[0].WS())
	bystander := wstest.Open(t, ns[1].WS())

	// Too long for chat (MAX_CHAT_MESSAGE 4096), though far below a frame.
	flooder.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, strings.Repeat("x", 4097))
	if e := flooder.ExpectError(protocol.ChannelChat, protocol.CodeInvalidContents); !strings.Contains(e.Message, "4096") {
		t.Errorf("oversized chat message refused with %q", e.Message)
	}

	const sent = 200
	text := strings.Repeat("y", 4000)
	for range sent {
		flooder.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, text)
	}
	flooder.SendRef(protocol.ChannelChat, "end", protocol.TypeGetHistory, protocol.GetHistory{Limit: 1})
	limited := 0
	for {
		f := flooder.Next()
		if f.Ref == "end" {
			break
		}
		if f.Type == protocol.TypeError {
			limited++
		}
	}
	// At most the burst and what the rate added meanwhile, at 4 × 4 KiB
	// each: 256 KiB + 64 KiB/s for the few seconds the burst takes.
	passed := sent - limited
	if passed < 10 || passed > 40 {
		t.Fatalf("%d of %d chat messages of 4 KB passed the byte budget, want about 16 to 40", passed, sent)
	}
	got := 0
	for got < passed {
		if f := bystander.Next(); f.Type == protocol.TypeNewMessageReceived {
			got++
		}
	}
	bystander.Barrier()
	bystander.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "still here")
	bystander.Expect(protocol.ChannelChat, protocol.TypeNewMessageReceived)
}

// TestPingFloodCloses: pings count against the budget; a client that
// keeps pinging past it gets no pongs and is closed with 1008.
func TestPingFloodCloses(t *testing.T) {
	d, _ := singleRedis(t)
	n := d.nodes(t, 1, map[string]string{"RATE_LIMIT": "10", "RATE_BURST": "10", "RATE_LIMIT_STRIKES": "20"})[0]
	c := wstest.Open(t, n.WS())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { _ = c.Conn.Ping(ctx) })
	}
	code, reason := c.ExpectClose()
	cancel()
	wg.Wait()
	if code != websocket.StatusPolicyViolation || reason != "rate limit exceeded" {
		t.Fatalf("closed with %d %q, want 1008 rate limit exceeded", code, reason)
	}
}

// TestChatPublishNone: a deployment may keep the global chat for the
// server alone.
func TestChatPublishNone(t *testing.T) {
	d, _ := singleRedis(t)
	n := d.nodes(t, 1, map[string]string{"CHAT_PUBLISH": "none"})[0]
	c := wstest.Open(t, n.WS())
	c.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "hello?")
	c.ExpectError(protocol.ChannelChat, protocol.CodeForbidden)
	c.Send(protocol.ChannelChat, protocol.TypeGetHistory, nil) // reading is still allowed
	c.Expect(protocol.ChannelChat, protocol.TypeHistory)
}

// TestRedisStallDoesNotCountAgainstTheRateLimit: while Redis is stalled,
// a client's frames queue up behind the one waiting for Redis (in the
// node, then in TCP). When Redis answers again they are read in one
// burst; a client that stayed under its rate must not be closed for it.
func TestRedisStallDoesNotCountAgainstTheRateLimit(t *testing.T) {
	d, srv := singleRedis(t)
	n := d.nodes(t, 1, map[string]string{
		"RATE_LIMIT": "10", "RATE_BURST": "10", "RATE_LIMIT_STRIKES": "3", "OP_TIMEOUT": "20s", "WS_TIMEOUT": "60s",
	})[0]
	c := wstest.Open(t, n.WS()+"?user=steady")
	c.Join("#stall", "steady", "steady")

	pid := srv.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	defer resume()

	// 8 frames a second for 5 s: under the limit all along, but 40 frames,
	// more than the node's 16-frame inbox and the burst of 10 together.
	const frames = 40
	write := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		frame := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeSendMessage, protocol.SendMessage{Room: "#stall", Message: "m"})
		return c.Conn.Write(ctx, websocket.MessageText, frame)
	}
	tick := time.NewTicker(125 * time.Millisecond)
	for i := range frames {
		<-tick.C
		if err := write(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	tick.Stop()
	resume()

	for got := 0; got < frames; {
		f, ok := c.NextOrClose()
		if !ok {
			code, reason := c.ExpectClose()
			t.Fatalf("closed after %d of %d messages: %d %q", got, frames, code, reason)
		}
		switch {
		case f.Type == protocol.TypeNewMessage:
			got++
		case f.Type == protocol.TypeError:
			t.Fatalf("message %d refused: %s", got, f.Contents)
		}
	}
}
