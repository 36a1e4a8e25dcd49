package server_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// quiet is how long tests wait to be sure a frame does not come, where
// no barrier can show it (see wstest.Client.Barrier).
const quiet = 200 * time.Millisecond

// TestRoomWalkThrough follows the original prototype's README: join, member
// list, isolation of non-members, a second joiner, leave, disconnect.
func TestRoomWalkThrough(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Open(t, n.WS()+"?user=alice")
	b := wstest.Open(t, n.WS()+"?user=bob")
	c := wstest.Open(t, n.WS()+"?user=carol")

	a.Join("#haskell", "alice", "alice")
	a.Say("#haskell", "Monad monoid category whatever")
	a.ExpectRoomMessage("#haskell", "alice", "Monad monoid category whatever")

	// b is no member: the strict replies of its join would fail on a
	// NewMessage queued for it first.
	b.Join("#haskell", "bob", "alice", "bob")
	a.ExpectRoomUser("JoinedRoom", "#haskell", "bob")

	b.Say("#haskell", "hi")
	a.ExpectRoomMessage("#haskell", "bob", "hi")
	b.ExpectRoomMessage("#haskell", "bob", "hi")

	c.Join("#haskell", "carol", "alice", "bob", "carol")
	a.ExpectRoomUser("JoinedRoom", "#haskell", "carol")
	b.ExpectRoomUser("JoinedRoom", "#haskell", "carol")

	a.Send("chat-room", "LeaveRoom", protocol.RoomRef{Room: "#haskell"})
	a.ExpectRoomUser("LeftRoom", "#haskell", "alice") // the leaver's acknowledgement
	b.ExpectRoomUser("LeftRoom", "#haskell", "alice")
	c.ExpectRoomUser("LeftRoom", "#haskell", "alice")

	b.Say("#haskell", "alice is gone")
	b.ExpectRoomMessage("#haskell", "bob", "alice is gone")
	c.ExpectRoomMessage("#haskell", "bob", "alice is gone")
	a.Barrier()

	b.Close() // a disconnect leaves every room
	c.ExpectRoomUser("LeftRoom", "#haskell", "bob")
	a.Join("#haskell", "alice", "alice", "carol")
	c.ExpectRoomUser("JoinedRoom", "#haskell", "alice")
}

func TestJoiningTwiceIsIdempotent(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Open(t, n.WS()+"?user=alice")
	b := wstest.Open(t, n.WS()+"?user=bob")
	a.Join("#r", "alice", "alice")
	b.Join("#r", "bob", "alice", "bob")
	a.ExpectRoomUser("JoinedRoom", "#r", "bob")

	b.Join("#r", "bob", "alice", "bob") // again: same answer to bob…
	a.Barrier()                         // …and nobody else is told

	a.Say("#r", "once")
	b.ExpectRoomMessage("#r", "alice", "once")
	b.Barrier() // one membership, one copy
}

// TestTabsOfOneUser: a user with two connections is one member. Only the
// first connection's join and the last one's leave are announced.
func TestTabsOfOneUser(t *testing.T) {
	n := startNode(t, nil)
	watcher := wstest.Open(t, n.WS()+"?user=watcher")
	watcher.Join("#r", "watcher", "watcher")

	tab1 := wstest.Open(t, n.WS()+"?user=alice")
	tab2 := wstest.Open(t, n.WS()+"?user=alice")
	tab1.Join("#r", "alice", "alice", "watcher")
	watcher.ExpectRoomUser("JoinedRoom", "#r", "alice")
	tab2.Join("#r", "alice", "alice", "watcher")
	watcher.Barrier()
	tab1.Barrier()

	watcher.Say("#r", "both tabs")
	for _, c := range []*wstest.Client{watcher, tab1, tab2} {
		c.ExpectRoomMessage("#r", "watcher", "both tabs")
	}

	tab1.Close()
	// Once the node is done with tab1 (its leave is decided by then),
	// watcher is told nothing.
	wait.For(t, wstest.Timeout, "the node closes tab1", func() bool { return n.Server.Connections() == 2 })
	watcher.Barrier()
	tab2.Close()
	watcher.ExpectRoomUser("LeftRoom", "#r", "alice")
}

func TestRoomsAreIsolated(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Open(t, n.WS()+"?user=a")
	b := wstest.Open(t, n.WS()+"?user=b")
	a.Join("#one", "a", "a")
	b.Join("#two", "b", "b")
	a.Say("#one", "for one")
	a.ExpectRoomMessage("#one", "a", "for one")
	b.Barrier()
}

func TestMessagesFromOneClientKeepTheirOrder(t *testing.T) {
	n := startNode(t, map[string]string{"RATE_LIMIT": "10000", "RATE_BURST": "10000"})
	a := wstest.Open(t, n.WS()+"?user=a")
	b := wstest.Open(t, n.WS()+"?user=b")
	a.Join("#o", "a", "a")
	b.Join("#o", "b", "a", "b")
	a.ExpectRoomUser("JoinedRoom", "#o", "b")
	const count = 500
	for i := range count {
		a.Say("#o", strconv.Itoa(i))
	}
	prev := ""
	for i := range count {
		m := b.ExpectRoomMessage("#o", "a", strconv.Itoa(i))
		if prev != "" && broker.CompareIDs(m.ID, prev) <= 0 {
			t.Fatalf("id %s after %s", m.ID, prev)
		}
		prev = m.ID
	}
}
