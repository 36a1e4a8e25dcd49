package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

var fast = map[string]string{"RATE_LIMIT": "10000", "RATE_BURST": "10000"}

// TestResumeAfterDrop: a client on node B drops, 50 messages are sent to
// its room from node A, and it comes back (to B, or to A) with since = the
// last id it saw: it receives exactly those 50, in order, then live ones.
func TestResumeAfterDrop(t *testing.T) {
	d, _ := singleRedis(t)
	for _, back := range []int{1, 0} {
		t.Run("reconnect to node "+"AB"[back:back+1], func(t *testing.T) {
			ns := d.nodes(t, 2, fast)
			alice, bob := aliceAndBob(t, ns[0].WS(), ns[1].WS(), "#resume")
			alice.Say("#resume", "before")
			last := bob.ExpectRoomMessage("#resume", "alice", "before").ID
			alice.ExpectRoomMessage("#resume", "alice", "before")

			bob.Close()
			alice.ExpectRoomUser("LeftRoom", "#resume", "bob")
			var sent []string
			for i := range 50 {
				alice.Say("#resume", strconv.Itoa(i))
				sent = append(sent, alice.ExpectRoomMessage("#resume", "alice", strconv.Itoa(i)).ID)
			}

			bob = wstest.Open(t, ns[back].WS()+"?user=bob")
			joined := bob.JoinSince("#resume", last, "bob", "alice", "bob")
			if joined.Recovered == nil || !*joined.Recovered {
				t.Fatalf("JoinedRoom.recovered = %v, want true", joined.Recovered)
			}
			for i, id := range sent {
				if m := bob.ExpectRoomMessage("#resume", "alice", strconv.Itoa(i)); m.ID != id {
					t.Fatalf("replayed message %d has id %s, want %s", i, m.ID, id)
				}
			}
			alice.ExpectRoomUser("JoinedRoom", "#resume", "bob")
			alice.Say("#resume", "live")
			bob.ExpectRoomMessage("#resume", "alice", "live")
			expectNothingMore(alice, "alice", "#resume", bob)
		})
	}
}

// TestResumeWhileTrafficContinues rejoins with since while another client
// keeps sending: the replay and the live stream join without a duplicate
// or a gap.
func TestResumeWhileTrafficContinues(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, fast)
	alice, bob := aliceAndBob(t, ns[0].WS(), ns[1].WS(), "#busy")

	const total = 400
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range total {
			alice.Say("#busy", strconv.Itoa(i))
		}
	})
	// Read a while, drop, come back while alice is still sending.
	var last string
	for i := range 40 {
		last = bob.ExpectRoomMessage("#busy", "alice", strconv.Itoa(i)).ID
	}
	bob.Close()
	bob = wstest.Open(t, ns[1].WS()+"?user=bob")
	joined := bob.JoinSince("#busy", last, "bob", "alice", "bob")
	if joined.Recovered == nil || !*joined.Recovered {
		t.Fatalf("recovered = %v", joined.Recovered)
	}
	prev := last
	for i := 40; i < total; i++ {
		m := bob.ExpectRoomMessage("#busy", "alice", strconv.Itoa(i))
		if broker.CompareIDs(m.ID, prev) <= 0 {
			t.Fatalf("message %d id %s not after %s", i, m.ID, prev)
		}
		prev = m.ID
	}
	wg.Wait()
	expectNothingMore(alice, "alice", "#busy", bob)
}

// TestResumeAfterNodeCrash: the node holding a client is SIGKILLed; the
// client reconnects to another node and loses nothing.
func TestResumeAfterNodeCrash(t *testing.T) {
	_, srv := singleRedis(t)
	env := map[string]string{"REDIS_URL": srv.URL(), "REDIS_PREFIX": "kill:", "RATE_LIMIT": "10000", "RATE_BURST": "10000"}
	victim := testnode.StartProcess(t, binary, env)
	survivor := testnode.StartRedis(t, testnode.Config(t, env))

	alice, bob := aliceAndBob(t, survivor.WS(), victim.WS(), "#k")
	alice.Say("#k", "seen")
	last := bob.ExpectRoomMessage("#k", "alice", "seen").ID

	victim.Kill()
	bob.ExpectClose()
	for i := range 50 {
		alice.Say("#k", strconv.Itoa(i))
		alice.WaitFor("chat-room", "NewMessage")
	}
	bob = wstest.Open(t, survivor.WS()+"?user=bob")
	// bob's presence from the dead node may linger until PRESENCE_TTL.
	bob.Send("chat-room", "JoinRoom", protocol.JoinRoom{Room: "#k", Since: last})
	bob.Expect("chat-room", "MemberList")
	var joined protocol.JoinedRoom
	bob.Expect("chat-room", "JoinedRoom").Decode(t, &joined)
	if joined.Recovered == nil || !*joined.Recovered {
		t.Fatalf("recovered = %v", joined.Recovered)
	}
	for i := range 50 {
		bob.ExpectRoomMessage("#k", "alice", strconv.Itoa(i))
	}
	expectNothingMore(alice, "alice", "#k", bob)
}

