package client

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/protocol"
)

// fastBackoff keeps reconnect tests quick.
var fastBackoff = Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}

// holder records a Reconnecting client's state changes and can hold the
// client offline: while held, its first StateReconnecting callback blocks
// until release, so a test can act while the client is certainly away.
type holder struct {
	mu      sync.Mutex
	changes []StateChange
	offline chan StateChange
	release chan struct{}
	held    atomic.Bool
	changed chan struct{}
	once    sync.Once
}

// unblock lets a held client reconnect; calling it again does nothing.
func (h *holder) unblock() { h.once.Do(func() { close(h.release) }) }

func newHolder(hold bool) *holder {
	h := &holder{offline: make(chan StateChange, 1), release: make(chan struct{}), changed: make(chan struct{}, 100)}
	h.held.Store(hold)
	return h
}

func (h *holder) onChange(s StateChange) {
	h.mu.Lock()
	h.changes = append(h.changes, s)
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
	if s.State == StateReconnecting && h.held.CompareAndSwap(true, false) {
		h.offline <- s
		<-h.release
	}
}

func (h *holder) states() []State {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []State
	for _, c := range h.changes {
		out = append(out, c.State)
	}
	return out
}

func (h *holder) waitOffline(t *testing.T) StateChange {
	t.Helper()
	select {
	case s := <-h.offline:
		return s
	case <-time.After(testTimeout):
		t.Fatal("client did not go offline")
	}
	return StateChange{}
}

// reconnect starts a Reconnecting client closed when the test ends.
func reconnect(t *testing.T, h *holder, opts Options, urls ...string) *Reconnecting {
	t.Helper()
	r := Reconnect(ReconnectOptions{Options: opts, Backoff: fastBackoff, OnStateChange: h.onChange}, urls...)
	t.Cleanup(func() { _ = r.Close() })
	t.Cleanup(h.unblock) // runs first: a failed test must not leave the client held
	if _, err := r.WaitOnline(testCtx(t)); err != nil {
		t.Fatalf("WaitOnline: %v", err)
	}
	return r
}

