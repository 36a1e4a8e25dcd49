package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/protocol"
)

// TestDialGreeting: Dial returns once greeted, with the user and
// connection id the server named, in open and authenticated modes.
func TestDialGreeting(t *testing.T) {
	open := memoryNode(t, nil)
	auth := authNode(t)
	cases := []struct {
		name     string
		url      string
		opts     func(t *testing.T) Options
		wantUser string
	}{
		{"open named", open.WS() + "?user=alice", func(*testing.T) Options { return Options{} }, "alice"},
		{"open anonymous", open.WS(), func(*testing.T) Options { return Options{} }, ""},
		{"token", auth.WS(), func(t *testing.T) Options { return Options{Token: mintTicket(t, auth, "bob")} }, "bob"},
		{"get token", auth.WS(), func(t *testing.T) Options {
			return Options{GetToken: func(ctx context.Context) (string, error) { return mintTicket(t, auth, "carol"), nil }}
		}, "carol"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(testCtx(t), tc.url, tc.opts(t))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if tc.wantUser != "" && c.User() != tc.wantUser {
				t.Errorf("User() = %q, want %q", c.User(), tc.wantUser)
			}
			if c.User() == "" || c.ConnectionID() == "" {
				t.Errorf("greeting user %q connection %q", c.User(), c.ConnectionID())
			}
		})
	}
}

// TestDialRefused: a refused ticket is a Dial error carrying the server's
// 1008 close, and a refusal is terminal for reconnecting.
func TestDialRefused(t *testing.T) {
	n := authNode(t)
	cases := []struct {
		name, token, reason string
	}{
		{"bad signature", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.AAAA", ""},
		{"garbage", "not-a-ticket", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Dial(testCtx(t), n.WS(), Options{Token: tc.token})
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded with a bad ticket")
			}
			if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
				t.Fatalf("Dial error %v has close status %d, want 1008", err, got)
			}
			if !terminal(err) {
				t.Errorf("terminal(%v) = false", err)
			}
		})
	}
}

// TestErrorReplies: refusals come back from the typed methods as
// *protocol.Error with the server's code, and the connection keeps
// working.
func TestErrorReplies(t *testing.T) {
	n := memoryNode(t, map[string]string{"MAX_ROOMS": "1", "HISTORY_SIZE": "0"})
	c := dial(t, n, "alice")
	ctx := testCtx(t)
	if _, _, err := c.Join(ctx, "first", JoinOptions{}); err != nil {
		t.Fatalf("Join: %v", err)
	}
	cases := []struct {
		name string
		call func() error
		want protocol.Code
	}{
		{"empty room name", func() error { _, _, err := c.Join(ctx, "", JoinOptions{}); return err }, protocol.CodeInvalidContents},
		{"too many rooms", func() error { _, _, err := c.Join(ctx, "second", JoinOptions{}); return err }, protocol.CodeTooManyRooms},
		{"send to a room not joined", func() error { _, err := c.SendMessage(ctx, "elsewhere", "hi"); return err }, protocol.CodeNotMember},
		{"history disabled", func() error { _, err := c.History(ctx, protocol.GetHistory{Room: "first"}); return err }, protocol.CodeHistoryDisabled},
		{"leave a room not joined", func() error { return c.Leave(ctx, "elsewhere") }, protocol.CodeNotMember},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var perr *protocol.Error
			if !errors.As(err, &perr) {
				t.Fatalf("got %v (%T), want a *protocol.Error", err, err)
			}
			if perr.Code != tc.want {
				t.Fatalf("code %q (%s), want %q", perr.Code, perr.Message, tc.want)
			}
		})
	}
	if _, _, err := c.Join(ctx, "first", JoinOptions{}); err != nil {
		t.Fatalf("Join after errors: %v", err)
	}
}

