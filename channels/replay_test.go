package channels

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/protocol"
)

// stalledClient is a connection that stops reading after a few frames,
// until its gate opens: Send waits, as it does for a full queue.
type stalledClient struct {
	fakeClient
	free int           // frames taken before stalling
	gate chan struct{} // closed to resume reading
}

func (c *stalledClient) Send(ctx context.Context, frame []byte) error {
	c.mu.Lock()
	n := len(c.frames)
	c.mu.Unlock()
	if n >= c.free {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.fakeClient.Send(ctx, frame)
}

// texts lists the NewMessage texts received, in order.
func (c *fakeClient) texts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.frames {
		if f.Message.Type != protocol.TypeNewMessage {
			continue
		}
		var m protocol.RoomMessage
		_ = protocol.DecodeContents(f.Message, &m)
		out = append(out, m.Message)
	}
	return out
}

// TestResumesStreamWithinTheReplayBudget resumes many clients that stop
// reading from the start of a room far larger than the node's replay
// budget: together they never hold more than the budget, and once they
// read again each gets every message after its resume point, in order,
// exactly once, with live messages sent during the replay following on.
func TestResumesStreamWithinTheReplayBudget(t *testing.T) {
	ctx := context.Background()
	limits := testLimits
	limits.HistoryMaxPage = 1000
	limits.ReplayBytes = 1 << 20
	limits.ReplayPageBytes = 2000
	limits.ReplayMemory = 5000
	cr, _ := newRoomChannel(t, limits)
	writer := &fakeClient{id: "w", user: "writer"}
	if err := cr.Handle(ctx, writer, joinMsg("#big", "")); err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("p", 300)
	const stored, live, clients = 60, 20, 20
	var ids []string
	for i := range stored {
		if err := cr.Handle(ctx, writer, message(protocol.TypeSendMessage, protocol.SendMessage{Room: "#big", Message: fmt.Sprintf("%03d%s", i, pad), Ack: true})); err != nil {
			t.Fatal(err)
		}
	}
	writer.mu.Lock()
	for _, f := range writer.frames {
		if f.Message.Type == protocol.TypeSent {
			var s protocol.Sent
			_ = protocol.DecodeContents(f.Message, &s)
			ids = append(ids, s.ID)
		}
	}
	writer.mu.Unlock()

	gate := make(chan struct{})
	readers := make([]*stalledClient, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range readers {
		readers[i] = &stalledClient{fakeClient: fakeClient{id: "r" + strconv.Itoa(i), user: "reader" + strconv.Itoa(i)}, free: 4, gate: gate}
		wg.Go(func() { errs <- cr.Handle(ctx, readers[i], joinMsg("#big", ids[0])) })
	}
	budget := cr.ReplayBudget()
	waitFor(t, func() bool { return waiting(budget) > 0 }) // the budget is exhausted
	for i := range live {
		if err := cr.Handle(ctx, writer, sendMsg("#big", fmt.Sprintf("%03d%s", stored+i, pad))); err != nil {
			t.Fatal(err)
		}
		if used := budget.InUse(); used > limits.ReplayMemory {
			t.Fatalf("replays hold %d bytes, over the %d budget", used, limits.ReplayMemory)
		}
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if budget.InUse() != 0 {
		t.Errorf("%d bytes still taken after every replay ended", budget.InUse())
	}
	var want []string
	for i := 1; i < stored+live; i++ {
		want = append(want, fmt.Sprintf("%03d%s", i, pad))
	}
	for _, r := range readers {
		got := r.texts()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s got %d messages, want %d (1..%d in order, once each)", r.id, len(got), len(want), stored+live-1)
		}
		var joined protocol.JoinedRoom
		r.mu.Lock()
		_ = protocol.DecodeContents(r.frames[1].Message, &joined)
		r.mu.Unlock()
		if joined.Recovered == nil || !*joined.Recovered {
			t.Errorf("%s: recovered = %v, want true", r.id, joined.Recovered)
		}
	}
}