// dropSocket breaks the client's current connection without a close
// handshake, as a network failure would.
func dropSocket(t *testing.T, r *Reconnecting) {
	t.Helper()
	c, err := r.WaitOnline(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.ws.CloseNow()
}

// queued waits until the connection's queue holds n frames.
func queued(t *testing.T, c *Conn, n int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		c.mu.Lock()
		l := len(c.queue)
		c.mu.Unlock()
		if l >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d frames, want %d", l, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// say sends text to room from c, failing the test on error.
func say(t *testing.T, c *Conn, room, text string) {
	t.Helper()
	if _, err := c.SendMessage(testCtx(t), room, text); err != nil {
		t.Fatalf("SendMessage %q: %v", text, err)
	}
}

// TestReconnectResume: two nodes on Redis. Alice's socket drops (with a
// message still unread, and one she never received) and, while she is
// away, bob keeps talking; after reconnecting she gets her re-join with
// recovered true, then every message once, in order.
func TestReconnectResume(t *testing.T) {
	cases := []struct {
		name string
		// breakConn ends alice's connection; it returns the URLs alice
		// dials from then on are still fine.
		breakConn func(t *testing.T, r *Reconnecting, nodes []*testnode.Node)
	}{
		{"socket dropped", func(t *testing.T, r *Reconnecting, _ []*testnode.Node) { dropSocket(t, r) }},
		{"node stopped", func(t *testing.T, _ *Reconnecting, nodes []*testnode.Node) { nodes[0].Stop(t) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nodes := redisNodes(t, 2)
			h := newHolder(true)
			alice := reconnect(t, h, Options{}, nodes[0].WS()+"?user=alice", nodes[1].WS()+"?user=alice")
			bob := dial(t, nodes[1], "bob")
			ctx := testCtx(t)
			const room = "#resume"
			if _, _, err := alice.Join(ctx, room, JoinOptions{}); err != nil {
				t.Fatalf("alice Join: %v", err)
			}
			if _, _, err := bob.Join(ctx, room, JoinOptions{}); err != nil {
				t.Fatalf("bob Join: %v", err)
			}
			say(t, bob, room, "m1")
			if m := nextMessage(t, alice); m.Message != "m1" {
				t.Fatalf("alice got %+v", m)
			}
			// m2 reaches alice's connection but she has not read it yet.
			c, _ := alice.WaitOnline(ctx)
			say(t, bob, room, "m2")
			queued(t, c, 1)
			tc.breakConn(t, alice, nodes)
			offline := h.waitOffline(t)
			if offline.Err == nil || offline.Delay > fastBackoff.Max {
				t.Errorf("reconnecting state %+v: want the cause and a delay within %v", offline, fastBackoff.Max)
			}
			say(t, bob, room, "m3")
			say(t, bob, room, "m4")
			h.unblock()

			var texts []string
			var rejoined *protocol.JoinedRoom
			for len(texts) < 3 {
				f, err := alice.Next(ctx)
				if err != nil {
					t.Fatalf("alice Next: %v (got %v)", err, texts)
				}
				switch f.Type {
				case protocol.TypeNewMessage:
					var m protocol.RoomMessage
					_ = f.Decode(&m)
					texts = append(texts, m.Message)
				case protocol.TypeJoinedRoom:
					var j protocol.JoinedRoom
					_ = f.Decode(&j)
					if j.User == "alice" {
						rejoined = &j
					}
				}
			}
			if !slices.Equal(texts, []string{"m2", "m3", "m4"}) {
				t.Fatalf("alice got %v, want m2 m3 m4", texts)
			}
			if rejoined == nil || rejoined.Recovered == nil || !*rejoined.Recovered {
				t.Fatalf("alice's re-join JoinedRoom = %+v, want recovered true", rejoined)
			}
			// Nothing more: no duplicate arrives after a fresh message.
			say(t, bob, room, "m5")
			if m := nextMessage(t, alice); m.Message != "m5" {
				t.Fatalf("after the resume alice got %+v, want m5", m)
			}
			if got := h.states(); !slices.Equal(got[:4], []State{StateConnecting, StateOnline, StateReconnecting, StateConnecting}) || got[len(got)-1] != StateOnline {
				t.Fatalf("states %v", got)
			}
		})
	}
}

// TestReconnectResumeBeforeAnyMessage: a room joined without since and
// with no message seen yet still resumes from the join.
func TestReconnectResumeBeforeAnyMessage(t *testing.T) {
	n := memoryNode(t, nil)
	h := newHolder(true)
	alice := reconnect(t, h, Options{}, n.WS()+"?user=alice")
	bob := dial(t, n, "bob")
	ctx := testCtx(t)
	say := func(text string) { t.Helper(); say(t, bob, "#quiet", text) }
	if _, _, err := alice.Join(ctx, "#quiet", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bob.Join(ctx, "#quiet", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	dropSocket(t, alice)
	h.waitOffline(t)
	say("while away")
	h.unblock()
	if m := nextMessage(t, alice); m.Message != "while away" {
		t.Fatalf("alice got %+v", m)
	}
}

// TestReconnectTickets: with GetToken every attempt gets a fresh ticket;
// with one fixed ticket the reconnect is refused (already used, 1008) and
// the client stops for good instead of retrying.
func TestReconnectTickets(t *testing.T) {
	n := authNode(t)
	t.Run("fresh ticket per attempt", func(t *testing.T) {
		var calls atomic.Int32
		getToken := func(context.Context) (string, error) { calls.Add(1); return mintTicket(t, n, "alice"), nil }
		r := reconnect(t, newHolder(false), Options{GetToken: getToken}, n.WS())
		dropSocket(t, r)
		deadline := time.Now().Add(testTimeout)
		for calls.Load() < 2 {
			if time.Now().After(deadline) {
				t.Fatal("no second ticket asked for")
			}
			time.Sleep(5 * time.Millisecond)
		}
		c, err := r.WaitOnline(testCtx(t))
		if err != nil || c.User() != "alice" {
			t.Fatalf("WaitOnline after reconnect: %v", err)
		}
	})
	t.Run("one ticket", func(t *testing.T) {
		h := newHolder(false)
		r := reconnect(t, h, Options{Token: mintTicket(t, n, "alice")}, n.WS())
		dropSocket(t, r)
		ctx := testCtx(t)
		for r.State().State != StateClosed {
			select {
			case <-h.changed:
			case <-ctx.Done():
				t.Fatalf("still %v", r.State())
			}
		}
		err := r.State().Err
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %v, want the server's 1008", err)
		}
		if _, err := r.Next(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("Next after refusal: %v", err)
		}
		if _, err := r.WaitOnline(ctx); err == nil {
			t.Fatal("WaitOnline succeeded after refusal")
		}
		// One retry (refused), then nothing: closed for good.
		time.Sleep(3 * fastBackoff.Max)
		states := h.states()
		connecting := 0
		for _, s := range states {
			if s == StateConnecting {
				connecting++
			}
		}
		if connecting != 2 || states[len(states)-1] != StateClosed {
			t.Fatalf("states %v, want two attempts and closed last", states)
		}
	})
}

// TestReconnectClose: Close ends Next and every method with ErrClosed,
// and no reconnect follows.
func TestReconnectClose(t *testing.T) {
	n := memoryNode(t, nil)
	h := newHolder(false)
	r := reconnect(t, h, Options{}, n.WS())
	ctx := testCtx(t)
	if _, _, err := r.Join(ctx, "#x", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	if _, err := r.SendMessage(ctx, "#x", "hi"); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendMessage after Close: %v", err)
	}
	states := h.states()
	if got := states[len(states)-1]; got != StateClosed || slices.Contains(states, StateReconnecting) {
		t.Fatalf("states %v", states)
	}
}

// TestDuplicate: room messages at or before the last id returned are
// dropped; other frames pass.
func TestDuplicate(t *testing.T) {
	r := &Reconnecting{last: map[string]string{}}
	msg := func(room, id string) Frame {
		return Frame{Channel: protocol.ChannelChatRoom, Type: protocol.TypeNewMessage,
			Contents: []byte(`{"id":"` + id + `","room":"` + room + `"}`)}
	}
	steps := []struct {
		f    Frame
		want bool
	}{
		{msg("a", "9-0"), false},
		{msg("a", "10-0"), false},
		{msg("a", "9-0"), true},
		{msg("a", "10-0"), true},
		{msg("b", "1-0"), false},
		{msg("a", "10-1"), false},
		{Frame{Channel: protocol.ChannelChat, Type: protocol.TypeNewMessageReceived, Contents: []byte(`{"id":"1-0"}`)}, false},
		{msg("a", ""), false},
	}
	for i, s := range steps {
		if got := r.duplicate(s.f); got != s.want {
			t.Fatalf("step %d %s: duplicate = %v, want %v", i, s.f.Contents, got, s.want)
		}
	}
}
