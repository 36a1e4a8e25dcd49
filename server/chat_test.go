package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

func startNode(t *testing.T, env map[string]string) *testnode.Node {
	t.Helper()
	return testnode.StartMemory(t, testnode.Config(t, env))
}

func TestChatReachesEveryClientIncludingSender(t *testing.T) {
	n := startNode(t, nil)
	a, b := wstest.Open(t, n.WS()), wstest.Open(t, n.WS())

	a.SendRaw(`{"channel":"chat","message":{"type":"SubmitMessage","contents":"Hello World"}}`)
	for _, c := range []*wstest.Client{a, b} {
		var got protocol.ChatMessage
		c.Expect("chat", "NewMessageReceived").Decode(t, &got)
		if got.Content != "Hello World" {
			t.Errorf("content = %q", got.Content)
		}
		posted, err := time.Parse(time.RFC3339Nano, got.PostedAt)
		if err != nil || posted.Location() != time.UTC || time.Since(posted) > time.Minute {
			t.Errorf("postedAt %q is not a recent RFC 3339 UTC time (%v)", got.PostedAt, err)
		}
		if got.ID == "" {
			t.Errorf("chat message has no id")
		}
	}
}

func TestPingRoutesReachEveryClient(t *testing.T) {
	n := startNode(t, nil)
	a, b := wstest.Open(t, n.WS()), wstest.Open(t, n.WS())
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/ping1", 1},
		{http.MethodPost, "/ping2", 2},
		{http.MethodGet, "/ping2", 2},
	} {
		status, body := n.Do(t, tc.method, tc.path, "", nil)
		if status != http.StatusOK {
			t.Fatalf("%s %s = %d %s", tc.method, tc.path, status, body)
		}
		for _, c := range []*wstest.Client{a, b} {
			var got int
			c.Expect("ping", "Ping").Decode(t, &got)
			if got != tc.want {
				t.Errorf("%s: Ping %d, want %d", tc.path, got, tc.want)
			}
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	n := startNode(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := n.Do(t, http.MethodGet, path, "", nil); status != http.StatusOK {
			t.Errorf("GET %s = %d %s", path, status, body)
		}
	}
}

func TestBinaryFramesAreReadAsTextAndAnsweredInText(t *testing.T) {
	n := startNode(t, nil)
	c := wstest.Open(t, n.WS())
	c.SendBytes(2 /* websocket.MessageBinary */, []byte(`{"channel":"chat","message":{"type":"SubmitMessage","contents":"bin"}}`))
	var got protocol.ChatMessage
	c.Expect("chat", "NewMessageReceived").Decode(t, &got)
	if got.Content != "bin" {
		t.Errorf("content = %q", got.Content)
	}
}

func TestNamedUserInOpenMode(t *testing.T) {
	n := startNode(t, nil)
	c := wstest.Open(t, n.WS()+"?user=alice")
	c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: "#r"})
	var list protocol.MemberList
	c.Expect("chat-room", "MemberList").Decode(t, &list)
	if len(list.Users) != 1 || list.Users[0] != "alice" {
		t.Errorf("members = %v, want [alice]", list.Users)
	}

	if _, resp, err := wstest.DialErr(t, n.WS()+"?user=%07bell", nil); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("control character in ?user= accepted (err %v)", err)
	}
}
