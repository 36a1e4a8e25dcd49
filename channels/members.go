package channels

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// rosterTTL is how long a large room's MemberList is reused: a join storm
// into one room costs one member read per node per rosterTTL, not one per
// joiner. Small rooms are read afresh on every join, so that their lists
// stay exact.
const rosterTTL = time.Second

// memberList is a room's MemberList contents, encoded once.
type memberList struct {
	room     string
	contents json.RawMessage
}

// frame is the MemberList envelope answering a JoinRoom that carried ref.
func (l memberList) frame(ref string) []byte {
	return protocol.EncodeReply(protocol.ChannelChatRoom, ref, protocol.TypeMemberList, l.contents)
}

// memberList reads the room's member list: every user of a small room,
// or, from LARGE_ROOM users on, the first MEMBER_PAGE names with the
// room's count, cached for rosterTTL.
func (cr *ChatRoom) memberList(ctx context.Context, room string) (memberList, error) {
	if l, ok := cr.rosters.get(room); ok {
		return l, nil
	}
	large := cr.limits.LargeRoom
	page, err := cr.broker.Members(ctx, RoomTopic(room), broker.MembersQuery{Limit: large})
	if err != nil {
		return memberList{}, brokerError(err)
	}
	list := protocol.MemberList{Room: room, Users: page.Users}
	if list.Users == nil {
		list.Users = []string{} // the protocol shows an empty list as [], never null
	}
	isLarge := large > 0 && page.Count >= large
	if isLarge {
		list.Users = list.Users[:min(len(list.Users), cr.limits.MemberPage)]
		list.Count, list.Truncated = page.Count, true
	}
	contents, err := json.Marshal(list)
	if err != nil {
		return memberList{}, err
	}
	l := memberList{room: room, contents: contents}
	if isLarge {
		cr.rosters.put(room, l)
	}
	return l, nil
}

// getMembers answers GetMembers with a page of a joined room's users.
func (cr *ChatRoom) getMembers(ctx context.Context, c Client, ref string, req protocol.GetMembers) error {
	if !cr.isMember(c, req.Room) {
		return notMember(req.Room)
	}
	out, err := cr.Members(ctx, req)
	if err != nil {
		return err
	}
	return reply(ctx, c, ref, protocol.TypeMembers, out)
}

// Members reads a page of a room's users in name order, for members
// (GetMembers) and for the server API alike: after req.After, at most
// req.Limit (0 or more than MEMBER_PAGE: MEMBER_PAGE) of them, with the
// room's count and the next page's after.
func (cr *ChatRoom) Members(ctx context.Context, req protocol.GetMembers) (protocol.Members, error) {
	limit := req.Limit
	switch {
	case limit < 0:
		return protocol.Members{}, protocol.Errorf(protocol.CodeInvalidContents, "limit must be positive")
	case limit == 0 || limit > cr.limits.MemberPage:
		limit = cr.limits.MemberPage
	}
	// One name more than asked tells whether a next page exists.
	page, err := cr.broker.Members(ctx, RoomTopic(req.Room), broker.MembersQuery{After: req.After, Limit: limit + 1})
	if err != nil {
		return protocol.Members{}, brokerError(err)
	}
	out := protocol.Members{Room: req.Room, Users: page.Users, Count: page.Count}
	if len(out.Users) > limit {
		out.Users = out.Users[:limit]
		out.Next = out.Users[limit-1]
	}
	if out.Users == nil {
		out.Users = []string{}
	}
	return out, nil
}

// rosterCache keeps large rooms' member lists for a short while.
type rosterCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]rosterEntry
}

type rosterEntry struct {
	list    memberList
	expires time.Time
}

func newRosterCache(ttl time.Duration) *rosterCache {
	return &rosterCache{ttl: ttl, now: time.Now, entries: make(map[string]rosterEntry)}
}

func (rc *rosterCache) get(room string) (memberList, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	e, ok := rc.entries[room]
	if !ok {
		return memberList{}, false
	}
	if rc.now().After(e.expires) {
		delete(rc.entries, room)
		return memberList{}, false
	}
	return e.list, true
}

func (rc *rosterCache) put(room string, l memberList) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	now := rc.now()
	for r, e := range rc.entries { // expired entries go as new ones come
		if now.After(e.expires) {
			delete(rc.entries, r)
		}
	}
	rc.entries[room] = rosterEntry{list: l, expires: now.Add(rc.ttl)}
}
