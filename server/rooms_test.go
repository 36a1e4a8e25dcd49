package server_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// quiet is how long tests wait to be sure a frame does not come.
const quiet = 200 * time.Millisecond

// join sends JoinRoom and checks the joiner's MemberList and JoinedRoom.
func join(t *testing.T, c *wstest.Client, room, user string, wantMembers ...string) {
	t.Helper()
	c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: room})
	var list protocol.MemberList
	c.Expect("chat-room", "MemberList").Decode(t, &list)
	if list.Room != room || !slices.Equal(list.Users, sorted(wantMembers)) {
		t.Fatalf("MemberList = %+v, want room %q users %v", list, room, sorted(wantMembers))
	}
	expectUser(t, c, "JoinedRoom", room, user)
}

func expectUser(t *testing.T, c *wstest.Client, typ, room, user string) {
	t.Helper()
	var got protocol.RoomUser
	c.Expect("chat-room", typ).Decode(t, &got)
	if got.Room != room || got.User != user {
		t.Fatalf("%s = %+v, want room %q user %q", typ, got, room, user)
	}
}

func expectRoomMessage(t *testing.T, c *wstest.Client, room, user, text string) protocol.RoomMessage {
	t.Helper()
	var got protocol.RoomMessage
	c.Expect("chat-room", "NewMessage").Decode(t, &got)
	if got.Room != room || got.User != user || got.Message != text {
		t.Fatalf("NewMessage = %+v, want %s/%s/%q", got, room, user, text)
	}
	return got
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		return []string{}
	}
	return s
}

func say(c *wstest.Client, room, text string) {
	c.Send("chat-room", "SendMessage", protocol.SendMessage{Room: room, Message: text})
}

// TestRoomWalkThrough follows the original prototype's README: join, member
// list, isolation of non-members, a second joiner, leave, disconnect.
func TestRoomWalkThrough(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Dial(t, n.WS()+"?user=alice")
	b := wstest.Dial(t, n.WS()+"?user=bob")
	c := wstest.Dial(t, n.WS()+"?user=carol")

	join(t, a, "#haskell", "alice", "alice")
	say(a, "#haskell", "Monad monoid category whatever")
	expectRoomMessage(t, a, "#haskell", "alice", "Monad monoid category whatever")
	b.ExpectNothing(quiet)

	join(t, b, "#haskell", "bob", "alice", "bob")
	expectUser(t, a, "JoinedRoom", "#haskell", "bob")

	say(b, "#haskell", "hi")
	expectRoomMessage(t, a, "#haskell", "bob", "hi")
	expectRoomMessage(t, b, "#haskell", "bob", "hi")

	join(t, c, "#haskell", "carol", "alice", "bob", "carol")
	expectUser(t, a, "JoinedRoom", "#haskell", "carol")
	expectUser(t, b, "JoinedRoom", "#haskell", "carol")

	a.Send("chat-room", "LeaveRoom", protocol.RoomRef{Room: "#haskell"})
	expectUser(t, a, "LeftRoom", "#haskell", "alice") // the leaver's acknowledgement
	expectUser(t, b, "LeftRoom", "#haskell", "alice")
	expectUser(t, c, "LeftRoom", "#haskell", "alice")

	say(b, "#haskell", "alice is gone")
	expectRoomMessage(t, b, "#haskell", "bob", "alice is gone")
	expectRoomMessage(t, c, "#haskell", "bob", "alice is gone")
	a.ExpectNothing(quiet)

	b.Close() // a disconnect leaves every room
	expectUser(t, c, "LeftRoom", "#haskell", "bob")
	join(t, a, "#haskell", "alice", "alice", "carol")
	expectUser(t, c, "JoinedRoom", "#haskell", "alice")
}

func TestJoiningTwiceIsIdempotent(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Dial(t, n.WS()+"?user=alice")
	b := wstest.Dial(t, n.WS()+"?user=bob")
	join(t, a, "#r", "alice", "alice")
	join(t, b, "#r", "bob", "alice", "bob")
	expectUser(t, a, "JoinedRoom", "#r", "bob")

	join(t, b, "#r", "bob", "alice", "bob") // again: same answer to bob…
	a.ExpectNothing(quiet)                  // …and nobody else is told

	say(a, "#r", "once")
	expectRoomMessage(t, b, "#r", "alice", "once")
	b.ExpectNothing(quiet) // one membership, one copy
}

// TestTabsOfOneUser: a user with two connections is one member. Only the
// first connection's join and the last one's leave are announced.
func TestTabsOfOneUser(t *testing.T) {
	n := startNode(t, nil)
	watcher := wstest.Dial(t, n.WS()+"?user=watcher")
	join(t, watcher, "#r", "watcher", "watcher")

	tab1 := wstest.Dial(t, n.WS()+"?user=alice")
	tab2 := wstest.Dial(t, n.WS()+"?user=alice")
	join(t, tab1, "#r", "alice", "alice", "watcher")
	expectUser(t, watcher, "JoinedRoom", "#r", "alice")
	join(t, tab2, "#r", "alice", "alice", "watcher")
	watcher.ExpectNothing(quiet)
	tab1.ExpectNothing(quiet)

	say(watcher, "#r", "both tabs")
	for _, c := range []*wstest.Client{watcher, tab1, tab2} {
		expectRoomMessage(t, c, "#r", "watcher", "both tabs")
	}

	tab1.Close()
	watcher.ExpectNothing(quiet)
	tab2.Close()
	expectUser(t, watcher, "LeftRoom", "#r", "alice")
}

func TestRoomsAreIsolated(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Dial(t, n.WS()+"?user=a")
	b := wstest.Dial(t, n.WS()+"?user=b")
	join(t, a, "#one", "a", "a")
	join(t, b, "#two", "b", "b")
	say(a, "#one", "for one")
	expectRoomMessage(t, a, "#one", "a", "for one")
	b.ExpectNothing(quiet)
}

func TestMessagesFromOneClientKeepTheirOrder(t *testing.T) {
	n := startNode(t, map[string]string{"RATE_LIMIT": "10000", "RATE_BURST": "10000"})
	a := wstest.Dial(t, n.WS()+"?user=a")
	b := wstest.Dial(t, n.WS()+"?user=b")
	join(t, a, "#o", "a", "a")
	join(t, b, "#o", "b", "a", "b")
	expectUser(t, a, "JoinedRoom", "#o", "b")
	const count = 500
	for i := range count {
		say(a, "#o", strconv.Itoa(i))
	}
	prev := ""
	for i := range count {
		m := expectRoomMessage(t, b, "#o", "a", strconv.Itoa(i))
		if prev != "" && broker.CompareIDs(m.ID, prev) <= 0 {
			t.Fatalf("id %s after %s", m.ID, prev)
		}
		prev = m.ID
	}
}