// TestRoomsAcrossNodes: two clients on two nodes sharing Redis join a
// room, see each other, exchange messages, page history and leave.
func TestRoomsAcrossNodes(t *testing.T) {
	nodes := redisNodes(t, 2)
	alice := dial(t, nodes[0], "alice")
	bob := dial(t, nodes[1], "bob")
	ctx := testCtx(t)

	list, joined, err := alice.Join(ctx, "#go", JoinOptions{})
	if err != nil {
		t.Fatalf("alice Join: %v", err)
	}
	if list.Room != "#go" || !slices.Equal(list.Users, []string{"alice"}) || joined.User != "alice" {
		t.Fatalf("alice joined %+v %+v", list, joined)
	}
	list, _, err = bob.Join(ctx, "#go", JoinOptions{})
	if err != nil {
		t.Fatalf("bob Join: %v", err)
	}
	if !slices.Equal(list.Users, []string{"alice", "bob"}) {
		t.Fatalf("bob's MemberList %+v", list)
	}
	var seen protocol.RoomUser
	if err := next(t, alice, protocol.ChannelChatRoom, protocol.TypeJoinedRoom).Decode(&seen); err != nil || seen.User != "bob" {
		t.Fatalf("alice saw %+v, %v; want bob's JoinedRoom", seen, err)
	}

	texts := []string{"one", "two <&> three"}
	for _, text := range texts {
		if _, err := alice.SendMessage(ctx, "#go", text); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	var ids []string
	for _, text := range texts {
		m := nextMessage(t, bob)
		if m.Room != "#go" || m.User != "alice" || m.Message != text || m.ID == "" {
			t.Fatalf("bob got %+v, want %q from alice", m, text)
		}
		ids = append(ids, m.ID)
		if mine := nextMessage(t, alice); mine.ID != m.ID {
			t.Fatalf("alice got her message as %q, bob as %q", mine.ID, m.ID)
		}
	}
	if CompareIDs(ids[0], ids[1]) >= 0 {
		t.Fatalf("ids %v not increasing", ids)
	}

	h, err := bob.History(ctx, protocol.GetHistory{Room: "#go", Since: ids[0]})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(h.Messages) != 1 || !h.Complete {
		t.Fatalf("History since %s = %d messages, complete %v", ids[0], len(h.Messages), h.Complete)
	}

	if err := bob.Leave(ctx, "#go"); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := next(t, alice, protocol.ChannelChatRoom, protocol.TypeLeftRoom).Decode(&seen); err != nil || seen.User != "bob" {
		t.Fatalf("alice saw %+v, %v; want bob's LeftRoom", seen, err)
	}
}

// TestConcurrentRequests: joins of many rooms from many goroutines at
// once each get their own room's answer, by ref or, on a server that
// echoes none, by room.
func TestConcurrentRequests(t *testing.T) {
	n := memoryNode(t, nil)
	c := dial(t, n, "alice")
	ctx := testCtx(t)
	const rooms = 20
	var wg sync.WaitGroup
	errs := make(chan error, rooms)
	for i := range rooms {
		wg.Go(func() {
			room := "room-" + strings.Repeat("x", i)
			list, joined, err := c.Join(ctx, room, JoinOptions{})
			switch {
			case err != nil:
				errs <- err
			case list.Room != room || joined.Room != room:
				errs <- errors.New("join of " + room + " answered for " + list.Room + "/" + joined.Room)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestRefEcho: against a server that echoes refs, replies carry the
// request's ref, SendMessage returns the stored id, and errors come back
// to the request that caused them while others are in flight.
func TestRefEcho(t *testing.T) {
	n := memoryNode(t, nil)
	requireRefEcho(t, n)
	c := dial(t, n, "alice")
	ctx := testCtx(t)
	if _, _, err := c.Join(ctx, "#refs", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if echoed, known := c.EchoesRefs(); !echoed || !known {
		t.Fatalf("EchoesRefs() = %v, %v after a join", echoed, known)
	}
	id, err := c.SendMessage(ctx, "#refs", "hello")
	if err != nil || id == "" {
		t.Fatalf("SendMessage = %q, %v; want an id", id, err)
	}
	if m := nextMessage(t, c); m.ID != id {
		t.Fatalf("NewMessage id %q, Sent id %q", m.ID, id)
	}
	var wg sync.WaitGroup
	var sendErr, joinErr error
	wg.Go(func() { _, sendErr = c.SendMessage(ctx, "#not-joined", "x") })
	wg.Go(func() { _, _, joinErr = c.Join(ctx, "#refs-2", JoinOptions{}) })
	wg.Wait()
	var perr *protocol.Error
	if !errors.As(sendErr, &perr) || perr.Code != protocol.CodeNotMember {
		t.Errorf("SendMessage to a room not joined: %v", sendErr)
	}
	if joinErr != nil {
		t.Errorf("concurrent Join: %v", joinErr)
	}
	if err := c.SendRef(ctx, "mine", protocol.ChannelChatRoom, protocol.TypeLeaveRoom, protocol.RoomRef{Room: "#nowhere"}); err != nil {
		t.Fatal(err)
	}
	if f := next(t, c, protocol.ChannelChatRoom, protocol.TypeError); f.Ref != "mine" {
		t.Errorf("Error answering SendRef came as %s, want ref %q", f, "mine")
	}
}

// TestNoRefEcho: against a server that does not echo refs, SendMessage
// takes its id from the sender's own copy of the message, which Next
// still returns.
func TestNoRefEcho(t *testing.T) {
	n := memoryNode(t, nil)
	c := dial(t, n, "alice")
	ctx := testCtx(t)
	if _, _, err := c.Join(ctx, "#plain", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	echoed, known := c.EchoesRefs()
	if !known {
		t.Fatal("EchoesRefs unknown after a join")
	}
	if echoed {
		t.Skip("the server echoes refs: TestRefEcho covers it")
	}
	id, err := c.SendMessage(ctx, "#plain", "hello")
	if err != nil || id == "" {
		t.Fatalf("SendMessage = %q, %v; want an id", id, err)
	}
	if m := nextMessage(t, c); m.Message != "hello" || m.ID != id {
		t.Fatalf("got %+v, want hello with id %s", m, id)
	}
}

// TestCloseEndsNext: Close stops the reader; Next returns what was
// received before, then ErrClosed, and requests fail with ErrClosed.
func TestCloseEndsNext(t *testing.T) {
	n := memoryNode(t, nil)
	c := dial(t, n, "alice")
	ctx := testCtx(t)
	if _, _, err := c.Join(ctx, "#bye", JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, "#bye", "last"); err != nil {
		t.Fatal(err)
	}
	// Wait for the message to be queued, then close.
	m := nextMessage(t, c)
	if m.Message != "last" {
		t.Fatalf("got %+v", m)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	if _, _, err := c.Join(ctx, "#bye", JoinOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close: %v, want ErrClosed", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}
