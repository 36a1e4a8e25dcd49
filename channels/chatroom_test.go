package channels

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/rooms"
)

// flakyBroker is the real in-memory broker with one operation made to
// fail once, to check that a join failing halfway undoes what it did.
type flakyBroker struct {
	*broker.Memory
	mu       sync.Mutex
	failNext string // "members", "history"
}

func (f *flakyBroker) fail(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext == op {
		f.failNext = ""
		return true
	}
	return false
}

func (f *flakyBroker) Members(ctx context.Context, topic string, q broker.MembersQuery) (broker.MembersPage, error) {
	if f.fail("members") {
		return broker.MembersPage{}, broker.ErrUnavailable
	}
	return f.Memory.Members(ctx, topic, q)
}

func (f *flakyBroker) History(ctx context.Context, topic string, q broker.HistoryQuery) (broker.HistoryPage, error) {
	if f.fail("history") {
		return broker.HistoryPage{}, broker.ErrUnavailable
	}
	return f.Memory.History(ctx, topic, q)
}

// fakeClient records what a connection would be sent.
type fakeClient struct {
	id, user string
	mu       sync.Mutex
	frames   []protocol.Envelope
}

func (c *fakeClient) ID() string           { return c.id }
func (c *fakeClient) User() string         { return c.user }
func (c *fakeClient) MayJoin(string) bool  { return true }
func (c *fakeClient) Deliver(frame []byte) { c.record(frame) }
func (c *fakeClient) Queue(frame []byte)   { c.record(frame) }
func (c *fakeClient) Send(_ context.Context, frame []byte) error {
	c.record(frame)
	return nil
}

func (c *fakeClient) record(frame []byte) {
	env, err := protocol.Decode(frame)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.frames = append(c.frames, env)
	c.mu.Unlock()
}

// take returns and forgets the types received so far.
func (c *fakeClient) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var types []string
	for _, f := range c.frames {
		types = append(types, f.Message.Type)
	}
	c.frames = nil
	return types
}

func newRoomChannel(t *testing.T, limits Limits) (*ChatRoom, *flakyBroker) {
	t.Helper()
	fb := &flakyBroker{Memory: broker.NewMemory(broker.Options{HistorySize: 1000, HistoryTTL: time.Hour})}
	hub := rooms.New(fb, 1<<20, GapFrame, slog.New(slog.DiscardHandler))
	fb.Start(hub.Deliver)
	t.Cleanup(func() { _ = fb.Close() })
	return NewChatRoom(fb, hub, limits, slog.New(slog.DiscardHandler)), fb
}

var testLimits = Limits{MaxRooms: 10, MaxRoomName: 128, HistoryEnabled: true, HistoryPage: 5, HistoryMaxPage: 10, OpTimeout: 5 * time.Second, MemberPage: 100, MaxChatMessage: 4096, MaxRoomMessage: 16384, ChatPublish: true}

// message builds a client message as the server would have decoded it.
func message(typ string, contents any) protocol.Envelope {
	env, err := protocol.Decode(protocol.Encode(protocol.ChannelChatRoom, typ, contents))
	if err != nil {
		panic(err)
	}
	return env
}

func joinMsg(room, since string) protocol.Envelope {
	return message(protocol.TypeJoinRoom, protocol.JoinRoom{Room: room, Since: since})
}

func sendMsg(room, text string) protocol.Envelope {
	return message(protocol.TypeSendMessage, protocol.SendMessage{Room: room, Message: text})
}

// TestJoinFailingHalfwayLeavesNothingBehind: when a broker call fails in
// the middle of a join, the client is told, the room's view of presence
// stays consistent, and a retry gives a fully working membership (it used
// to leave the connection held, receiving nothing, for good).
func TestJoinFailingHalfwayLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	for _, op := range []string{"members", "history"} {
		t.Run(op, func(t *testing.T) {
			cr, fb := newRoomChannel(t, testLimits)
			alice, bob := &fakeClient{id: "a", user: "alice"}, &fakeClient{id: "b", user: "bob"}
			if err := cr.Handle(ctx, alice, joinMsg("#r", "")); err != nil {
				t.Fatal(err)
			}
			alice.take()

			fb.mu.Lock()
			fb.failNext = op
			fb.mu.Unlock()
			since := ""
			if op == "history" {
				since = "1-0"
			}
			err := cr.Handle(ctx, bob, joinMsg("#r", since))
			if pe, _ := ClientError(err); pe.Code != protocol.CodeUnavailable {
				t.Fatalf("failed join answered %v, want unavailable", err)
			}
			// Presence and its announcement are one step, so the room heard
			// bob come and, with the undo, go: never one without the other.
			if got := alice.take(); !slices.Equal(got, []string{"JoinedRoom", "LeftRoom"}) {
				t.Fatalf("alice heard %v of a join that failed, want JoinedRoom then LeftRoom", got)
			}
			if m, _ := fb.Members(ctx, RoomTopic("#r"), broker.MembersQuery{}); len(m.Users) != 1 {
				t.Fatalf("members after a failed join: %v", m)
			}

			if err := cr.Handle(ctx, bob, joinMsg("#r", "")); err != nil {
				t.Fatal(err)
			}
			if err := cr.Handle(ctx, alice, sendMsg("#r", "hello bob")); err != nil {
				t.Fatal(err)
			}
			if got := bob.take(); !slices.Equal(got, []string{"MemberList", "JoinedRoom", "NewMessage"}) {
				t.Fatalf("bob after retrying got %v", got)
			}
		})
	}
}

// TestResumeReplaysAtMostOnePage: a client that missed more than
// HISTORY_MAX_PAGE messages gets the newest page and recovered false.
func TestResumeReplaysAtMostOnePage(t *testing.T) {
	ctx := context.Background()
	cr, _ := newRoomChannel(t, testLimits)
	writer := &fakeClient{id: "w", user: "writer"}
	if err := cr.Handle(ctx, writer, joinMsg("#r", "")); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if err := cr.Handle(ctx, writer, sendMsg("#r", strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	var first protocol.RoomMessage
	writer.mu.Lock()
	_ = protocol.DecodeContents(writer.frames[2].Message, &first)
	writer.mu.Unlock()

	late := &fakeClient{id: "l", user: "late"}
	if err := cr.Handle(ctx, late, joinMsg("#r", first.ID)); err != nil {
		t.Fatal(err)
	}
	late.mu.Lock()
	defer late.mu.Unlock()
	var joined protocol.JoinedRoom
	_ = protocol.DecodeContents(late.frames[1].Message, &joined)
	if joined.Recovered == nil || *joined.Recovered {
		t.Fatalf("recovered = %v, want false", joined.Recovered)
	}
	replayed := late.frames[2:]
	if len(replayed) != testLimits.HistoryMaxPage {
		t.Fatalf("replayed %d messages, want %d", len(replayed), testLimits.HistoryMaxPage)
	}
	var last protocol.RoomMessage
	_ = protocol.DecodeContents(replayed[len(replayed)-1].Message, &last)
	if last.Message != "29" {
		t.Fatalf("replay ends with %q, want the newest message", last.Message)
	}
}
