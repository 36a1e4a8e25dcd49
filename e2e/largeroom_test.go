package e2e

import (
	"slices"
	"testing"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// TestLargeRoomAcrossNodes: from LARGE_ROOM users on, a room spanning two
// nodes announces no joins or leaves, the joiner's MemberList is cut to
// MEMBER_PAGE names with the count, and GetMembers pages through everyone
// exactly once, whichever node answers.
func TestLargeRoomAcrossNodes(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, map[string]string{"LARGE_ROOM": "3", "MEMBER_PAGE": "2"})
	const room, cr = "#big", protocol.ChannelChatRoom
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	clients := make([]*wstest.Client, len(users))
	for i, u := range users {
		clients[i] = wstest.Open(t, ns[i%2].WS()+"?user="+u)
		clients[i].Send(cr, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room})
		var list protocol.MemberList
		clients[i].Expect(cr, protocol.TypeMemberList).Decode(t, &list)
		clients[i].Expect(cr, protocol.TypeJoinedRoom)
		// With the joiner in, a room of 3 or more is large.
		if i+1 < 3 {
			if !slices.Equal(list.Users, users[:i+1]) || list.Truncated || list.Count != 0 {
				t.Fatalf("%s's MemberList = %+v, want every user of a small room", u, list)
			}
		} else if !list.Truncated || list.Count < 3 || list.Count > i+1 || !slices.Equal(list.Users, users[:2]) {
			// A large room's list is cached by each node for a second, so
			// its count may lag behind the joins just made.
			t.Fatalf("%s's MemberList = %+v, want the first 2 names of a large room of 3 to %d", u, list, i+1)
		}
		// A join into a room of fewer than 3 users is announced.
		if i < 3 {
			for _, earlier := range clients[:i] {
				earlier.ExpectRoomUser(protocol.TypeJoinedRoom, room, u)
			}
		}
	}
	for _, c := range clients {
		c.Barrier() // nobody heard of u4 or u5 joining
	}

	// GetMembers pages through everyone, on either node.
	var seen []string
	after := ""
	for page := 0; page < 5; page++ {
		c := clients[page%2]
		c.SendRef(cr, "p", protocol.TypeGetMembers, protocol.GetMembers{Room: room, After: after})
		var m protocol.Members
		c.Expect(cr, protocol.TypeMembers).Decode(t, &m)
		if m.Count != len(users) || len(m.Users) > 2 {
			t.Fatalf("page %d = %+v", page, m)
		}
		seen = append(seen, m.Users...)
		if m.Next == "" {
			break
		}
		after = m.Next
	}
	if !slices.Equal(seen, users) {
		t.Fatalf("paged through %v, want %v", seen, users)
	}

	// Leaving a large room is not announced either.
	clients[4].Send(cr, protocol.TypeLeaveRoom, protocol.RoomRef{Room: room})
	clients[4].Expect(cr, protocol.TypeLeftRoom)
	for _, c := range clients[:4] {
		c.Barrier()
	}
}
