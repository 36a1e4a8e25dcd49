package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testredis"
)

// backend makes brokers over one shared store. For Redis every call gives
// a new node of the same deployment; for Memory, nodes cannot share, so
// multiNode tests are skipped.
type backend struct {
	newNode func(t *testing.T, opts Options) Broker
	// multiNode is true when brokers from newNode share state.
	multiNode bool
}

// node is a started broker with its deliveries collected.
type node struct {
	Broker
	got chan Message
}

func startNode(t *testing.T, be backend, opts Options) *node {
	t.Helper()
	n := &node{Broker: be.newNode(t, opts), got: make(chan Message, 10000)}
	n.Start(func(m Message) { n.got <- m })
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func (n *node) next(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-n.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
		return Message{}
	}
}

func (n *node) nothing(t *testing.T) {
	t.Helper()
	select {
	case m := <-n.got:
		t.Fatalf("unexpected delivery %+v", m)
	case <-time.After(150 * time.Millisecond):
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

var testOpts = Options{HistorySize: 1000, HistoryTTL: time.Hour, PresenceTTL: 30 * time.Second}

// runConformance is the contract both brokers keep.
func runConformance(t *testing.T, be backend) {
	ctx := context.Background()

	t.Run("PublishReachesSubscriberOnly", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		res := must[PublishResult](t)(n.Publish(ctx, Message{Topic: "t", Data: []byte("early")}, false))
		if res.Receivers != 0 {
			t.Errorf("receivers before subscribing = %d", res.Receivers)
		}
		if err := n.Subscribe(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		res = must[PublishResult](t)(n.Publish(ctx, Message{Topic: "t", Except: "conn-1", Data: []byte(`{"a":1}`)}, false))
		if res.Receivers != 1 || res.ID != "" {
			t.Errorf("result = %+v, want 1 receiver and no id", res)
		}
		got := n.next(t)
		if got.Topic != "t" || got.Except != "conn-1" || string(got.Data) != `{"a":1}` || got.ID != "" {
			t.Errorf("delivered %+v", got)
		}
		_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: "other", Data: []byte("x")}, false))
		n.nothing(t)
		if err := n.Unsubscribe(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: "t", Data: []byte("late")}, false))
		n.nothing(t)
	})

	t.Run("DataSurvivesAnyBytes", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "bytes"))
		data := []byte("line one\nline two\n\x00\xff{}")
		for _, hist := range []bool{false, true} {
			_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: "bytes", Data: data}, hist))
			if got := n.next(t); string(got.Data) != string(data) {
				t.Errorf("history=%v: data %q", hist, got.Data)
			}
		}
	})

	t.Run("StoredIDsIncreaseAndMatchDeliveries", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "h"))
		var ids []string
		for i := range 20 {
			res := must[PublishResult](t)(n.Publish(ctx, Message{Topic: "h", Data: fmt.Appendf(nil, "m%d", i)}, true))
			ids = append(ids, res.ID)
			got := n.next(t)
			if got.ID != res.ID || string(got.Data) != fmt.Sprintf("m%d", i) {
				t.Fatalf("delivered %+v, published id %s", got, res.ID)
			}
			if i > 0 && CompareIDs(ids[i-1], res.ID) >= 0 {
				t.Fatalf("id %s not after %s", res.ID, ids[i-1])
			}
		}
		page := must[HistoryPage](t)(n.History(ctx, "h", HistoryQuery{}))
		if !page.Complete || !slices.Equal(idsOf(page.Messages), ids) {
			t.Errorf("history ids %v complete=%v, want %v", idsOf(page.Messages), page.Complete, ids)
		}
	})

	t.Run("HistoryPaging", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		var ids []string
		for i := range 10 {
			ids = append(ids, must[PublishResult](t)(n.Publish(ctx, Message{Topic: "p", Data: fmt.Appendf(nil, "%d", i)}, true)).ID)
		}
		for _, tc := range []struct {
			name     string
			q        HistoryQuery
			want     []string
			complete bool
		}{
			{"newest page", HistoryQuery{Limit: 3}, ids[7:], false},
			{"all", HistoryQuery{}, ids, true},
			{"before", HistoryQuery{Before: ids[7], Limit: 3}, ids[4:7], false},
			{"before reaching the start", HistoryQuery{Before: ids[2], Limit: 5}, ids[:2], true},
			{"since", HistoryQuery{Since: ids[2], Limit: 3}, ids[3:6], false},
			{"since to the end", HistoryQuery{Since: ids[6]}, ids[7:], true},
			{"since the newest", HistoryQuery{Since: ids[9]}, nil, true},
			{"between", HistoryQuery{Since: ids[1], Before: ids[5]}, ids[2:5], true},
			{"between, limited", HistoryQuery{Since: ids[1], Before: ids[5], Limit: 2}, ids[2:4], false},
			{"empty range", HistoryQuery{Since: ids[5], Before: ids[6]}, nil, true},
		} {
			page := must[HistoryPage](t)(n.History(ctx, "p", tc.q))
			if got := idsOf(page.Messages); !slices.Equal(got, tc.want) || page.Complete != tc.complete {
				t.Errorf("%s: ids %v complete=%v, want %v complete=%v", tc.name, got, page.Complete, tc.want, tc.complete)
			}
		}
		page := must[HistoryPage](t)(n.History(ctx, "p", HistoryQuery{Since: ids[3]}))
		if !page.Recovered {
			t.Errorf("since a retained id: recovered = false")
		}
		empty := must[HistoryPage](t)(n.History(ctx, "never-written", HistoryQuery{Since: ids[3]}))
		if len(empty.Messages) != 0 || empty.Recovered {
			t.Errorf("unknown stream: %+v, want empty and not recovered", empty)
		}
		if _, err := n.History(ctx, "p", HistoryQuery{Since: "nope"}); err == nil {
			t.Errorf("invalid since accepted")
		}
	})

	t.Run("HistoryByteBudget", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		var ids []string
		for i := range 10 {
			data := fmt.Appendf(nil, "%02d%s", i, strings.Repeat("x", 98)) // 100 bytes
			ids = append(ids, must[PublishResult](t)(n.Publish(ctx, Message{Topic: "b", Data: data}, true)).ID)
		}
		for _, tc := range []struct {
			name     string
			q        HistoryQuery
			want     []string
			complete bool
		}{
			{"newest within the budget", HistoryQuery{MaxBytes: 350}, ids[7:], false},
			{"forward within the budget", HistoryQuery{Since: ids[0], MaxBytes: 350}, ids[1:4], false},
			{"one message even over the budget", HistoryQuery{MaxBytes: 10}, ids[9:], false},
			{"limit before the budget", HistoryQuery{Limit: 2, MaxBytes: 10000}, ids[8:], false},
			{"budget large enough", HistoryQuery{MaxBytes: 10000}, ids, true},
		} {
			page := must[HistoryPage](t)(n.History(ctx, "b", tc.q))
			if got := idsOf(page.Messages); !slices.Equal(got, tc.want) || page.Complete != tc.complete {
				t.Errorf("%s: ids %v complete=%v, want %v complete=%v", tc.name, got, page.Complete, tc.want, tc.complete)
			}
		}
	})

	t.Run("TrimmingReportsNotRecovered", func(t *testing.T) {
		opts := testOpts
		opts.HistorySize = 10
		n := startNode(t, be, opts)
		total := 30
		var ids []string
		for i := range total {
			ids = append(ids, must[PublishResult](t)(n.Publish(ctx, Message{Topic: "trim", Data: fmt.Appendf(nil, "%d", i)}, true)).ID)
		}
		all := idsOf(must[HistoryPage](t)(n.History(ctx, "trim", HistoryQuery{})).Messages)
		if len(all) != opts.HistorySize {
			t.Fatalf("retained %d of %d with HistorySize %d", len(all), total, opts.HistorySize)
		}
		if !slices.Equal(all, ids[total-len(all):]) {
			t.Fatalf("retained ids are not the newest")
		}
		if page := must[HistoryPage](t)(n.History(ctx, "trim", HistoryQuery{Since: ids[0]})); page.Recovered {
			t.Errorf("since a trimmed id: recovered = true")
		}
		oldest := all[0]
		page := must[HistoryPage](t)(n.History(ctx, "trim", HistoryQuery{Since: oldest}))
		if !page.Recovered || len(page.Messages) != len(all)-1 {
			t.Errorf("since the oldest retained id: recovered=%v with %d messages, want true with %d", page.Recovered, len(page.Messages), len(all)-1)
		}
	})

	runHistoryBounds(t, be)

	t.Run("HistoryExpires", func(t *testing.T) {
		opts := testOpts
		opts.HistoryTTL = time.Second
		n := startNode(t, be, opts)
		id := must[PublishResult](t)(n.Publish(ctx, Message{Topic: "ttl", Data: []byte("x")}, true)).ID
		time.Sleep(1500 * time.Millisecond)
		page := must[HistoryPage](t)(n.History(ctx, "ttl", HistoryQuery{Since: id}))
		if len(page.Messages) != 0 || page.Recovered {
			t.Errorf("after the TTL: %+v", page)
		}
		// A new stream after expiry does not pretend to continue the old one.
		_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: "ttl", Data: []byte("y")}, true))
		time.Sleep(5 * time.Millisecond)
		page = must[HistoryPage](t)(n.History(ctx, "ttl", HistoryQuery{Since: id}))
		if page.Recovered {
			t.Errorf("stream recreated after expiry: recovered = true")
		}
	})

	t.Run("HistoryOff", func(t *testing.T) {
		opts := testOpts
		opts.HistorySize = 0
		n := startNode(t, be, opts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "off"))
		res := must[PublishResult](t)(n.Publish(ctx, Message{Topic: "off", Data: []byte("x")}, true))
		if res.ID != "" || n.next(t).ID != "" {
			t.Errorf("history off still assigned an id")
		}
		if page := must[HistoryPage](t)(n.History(ctx, "off", HistoryQuery{})); len(page.Messages) != 0 {
			t.Errorf("history off still stored %d messages", len(page.Messages))
		}
	})

	t.Run("ConcurrentPublishersKeepOneOrder", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "order"))
		const per = 200
		var wg sync.WaitGroup
		for p := range 2 {
			wg.Go(func() {
				for i := range per {
					if _, err := n.Publish(ctx, Message{Topic: "order", Data: fmt.Appendf(nil, "%d-%d", p, i)}, true); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		var delivered []string
		for range 2 * per {
			delivered = append(delivered, n.next(t).ID)
		}
		if !slices.IsSortedFunc(delivered, CompareIDs) {
			t.Errorf("deliveries out of stream order")
		}
		if stored := idsOf(must[HistoryPage](t)(n.History(ctx, "order", HistoryQuery{})).Messages); !slices.Equal(stored, delivered) {
			t.Errorf("stored order differs from delivered order")
		}
	})

	t.Run("Presence", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "room"))
		steps := []struct {
			op         string
			user, conn string
			want       bool
			members    []string
		}{
			{"add", "bob", "b1", true, []string{"bob"}},
			{"add", "alice", "a1", true, []string{"alice", "bob"}},
			{"add", "alice", "a2", false, []string{"alice", "bob"}},
			{"add", "alice", "a2", false, []string{"alice", "bob"}}, // again: still not first
			{"remove", "alice", "a1", false, []string{"alice", "bob"}},
			{"remove", "alice", "a2", true, []string{"bob"}},
			{"remove", "bob", "b1", true, []string{}},
		}
		for i, s := range steps {
			var got bool
			var err error
			frame := []byte(s.op + " " + s.user)
			if s.op == "add" {
				got, err = n.AddPresence(ctx, "room", s.user, s.conn, frame)
			} else {
				got, err = n.RemovePresence(ctx, "room", s.user, s.conn, frame)
			}
			if err != nil || got != s.want {
				t.Fatalf("step %d %s %s/%s = %v, %v; want %v", i, s.op, s.user, s.conn, got, err, s.want)
			}
			if m := members(t, n, "room"); !slices.Equal(m, s.members) {
				t.Fatalf("step %d: members %v, want %v", i, m, s.members)
			}
			// The announcement goes out exactly on a transition, with the
			// change; a join's announcement skips the joining connection.
			if !s.want {
				n.nothing(t)
				continue
			}
			got2 := n.next(t)
			if string(got2.Data) != string(frame) || (s.op == "add") != (got2.Except == s.conn) {
				t.Fatalf("step %d announced %q except %q", i, got2.Data, got2.Except)
			}
		}
		// Removing a connection that is not there announces nothing.
		if must[bool](t)(n.RemovePresence(ctx, "room", "nobody", "x", []byte("left"))) {
			t.Fatal("removing an absent connection reported the user's last")
		}
		n.nothing(t)
	})

	t.Run("Claim", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		for i, want := range []bool{true, false, false} {
			if got := must[bool](t)(n.Claim(ctx, "jti-1", time.Second)); got != want {
				t.Fatalf("claim %d = %v, want %v", i, got, want)
			}
		}
		time.Sleep(1100 * time.Millisecond)
		if !must[bool](t)(n.Claim(ctx, "jti-1", time.Second)) {
			t.Errorf("claim not released after its ttl")
		}
	})

	t.Run("NamesWithBracesDoNotCollide", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		topics := []string{"room:{x}", "room:x", "room:x}", "room:%7Bx%7D", "room:}:history"}
		for _, topic := range topics {
			must[struct{}](t)(struct{}{}, n.Subscribe(ctx, topic))
			_ = must[bool](t)(n.AddPresence(ctx, topic, "u}:x", "c", nil))
		}
		for _, topic := range topics {
			_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: topic, Data: []byte(topic)}, true))
			if got := n.next(t); got.Topic != topic || string(got.Data) != topic {
				t.Fatalf("published on %q, delivered %q on %q", topic, got.Data, got.Topic)
			}
			page := must[HistoryPage](t)(n.History(ctx, topic, HistoryQuery{}))
			if len(page.Messages) != 1 || string(page.Messages[0].Data) != topic {
				t.Fatalf("history of %q holds %d messages", topic, len(page.Messages))
			}
			if m := members(t, n, topic); !slices.Equal(m, []string{"u}:x"}) {
				t.Fatalf("members of %q: %v", topic, m)
			}
		}
		n.nothing(t)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "kept"))
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel2()
		for _, tc := range []struct {
			ctx  context.Context
			want error
		}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
			for name, call := range map[string]func(context.Context) error{
				"Publish": func(c context.Context) error {
					_, err := n.Publish(c, Message{Topic: "kept", Data: []byte("never")}, true)
					return err
				},
				"History": func(c context.Context) error {
					_, err := n.History(c, "kept", HistoryQuery{})
					return err
				},
				"Subscribe": func(c context.Context) error { return n.Subscribe(c, "cancelled") },
				"AddPresence": func(c context.Context) error {
					_, err := n.AddPresence(c, "kept", "u", "c1", []byte("joined"))
					return err
				},
			} {
				if err := call(tc.ctx); !errors.Is(err, tc.want) {
					t.Errorf("%s with a %v context: err = %v", name, tc.want, err)
				}
			}
		}
		// Nothing happened, and the node's subscriptions still work.
		_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: "cancelled", Data: []byte("x")}, false))
		n.nothing(t)
		if m := members(t, n, "kept"); len(m) != 0 {
			t.Errorf("a cancelled AddPresence added %v", m)
		}
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "after"))
		for _, topic := range []string{"kept", "after"} {
			_ = must[PublishResult](t)(n.Publish(ctx, Message{Topic: topic, Data: []byte(topic)}, true))
			if got := n.next(t); got.Topic != topic || string(got.Data) != topic {
				t.Errorf("after cancelled calls delivered %+v, want %q", got, topic)
			}
		}
		if err := n.Ready(ctx); err != nil {
			t.Errorf("ready after cancelled calls: %v", err)
		}
	})

	t.Run("Ready", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "ready"))
		if err := n.Ready(ctx); err != nil {
			t.Errorf("ready: %v", err)
		}
	})

	t.Run("MembersPages", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		users := []string{"dave", "alice", "erin", "carol", "bob"}
		for _, u := range users {
			must[bool](t)(n.AddPresence(ctx, "paged", u, u+"-conn", nil))
		}
		must[bool](t)(n.AddPresence(ctx, "paged", "alice", "alice-tab2", nil)) // listed once
		tests := []struct {
			q    MembersQuery
			want []string
		}{
			{MembersQuery{}, []string{"alice", "bob", "carol", "dave", "erin"}},
			{MembersQuery{Limit: 2}, []string{"alice", "bob"}},
			{MembersQuery{After: "bob", Limit: 2}, []string{"carol", "dave"}},
			{MembersQuery{After: "dave", Limit: 2}, []string{"erin"}},
			{MembersQuery{After: "erin"}, []string{}},
			{MembersQuery{After: "b"}, []string{"bob", "carol", "dave", "erin"}},
		}
		for _, tt := range tests {
			page := must[MembersPage](t)(n.Members(ctx, "paged", tt.q))
			if !slices.Equal(page.Users, tt.want) || page.Count != 5 {
				t.Errorf("Members(%+v) = %v, count %d; want %v, count 5", tt.q, page.Users, page.Count, tt.want)
			}
		}
		must[bool](t)(n.RemovePresence(ctx, "paged", "carol", "carol-conn", nil))
		if page := must[MembersPage](t)(n.Members(ctx, "paged", MembersQuery{After: "bob", Limit: 1})); !slices.Equal(page.Users, []string{"dave"}) || page.Count != 4 {
			t.Errorf("after carol left: %v, count %d", page.Users, page.Count)
		}
	})

	t.Run("LargeTopicsAnnounceNothing", func(t *testing.T) {
		opts := testOpts
		opts.LargeRoom = 3
		n := startNode(t, be, opts)
		must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "big"))
		for i, u := range []string{"u1", "u2", "u3", "u4"} {
			if !must[bool](t)(n.AddPresence(ctx, "big", u, u, []byte("joined "+u))) {
				t.Fatalf("%s not reported as first", u)
			}
			if i < 3 { // 0, 1 and 2 users before: a small topic
				if got := n.next(t); string(got.Data) != "joined "+u {
					t.Fatalf("announced %q, want joined %s", got.Data, u)
				}
			}
		}
		n.nothing(t) // u4 joined a topic of 3: large, unannounced
		must[bool](t)(n.RemovePresence(ctx, "big", "u4", "u4", []byte("left u4")))
		must[bool](t)(n.RemovePresence(ctx, "big", "u3", "u3", []byte("left u3")))
		n.nothing(t) // 4, then 3 users before the leaves: large
		must[bool](t)(n.RemovePresence(ctx, "big", "u2", "u2", []byte("left u2")))
		if got := n.next(t); string(got.Data) != "left u2" {
			t.Fatalf("announced %q, want left u2", got.Data)
		}
	})

	if !be.multiNode {
		return
	}

	t.Run("AcrossNodes", func(t *testing.T) {
		a, b, c := startNode(t, be, testOpts), startNode(t, be, testOpts), startNode(t, be, testOpts)
		for _, n := range []*node{a, b} {
			must[struct{}](t)(struct{}{}, n.Subscribe(ctx, "x"))
		}
		res := must[PublishResult](t)(c.Publish(ctx, Message{Topic: "x", Data: []byte("hi")}, true))
		if res.Receivers != 2 {
			t.Errorf("receivers = %d, want 2 nodes", res.Receivers)
		}
		for _, n := range []*node{a, b} {
			if got := n.next(t); got.ID != res.ID || string(got.Data) != "hi" {
				t.Errorf("delivered %+v", got)
			}
		}
		c.nothing(t)
		// History and presence are shared.
		if page := must[HistoryPage](t)(b.History(ctx, "x", HistoryQuery{})); len(page.Messages) != 1 || page.Messages[0].ID != res.ID {
			t.Errorf("history on another node: %+v", page)
		}
		if !must[bool](t)(a.AddPresence(ctx, "room", "alice", "a1", nil)) || must[bool](t)(b.AddPresence(ctx, "room", "alice", "b1", nil)) {
			t.Errorf("second node's connection of the same user counted as first")
		}
		if m := members(t, c, "room"); !slices.Equal(m, []string{"alice"}) {
			t.Errorf("members = %v", m)
		}
		if must[bool](t)(a.RemovePresence(ctx, "room", "alice", "a1", nil)) || !must[bool](t)(b.RemovePresence(ctx, "room", "alice", "b1", nil)) {
			t.Errorf("last connection across nodes misreported")
		}
		if !must[bool](t)(a.Claim(ctx, "shared", time.Minute)) || must[bool](t)(b.Claim(ctx, "shared", time.Minute)) {
			t.Errorf("a claim on one node is not seen by another")
		}
	})

	t.Run("ActiveTopics", func(t *testing.T) { testActiveTopics(t, be) })
	t.Run("CrashedNodePresenceExpires", func(t *testing.T) {
		opts := testOpts
		opts.PresenceTTL = 1500 * time.Millisecond
		a, b := startNode(t, be, opts), startNode(t, be, opts)
		must[struct{}](t)(struct{}{}, b.Subscribe(ctx, "room"))
		must[bool](t)(a.AddPresence(ctx, "room", "ghost", "g1", nil))
		must[bool](t)(b.AddPresence(ctx, "room", "alive", "l1", nil))
		_ = a.Close() // like a crash: nothing removed, no more heartbeats
		deadline := time.Now().Add(5 * time.Second)
		for {
			m := members(t, b, "room")
			if slices.Equal(m, []string{"alive"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("members %v: the crashed node's entry did not expire", m)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The expired user is reported once, to whichever node sweeps first.
		left := UserTemplate{Head: []byte(`{"user":"`), Middle: []byte(`","json":`), Tail: []byte(`}`)}
		if gone := must[[]string](t)(b.SweepPresence(ctx, "room", left)); !slices.Equal(gone, []string{"ghost"}) {
			t.Errorf("sweep reported %v, want [ghost]", gone)
		}
		if got := b.next(t); string(got.Data) != `{"user":"ghost","json":"ghost"}` {
			t.Errorf("sweep announced %q", got.Data)
		}
		if gone := must[[]string](t)(b.SweepPresence(ctx, "room", left)); len(gone) != 0 {
			t.Errorf("second sweep reported %v again", gone)
		}
		b.nothing(t)
		// The live node's heartbeat keeps its own entry past the TTL.
		time.Sleep(2 * opts.PresenceTTL)
		if m := members(t, b, "room"); !slices.Equal(m, []string{"alive"}) {
			t.Errorf("members after 2 TTLs = %v, want [alive]", m)
		}
	})
}

func idsOf(ms []Message) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestMemoryConformance(t *testing.T) {
	runConformance(t, backend{newNode: func(t *testing.T, opts Options) Broker { return NewMemory(opts) }})
}

// TestCloseWithoutStart: a node that fails to start (a bad key file, say)
// closes its broker without having started it; Close must not wait for
// goroutines that never ran.
func TestCloseWithoutStart(t *testing.T) {
	srv := testredis.Start(t)
	r, err := NewRedis(RedisOptions{Options: testOpts, URL: srv.URL(), Prefix: "cw:"})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]Broker{"memory": NewMemory(testOpts), "redis": r} {
		done := make(chan error, 1)
		go func() { done <- b.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Close without Start hangs", name)
		}
	}
}

// members lists every user present on topic.
func members(t *testing.T, b Broker, topic string) []string {
	t.Helper()
	page, err := b.Members(context.Background(), topic, MembersQuery{})
	if err != nil {
		t.Fatalf("Members(%q): %v", topic, err)
	}
	if page.Count != len(page.Users) {
		t.Fatalf("Members(%q) counts %d users and lists %v", topic, page.Count, page.Users)
	}
	return page.Users
}
