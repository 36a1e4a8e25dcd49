package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// countingBroker records subscription calls; failNext makes the next
// Subscribe fail, leaving the topic wanted as the real brokers do (they
// subscribe it once Redis is back, unless Unsubscribe gives it up). The registry's only dependency is this small interface,
// so its bookkeeping is tested here against a recorder; the real brokers
// are exercised end to end in package e2e.
type countingBroker struct {
	mu          sync.Mutex
	subscribed  map[string]bool // confirmed
	pending     map[string]bool // wanted after a failed Subscribe
	subscribes  int
	unsubscribe int
	failNext    bool
}

func (b *countingBroker) Subscribe(_ context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subscribed[topic] {
		panic("double subscribe of " + topic)
	}
	b.subscribes++
	if b.failNext {
		b.failNext = false
		b.pending[topic] = true
		return errors.New("redis down")
	}
	delete(b.pending, topic)
	b.subscribed[topic] = true
	return nil
}

func (b *countingBroker) Unsubscribe(_ context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.subscribed[topic] && !b.pending[topic] {
		panic("unsubscribe of " + topic + " that was never subscribed")
	}
	delete(b.subscribed, topic)
	delete(b.pending, topic)
	b.unsubscribe++
	return nil
}

func (b *countingBroker) isSubscribed(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subscribed[topic]
}

// recorder is a member that records the frames delivered to it, and
// how many came through Queue rather than Deliver.
type recorder struct {
	id     string
	user   string // "user-" + id when empty
	mu     sync.Mutex
	frames [][]byte
	queued int
}

func (m *recorder) ID() string { return m.id }
func (m *recorder) User() string {
	if m.user != "" {
		return m.user
	}
	return "user-" + m.id
}
func (m *recorder) Deliver(f []byte) {
	m.mu.Lock()
	m.frames = append(m.frames, f)
	m.mu.Unlock()
}
func (m *recorder) Queue(f []byte) {
	m.mu.Lock()
	m.frames = append(m.frames, f)
	m.queued++
	m.mu.Unlock()
}
func (m *recorder) texts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, f := range m.frames {
		out = append(out, string(f))
	}
	return out
}

func newHub(holdBytes int) (*Hub, *countingBroker) {
	b := &countingBroker{subscribed: make(map[string]bool), pending: make(map[string]bool)}
	return New(b, holdBytes, func(topic, after string) []byte { return []byte("gap " + topic + " after " + after) }, slog.New(slog.DiscardHandler)), b
}

var ctx = context.Background()

func TestReferenceCounting(t *testing.T) {
	r, b := newHub(1 << 20)
	a, c := &recorder{id: "a"}, &recorder{id: "c"}
	steps := []struct {
		do         func() (bool, error)
		want       bool
		subscribed bool
		calls      [2]int // subscribes, unsubscribes so far
	}{
		{func() (bool, error) { return r.Join(ctx, "room:x", a, false) }, true, true, [2]int{1, 0}},
		{func() (bool, error) { return r.Join(ctx, "room:x", a, false) }, false, true, [2]int{1, 0}}, // already a member
		{func() (bool, error) { return r.Join(ctx, "room:x", c, false) }, true, true, [2]int{1, 0}},  // second member, same subscription
		{func() (bool, error) { return r.Leave(ctx, "room:x", "a") }, true, true, [2]int{1, 0}},
		{func() (bool, error) { return r.Leave(ctx, "room:x", "a") }, false, true, [2]int{1, 0}}, // not a member any more
		{func() (bool, error) { return r.Leave(ctx, "room:x", "c") }, true, false, [2]int{1, 1}}, // last one out
		{func() (bool, error) { return r.Join(ctx, "room:x", a, false) }, true, true, [2]int{2, 1}},
	}
	for i, s := range steps {
		got, err := s.do()
		if err != nil || got != s.want {
			t.Fatalf("step %d: %v, %v; want %v", i, got, err, s.want)
		}
		if b.isSubscribed("room:x") != s.subscribed || r.Subscribed("room:x") != s.subscribed {
			t.Fatalf("step %d: subscribed = %v, want %v", i, b.isSubscribed("room:x"), s.subscribed)
		}
		if calls := [2]int{b.subscribes, b.unsubscribe}; calls != s.calls {
			t.Fatalf("step %d: calls %v, want %v", i, calls, s.calls)
		}
	}
}