// TestOneOrderPerRoomAcrossNodes: publishers on two nodes at once; every
// member, on either node, sees the same single order, ids increasing.
func TestOneOrderPerRoomAcrossNodes(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, fast)
	alice := wstest.Open(t, ns[0].WS()+"?user=alice")
	carol := wstest.Open(t, ns[1].WS()+"?user=carol")
	watchA := wstest.Open(t, ns[0].WS()+"?user=wa")
	watchB := wstest.Open(t, ns[1].WS()+"?user=wb")
	alice.Join("#o", "alice", "alice")
	carol.Join("#o", "carol", "alice", "carol")
	watchA.Join("#o", "wa", "alice", "carol", "wa")
	watchB.Join("#o", "wb", "alice", "carol", "wa", "wb")

	const per = 150
	var wg sync.WaitGroup
	for _, c := range []*wstest.Client{alice, carol} {
		wg.Go(func() {
			for i := range per {
				c.Say("#o", strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	seen := func(c *wstest.Client) []string {
		var ids []string
		for len(ids) < 2*per {
			var m protocol.RoomMessage
			c.WaitFor("chat-room", "NewMessage").Decode(t, &m)
			ids = append(ids, m.ID)
		}
		return ids
	}
	a, b := seen(watchA), seen(watchB)
	if !slices.Equal(a, b) {
		t.Fatalf("members on two nodes saw different orders")
	}
	if !slices.IsSortedFunc(a, broker.CompareIDs) {
		t.Fatalf("ids are not increasing")
	}
}

// TestTrimmedHistoryIsReportedAsAGap: resuming from an id older than what
// is retained gets recovered:false and what is retained.
func TestTrimmedHistoryIsReportedAsAGap(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 1, map[string]string{"HISTORY_SIZE": "10", "RATE_LIMIT": "10000", "RATE_BURST": "10000"})
	alice := wstest.Open(t, ns[0].WS()+"?user=alice")
	alice.Join("#t", "alice", "alice")
	alice.Say("#t", "first")
	first := alice.ExpectRoomMessage("#t", "alice", "first").ID
	const total = 300 // far past HISTORY_SIZE: "first" is trimmed
	for i := range total {
		alice.Say("#t", strconv.Itoa(i))
	}
	for i := range total {
		alice.ExpectRoomMessage("#t", "alice", strconv.Itoa(i))
	}

	late := wstest.Open(t, ns[0].WS()+"?user=late")
	joined := late.JoinSince("#t", first, "late", "alice", "late")
	if joined.Recovered == nil || *joined.Recovered {
		t.Fatalf("recovered = %v, want false", joined.Recovered)
	}
	var got []string
	for {
		var m protocol.RoomMessage
		f := late.Next()
		if f.Type != "NewMessage" {
			t.Fatalf("unexpected %s", f)
		}
		f.Decode(t, &m)
		got = append(got, m.Message)
		if m.Message == strconv.Itoa(total-1) {
			break
		}
	}
	if len(got) < 10 || len(got) >= total {
		t.Fatalf("replayed %d messages with HISTORY_SIZE 10", len(got))
	}
}

// TestHistoryPaging walks a room's history backwards with before, over
// the WebSocket and over HTTP, and gets every message once, in order.
func TestHistoryPaging(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 1, fast)
	alice := wstest.Open(t, ns[0].WS()+"?user=alice")
	alice.Join("#p", "alice", "alice")
	var want []string
	for i := range 35 {
		alice.Say("#p", strconv.Itoa(i))
		want = append(want, alice.ExpectRoomMessage("#p", "alice", strconv.Itoa(i)).ID)
	}

	overWS := func(before string) protocol.History {
		alice.Send("chat-room", "GetHistory", protocol.GetHistory{Room: "#p", Before: before, Limit: 10})
		var h protocol.History
		alice.Expect("chat-room", "History").Decode(t, &h)
		return h
	}
	overHTTP := func(before string) protocol.History {
		q := url.Values{"limit": {"10"}}
		if before != "" {
			q.Set("before", before)
		}
		status, body := ns[0].Do(t, http.MethodGet, "/rooms/"+url.PathEscape("#p")+"/messages?"+q.Encode(), "", nil)
		if status != http.StatusOK {
			t.Fatalf("GET messages = %d %s", status, body)
		}
		var h protocol.History
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	for name, get := range map[string]func(string) protocol.History{"websocket": overWS, "http": overHTTP} {
		t.Run(name, func(t *testing.T) {
			var got []string
			before := ""
			for pages := 0; ; pages++ {
				h := get(before)
				if h.Room != "#p" {
					t.Fatalf("history of room %q", h.Room)
				}
				var ids []string
				for _, raw := range h.Messages {
					var m protocol.RoomMessage
					if err := json.Unmarshal(raw, &m); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, m.ID)
				}
				got = append(ids, got...)
				if h.Complete {
					break
				}
				if pages > 10 || len(ids) == 0 {
					t.Fatalf("paging does not end")
				}
				before = ids[0]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paged ids %v\nwant %v", got, want)
			}
		})
	}
}

// TestChatHistory: the global chat keeps history too.
func TestChatHistory(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, fast)
	a := wstest.Open(t, ns[0].WS())
	for i := range 3 {
		a.Send("chat", "SubmitMessage", strconv.Itoa(i))
		a.Expect("chat", "NewMessageReceived")
	}
	b := wstest.Open(t, ns[1].WS())
	b.Send("chat", "GetHistory", protocol.GetHistory{Limit: 2})
	var h protocol.History
	b.WaitFor("chat", "History").Decode(t, &h) // a late chat message may come first
	if len(h.Messages) != 2 || h.Complete {
		t.Fatalf("history = %s", h.Messages)
	}
	var m protocol.ChatMessage
	if err := json.Unmarshal(h.Messages[1], &m); err != nil || m.Content != "2" || m.ID == "" {
		t.Fatalf("newest message %s", h.Messages[1])
	}
}

// expectNothingMore is a barrier for "no duplicate, nothing extra": from
// (user) says one more message in room, and it must be the next frame of
// every client in to. from's own copy is left unread.
func expectNothingMore(from *wstest.Client, user, room string, to ...*wstest.Client) {
	from.Say(room, "barrier")
	for _, c := range to {
		c.ExpectRoomMessage(room, user, "barrier")
	}
}
