package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/testbackend"
	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

const apiKey = "backend-api-key"

// twoNodes starts two nodes on one real Redis with the API key set (and
// webhooks to b when b is not nil).
func twoNodes(t *testing.T, b *testbackend.Backend) (holder, caller *testnode.Node) {
	t.Helper()
	srv := testredis.Start(t)
	env := map[string]string{"REDIS_URL": srv.URL(), "SERVER_API_KEY": apiKey, "CONNECTION_TTL": "3s"}
	if b != nil {
		env = backendEnv(b, env)
	}
	cfg := testnode.Config(t, env)
	return testnode.StartRedis(t, cfg), testnode.StartRedis(t, cfg)
}

var withKey = http.Header{"Authorization": {"Bearer " + apiKey}}

// call makes an API request with the key and decodes a JSON answer.
func call(t *testing.T, n *testnode.Node, method, path, body string, want int, out any) {
	t.Helper()
	status, got := n.Do(t, method, path, body, withKey)
	if status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, got, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(got), out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, path, got, err)
		}
	}
}

// TestServerAPIAcrossNodes drives every backend route on the node that
// holds none of the sockets: the commands reach the holder through Redis.
func TestServerAPIAcrossNodes(t *testing.T) {
	holder, caller := twoNodes(t, nil)
	room := url.PathEscape("#lobby")
	alice1, hello := wstest.Connect(t, holder.WS()+"?user=alice")
	alice2 := wstest.Open(t, holder.WS()+"?user=alice")
	bob := wstest.Open(t, holder.WS()+"?user=bob")
	bob.Join("#lobby", "bob", "bob")

	// Join every connection of alice server-side: both tabs get the join
	// acknowledgement, bob hears of alice once.
	var joined struct{ Connections int }
	call(t, caller, "POST", "/users/alice/rooms/"+room, "", http.StatusAccepted, &joined)
	if joined.Connections != 2 {
		t.Errorf("join reached %d connections, want 2", joined.Connections)
	}
	for _, c := range []*wstest.Client{alice1, alice2} {
		c.Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
		c.ExpectRoomUser(protocol.TypeJoinedRoom, "#lobby", "alice")
	}
	bob.ExpectRoomUser(protocol.TypeJoinedRoom, "#lobby", "alice")

	// Post into the room: every member gets it, stored under the id.
	var posted struct{ ID string }
	call(t, caller, "POST", "/rooms/"+room+"/messages", `{"message":"maintenance at noon"}`, http.StatusCreated, &posted)
	for _, c := range []*wstest.Client{alice1, alice2, bob} {
		if m := c.ExpectRoomMessage("#lobby", "server", "maintenance at noon"); m.ID != posted.ID || posted.ID == "" {
			t.Errorf("message id %q, API answered %q", m.ID, posted.ID)
		}
	}
	call(t, caller, "POST", "/rooms/"+room+"/messages", `{"message":"hi","user":"ops"}`, http.StatusCreated, nil)
	for _, c := range []*wstest.Client{alice1, alice2, bob} {
		c.ExpectRoomMessage("#lobby", "ops", "hi")
	}

	// Members and active rooms, paged.
	var members protocol.Members
	call(t, caller, "GET", "/rooms/"+room+"/members?limit=1", "", http.StatusOK, &members)
	if members.Room != "#lobby" || members.Count != 2 || len(members.Users) != 1 || members.Users[0] != "alice" || members.Next != "alice" {
		t.Errorf("first members page = %+v", members)
	}
	members = protocol.Members{}
	call(t, caller, "GET", "/rooms/"+room+"/members?after=alice", "", http.StatusOK, &members)
	if strings.Join(members.Users, ",") != "bob" || members.Next != "" {
		t.Errorf("second members page = %+v", members)
	}
	bob.Join("#quiet", "bob", "bob")
	var rooms struct {
		Rooms []struct {
			Room  string
			Count int
		}
		Next string
	}
	call(t, caller, "GET", "/rooms?limit=1", "", http.StatusOK, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != "#lobby" || rooms.Rooms[0].Count != 2 || rooms.Next != "#lobby" {
		t.Errorf("first rooms page = %+v", rooms)
	}
	after := rooms.Next
	rooms.Rooms, rooms.Next = nil, ""
	call(t, caller, "GET", "/rooms?after="+url.QueryEscape(after), "", http.StatusOK, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != "#quiet" || rooms.Rooms[0].Count != 1 || rooms.Next != "" {
		t.Errorf("second rooms page = %+v", rooms)
	}

	// One connection: described, pushed to, closed.
	var info struct {
		ID, User, Node            string
		ConnectedAt, LastActivity time.Time
		Rooms                     []string
	}
	wait.For(t, 5*time.Second, "the directory lists alice's room", func() bool {
		call(t, caller, "GET", "/connections/"+hello.Connection, "", http.StatusOK, &info)
		return len(info.Rooms) == 1 && info.Rooms[0] == "#lobby"
	})
	if info.ID != hello.Connection || info.User != "alice" || info.Node != holder.Node.ID || info.ConnectedAt.IsZero() || time.Since(info.ConnectedAt) > time.Minute {
		t.Errorf("GET /connections = %+v", info)
	}
	call(t, caller, "PUT", "/connections/"+hello.Connection, `{"channel":"notice","message":{"type":"Hello","contents":{"n":1}}}`, http.StatusNoContent, nil)
	if f := alice1.Expect("notice", "Hello"); !strings.Contains(f.String(), `"n":1`) {
		t.Errorf("pushed frame = %s", f)
	}
	alice2.Barrier() // only the one connection got it
	call(t, caller, "DELETE", "/connections/"+hello.Connection, "", http.StatusNoContent, nil)
	if code, _ := alice1.ExpectClose(); code != websocket.StatusNormalClosure {
		t.Errorf("closed with %d, want 1000", code)
	}
	wait.For(t, 5*time.Second, "the closed connection is unknown", func() bool {
		status, _ := caller.Do(t, "GET", "/connections/"+hello.Connection, "", withKey)
		return status == http.StatusNotFound
	})
	call(t, caller, "PUT", "/connections/"+hello.Connection, `{"channel":"x","message":{"type":"Y"}}`, http.StatusNotFound, nil)
	call(t, caller, "DELETE", "/connections/"+hello.Connection, "", http.StatusNotFound, nil)

	// Remove alice's remaining tab from the room, then close all of hers.
	call(t, caller, "DELETE", "/users/alice/rooms/"+room, "", http.StatusAccepted, &joined)
	if joined.Connections != 1 {
		t.Errorf("leave reached %d connections, want 1", joined.Connections)
	}
	alice2.ExpectRoomUser(protocol.TypeLeftRoom, "#lobby", "alice")
	bob.ExpectRoomUser(protocol.TypeLeftRoom, "#lobby", "alice")
	var closed struct{ Closed int }
	call(t, caller, "DELETE", "/users/alice/connections", `{"code":4001,"reason":"account revoked"}`, http.StatusOK, &closed)
	if closed.Closed != 1 {
		t.Errorf("closed %d connections, want 1", closed.Closed)
	}
	if code, reason := alice2.ExpectClose(); code != 4001 || reason != "account revoked" {
		t.Errorf("closed with %d %q, want 4001 account revoked", code, reason)
	}
	call(t, caller, "DELETE", "/users/nobody/connections", "", http.StatusOK, &closed)
	if closed.Closed != 0 {
		t.Errorf("closed %d connections of a user without any", closed.Closed)
	}
	bob.Barrier()
}

// TestServerAPIRefusals: every backend route wants the API key, and bad
// input is answered 400 with a JSON message.
func TestServerAPIRefusals(t *testing.T) {
	_, caller := twoNodes(t, nil)
	routes := []struct{ method, path string }{
		{"GET", "/rooms"},
		{"POST", "/rooms/r/messages"},
		{"GET", "/rooms/r/members"},
		{"DELETE", "/users/u/connections"},
		{"POST", "/users/u/rooms/r"},
		{"DELETE", "/users/u/rooms/r"},
		{"GET", "/connections/c"},
		{"PUT", "/connections/c"},
		{"DELETE", "/connections/c"},
	}
	for _, r := range routes {
		status, body := caller.Do(t, r.method, r.path, "", nil)
		if status != http.StatusUnauthorized || !strings.Contains(body, `"message"`) {
			t.Errorf("%s %s without the key = %d %s, want 401 with a JSON message", r.method, r.path, status, body)
		}
	}
	bad := []struct{ method, path, body string }{
		{"POST", "/rooms/r/messages", `{"message":`},
		{"POST", "/rooms/r/messages", `{"user":"x"}`},
		{"POST", "/rooms/r/messages", `{"message":"m","user":"bad\u0001"}`},
		{"POST", "/rooms/" + strings.Repeat("r", 200) + "/messages", `{"message":"m"}`},
		{"GET", "/rooms/r/members?limit=0", ""},
		{"GET", "/rooms?limit=x", ""},
		{"DELETE", "/users/u/connections", `{"code":1005}`},
		{"DELETE", "/users/u/connections", `{"code":"x"}`},
		{"DELETE", "/users/u/connections", `{"reason":"` + strings.Repeat("r", 124) + `"}`},
		{"PUT", "/connections/c", `{"channel":"x"}`},
		{"PUT", "/connections/c", `not json`},
		{"DELETE", "/connections/c", `{"code":999}`},
	}
	for _, r := range bad {
		status, body := caller.Do(t, r.method, r.path, r.body, withKey)
		var msg struct{ Message string }
		if err := json.Unmarshal([]byte(body), &msg); status != http.StatusBadRequest || err != nil || msg.Message == "" {
			t.Errorf("%s %s %s = %d %s, want 400 with a JSON message", r.method, r.path, r.body, status, body)
		}
	}
	call(t, caller, "GET", "/connections/nope", "", http.StatusNotFound, nil)
}

// TestServerAPIEmbedded: the same routes work on a single node with the
// embedded broker and in-memory directory.
func TestServerAPIEmbedded(t *testing.T) {
	n := startNode(t, map[string]string{"SERVER_API_KEY": apiKey})
	c, hello := wstest.Connect(t, n.WS()+"?user=dana")
	call(t, n, "POST", "/users/dana/rooms/lobby", "", http.StatusAccepted, nil)
	c.Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
	c.ExpectRoomUser(protocol.TypeJoinedRoom, "lobby", "dana")
	call(t, n, "POST", "/rooms/lobby/messages", `{"message":"hi"}`, http.StatusCreated, nil)
	c.ExpectRoomMessage("lobby", "server", "hi")
	var rooms struct{ Rooms []struct{ Room string } }
	call(t, n, "GET", "/rooms", "", http.StatusOK, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != "lobby" {
		t.Errorf("rooms = %+v", rooms)
	}
	call(t, n, "DELETE", "/connections/"+hello.Connection, "", http.StatusNoContent, nil)
	if code, _ := c.ExpectClose(); code != websocket.StatusNormalClosure {
		t.Errorf("closed with %d", code)
	}
}