func TestFailedSubscribeLeavesNothingBehind(t *testing.T) {
	r, b := newHub(1 << 20)
	b.failNext = true
	if _, err := r.Join(ctx, "room:x", &recorder{id: "a"}, false); err == nil {
		t.Fatal("join succeeded while the broker failed")
	}
	// The broker keeps wanting a topic whose Subscribe failed until told
	// otherwise, so the registry must give it up.
	if b.unsubscribe != 1 || b.pending["room:x"] {
		t.Fatalf("%d unsubscribes after a failed join, want 1", b.unsubscribe)
	}
	if r.Subscriptions() != 0 || r.Count("room:x") != 0 {
		t.Fatalf("a failed join left %d topics, %d members", r.Subscriptions(), r.Count("room:x"))
	}
	if ok, err := r.Join(ctx, "room:x", &recorder{id: "a"}, false); !ok || err != nil {
		t.Fatalf("retry: %v, %v", ok, err)
	}
}

func TestPinnedTopicsStaySubscribed(t *testing.T) {
	r, b := newHub(1 << 20)
	b.failNext = true // Redis is down at start: the pin must hold anyway
	if err := r.Pin(ctx, "chat"); err == nil {
		t.Fatal("pin reported no error while the broker failed")
	}
	_, _ = r.Join(ctx, "chat", &recorder{id: "a"}, false)
	_, _ = r.Leave(ctx, "chat", "a")
	if !b.isSubscribed("chat") {
		t.Fatal("the last member's leave unsubscribed a pinned topic")
	}
}

// TestConcurrentJoinsAndLeaves hammers one topic from many goroutines: the
// broker must never see a double subscribe or an unsubscribe without a
// subscription (the recorder panics), and at the end the node is
// subscribed exactly when members remain.
func TestConcurrentJoinsAndLeaves(t *testing.T) {
	r, b := newHub(1 << 20)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			m := &recorder{id: fmt.Sprint("m", g)}
			for i := range 200 {
				if _, err := r.Join(ctx, "room:hot", m, i%2 == 0); err != nil {
					t.Error(err)
					return
				}
				if err := drain(r, "room:hot", m, ""); err != nil {
					t.Error(err)
					return
				}
				if _, err := r.Leave(ctx, "room:hot", m.id); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.isSubscribed("room:hot") || r.Subscriptions() != 0 {
		t.Fatalf("no members left but subscribed=%v topics=%d", b.isSubscribed("room:hot"), r.Subscriptions())
	}
	if b.subscribes != b.unsubscribe {
		t.Fatalf("%d subscribes, %d unsubscribes", b.subscribes, b.unsubscribe)
	}
}

func frame(text string) []byte {
	return protocol.NewPublication("chat-room", "NewMessage", protocol.RoomMessage{Room: "#r", User: "u", Message: text}).Marshal()
}

func msg(id, text string) broker.Message {
	return broker.Message{Topic: "room:#r", ID: id, Data: frame(text)}
}

// announcement is a presence publication about user.
func announcement(typ, user string) broker.Message {
	p := protocol.NewPublication("chat-room", typ, protocol.RoomUser{Room: "#r", User: user})
	p.About = user
	return broker.Message{Topic: "room:#r", Data: p.Marshal()}
}

func textOf(t *testing.T, raw string) string {
	t.Helper()
	env, err := protocol.Decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var m protocol.RoomMessage
	if err := protocol.DecodeContents(env.Message, &m); err != nil {
		t.Fatal(err)
	}
	return m.ID + ":" + m.Message
}

// TestDeliverEncodesOnce: every member gets the very same bytes, stamped
// with the id once per node, and Except skips one member.
func TestDeliverEncodesOnce(t *testing.T) {
	r, _ := newHub(1 << 20)
	ms := []*recorder{{id: "a"}, {id: "b"}, {id: "c"}}
	for _, m := range ms {
		_, _ = r.Join(ctx, "room:#r", m, false)
	}
	m := msg("5-0", "hi")
	m.Except = "c"
	r.Deliver(m)
	if len(ms[0].frames) != 1 || len(ms[1].frames) != 1 || len(ms[2].frames) != 0 {
		t.Fatalf("deliveries %d %d %d, want 1 1 0", len(ms[0].frames), len(ms[1].frames), len(ms[2].frames))
	}
	if &ms[0].frames[0][0] != &ms[1].frames[0][0] {
		t.Error("members got separately encoded copies of one broadcast")
	}
	if got := textOf(t, string(ms[0].frames[0])); got != "5-0:hi" {
		t.Errorf("delivered %s", got)
	}
}

// TestLargeTopicsQueue: a topic of up to directFanout local members is
// written by the delivering goroutine (Deliver); a larger one queues
// (Queue), so that its members' writers share the work.
func TestLargeTopicsQueue(t *testing.T) {
	for _, tc := range []struct {
		members    int
		wantQueued bool
	}{
		{1, false},
		{directFanout, false},
		{directFanout + 1, true},
	} {
		r, _ := newHub(1 << 20)
		var ms []*recorder
		for i := range tc.members {
			m := &recorder{id: fmt.Sprint(i)}
			ms = append(ms, m)
			_, _ = r.Join(ctx, "room:#r", m, false)
		}
		r.Deliver(msg("1-0", "hi"))
		for _, m := range ms {
			if len(m.frames) != 1 || (m.queued == 1) != tc.wantQueued {
				t.Fatalf("%d members: member %s got %d frames, %d queued; want 1, queued %v",
					tc.members, m.id, len(m.frames), m.queued, tc.wantQueued)
			}
		}
	}
}

// drain ends a hold the way the chat-room join does: it sends what Drain
// hands back until the member is live.
func drain(r *Hub, topic string, m *recorder, after string) error {
	for {
		frames, live, err := r.Drain(topic, m.id, after)
		if err != nil {
			return err
		}
		for _, f := range frames {
			m.Deliver(f)
		}
		if live {
			return nil
		}
	}
}

// TestHoldAndRelease is the resume contract: frames arriving while a
// member is held wait; on release, those the replay already covered (id <=
// after) are dropped and the rest delivered in order. Frames published
// before the replay was read may still be in flight after the release:
// they are dropped too, until a newer id passes (ids arrive in stream
// order, so none older can follow it).
func TestHoldAndRelease(t *testing.T) {
	r, _ := newHub(1 << 20)
	m := &recorder{id: "a"}
	_, _ = r.Join(ctx, "room:#r", m, true)
	r.Deliver(msg("9-0", "replayed, arrived while held"))
	r.Deliver(announcement("JoinedRoom", "x"))
	r.Deliver(announcement("LeftRoom", m.User())) // another tab of m's user, before m joined
	if len(m.frames) != 0 {
		t.Fatalf("held member got %d frames", len(m.frames))
	}
	if err := drain(r, "room:#r", m, "10-0"); err != nil {
		t.Fatal(err)
	}
	r.Deliver(msg("10-0", "replayed, arrived after the release"))
	r.Deliver(msg("11-0", "new"))
	r.Deliver(msg("12-0", "live"))
	got := m.texts()
	if len(got) != 3 || !strings.Contains(got[0], `"JoinedRoom"`) ||
		textOf(t, got[1]) != "11-0:new" || textOf(t, got[2]) != "12-0:live" {
		t.Fatalf("delivered %q", got)
	}
}

func TestHoldOverflow(t *testing.T) {
	r, _ := newHub(len(frame("x")) * 2)
	m := &recorder{id: "a"}
	_, _ = r.Join(ctx, "room:#r", m, true)
	for i := range 5 {
		r.Deliver(msg(fmt.Sprintf("%d-0", i+1), "x"))
	}
	if err := drain(r, "room:#r", m, ""); !errors.Is(err, ErrHoldOverflow) {
		t.Fatalf("release after overflow: %v, want ErrHoldOverflow", err)
	}
}

// TestGapNoticesEveryMember: a gap the node could not bridge is told to
// every member, held ones too, as one notice naming the id to catch up
// from; nobody is disconnected.
func TestGapNoticesEveryMember(t *testing.T) {
	r, _ := newHub(1 << 20)
	ms := []*recorder{{id: "a"}, {id: "b"}}
	for _, m := range ms {
		_, _ = r.Join(ctx, "room:#r", m, false)
	}
	held := &recorder{id: "c"}
	_, _ = r.Join(ctx, "room:#r", held, true)
	r.Deliver(broker.Message{Topic: "room:#r", ID: "7-0", Gap: true})
	for _, m := range ms {
		if got := m.texts(); len(got) != 1 || got[0] != "gap room:#r after 7-0" {
			t.Errorf("%s got %q", m.id, got)
		}
	}
	if err := drain(r, "room:#r", held, "9-0"); err != nil {
		t.Fatal(err)
	}
	if got := held.texts(); len(got) != 1 || got[0] != "gap room:#r after 7-0" {
		t.Errorf("held member got %q after its hold", got)
	}
	if &ms[0].frames[0][0] != &ms[1].frames[0][0] {
		t.Error("the notice was rendered once per member")
	}
}

// TestMembershipIndex: the hub is the one record of who is where; what it
// says of a connection follows its joins and leaves.
func TestMembershipIndex(t *testing.T) {
	h, _ := newHub(1 << 20)
	a := &recorder{id: "a"}
	for _, topic := range []string{"room:#x", "room:#y", "chat"} {
		if _, err := h.Join(ctx, topic, a, false); err != nil {
			t.Fatal(err)
		}
	}
	b := &recorder{id: "b"}
	_, _ = h.Join(ctx, "room:#z", b, true) // held members count too
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"a's rooms", h.TopicsOf("a", "room:"), []string{"room:#x", "room:#y"}},
		{"a's topics", h.TopicsOf("a", ""), []string{"chat", "room:#x", "room:#y"}},
		{"b's rooms", h.TopicsOf("b", "room:"), []string{"room:#z"}},
		{"nobody's rooms", h.TopicsOf("c", "room:"), nil},
		{"local rooms", h.Topics("room:"), []string{"room:#x", "room:#y", "room:#z"}},
	}
	for _, tt := range tests {
		slices.Sort(tt.got)
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if !h.IsMember("room:#x", "a") || h.IsMember("room:#x", "b") || !h.IsMember("room:#z", "b") {
		t.Error("IsMember disagrees with the joins")
	}
	_, _ = h.Leave(ctx, "room:#x", "a")
	if h.IsMember("room:#x", "a") || slices.Contains(h.Topics("room:"), "room:#x") {
		t.Error("a left #x, but the hub still has it there")
	}
	_, _ = h.Leave(ctx, "room:#y", "a")
	_, _ = h.Leave(ctx, "chat", "a")
	if got := h.TopicsOf("a", ""); len(got) != 0 {
		t.Errorf("after leaving everything, a is in %v", got)
	}
}

// TestNoNewsOfOneself: a member never hears that its own user joined or
// left (another tab of the same user, racing this one), held or live;
// news of other users reaches it.
func TestNoNewsOfOneself(t *testing.T) {
	h, _ := newHub(1 << 20)
	m := &recorder{id: "a", user: "alice"}
	_, _ = h.Join(ctx, "room:#r", m, false)
	h.Deliver(announcement("JoinedRoom", "alice"))
	h.Deliver(announcement("LeftRoom", "alice"))
	h.Deliver(announcement("JoinedRoom", "bob"))
	if got := m.texts(); len(got) != 1 || !strings.Contains(got[0], `"bob"`) {
		t.Fatalf("delivered %q, want only bob's JoinedRoom", got)
	}
}
