package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/testbackend"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/webhook"
)

// backendEnv is the configuration of a node whose backend is b.
func backendEnv(b *testbackend.Backend, extra map[string]string) map[string]string {
	env := map[string]string{"API_URI": b.URL, "WEBHOOK_SECRET": testbackend.Secret, "WEBHOOK_TIMEOUT": "1s"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// TestWebhookLifecycle follows one connection through the three webhooks:
// the POST with forwarded headers names the user and a room to join, the
// PUT of an application channel answers the client, the DELETE reports
// the client's close code. Every request is signed (the backend verifies).
func TestWebhookLifecycle(t *testing.T) {
	b := testbackend.Start(t, func(r testbackend.Request) testbackend.Reply {
		switch r.Method {
		case http.MethodPost:
			return testbackend.Reply{Status: 200, Body: `{"code":"OK","user":"alice-renamed","rooms":["#welcome"]}`}
		case http.MethodPut:
			return testbackend.Reply{Status: 200, Body: `[{"channel":"game","message":{"type":"Moved","contents":{"x":1}}}, {"not":"an envelope"}]`}
		}
		return testbackend.Reply{Status: 204}
	})
	n := startNode(t, backendEnv(b, map[string]string{
		"WEBHOOK_COOKIES": "session", "APP_CHANNELS": "game", "PUBLIC_URL": "https://ws.example.com/",
	}))
	header := http.Header{"Authorization": {"Bearer user-token"}, "Cookie": {"session=s1; tracking=t1"}}
	c, _, err := wstest.DialErr(t, n.WS()+"?user=alice", header)
	if err != nil {
		t.Fatal(err)
	}
	var hello protocol.Authenticated
	c.Expect(protocol.ChannelSession, protocol.TypeAuthenticated).Decode(t, &hello)
	if hello.User != "alice-renamed" {
		t.Errorf("greeted as %q, want the backend's name alice-renamed", hello.User)
	}
	c.Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
	c.ExpectRoomUser(protocol.TypeJoinedRoom, "#welcome", "alice-renamed")

	post := b.Wait(http.MethodPost, hello.Connection, 5*time.Second)
	for field, want := range map[string]string{
		"user": "alice", "ws_uri": "https://ws.example.com/connections/" + hello.Connection,
	} {
		if got := post.Str(field); got != want {
			t.Errorf("POST %s = %q, want %q", field, got, want)
		}
	}
	if got := post.Header.Get("Authorization"); got != "Bearer user-token" {
		t.Errorf("POST Authorization = %q, want the handshake's", got)
	}
	if got := post.Header.Get("Cookie"); got != "session=s1" {
		t.Errorf("POST Cookie = %q, want only the session cookie", got)
	}

	c.SendRaw(`{"channel":"game","ref":"g1","message":{"type":"Move","contents":{"dx":1}}}`)
	reply := c.Expect("game", "Moved")
	if !strings.Contains(reply.String(), `"x":1`) {
		t.Errorf("backend's reply arrived as %s", reply)
	}
	c.Barrier() // the invalid second reply was dropped
	put := b.Wait(http.MethodPut, hello.Connection, 5*time.Second)
	var env protocol.Envelope
	raw, _ := json.Marshal(put.Body["envelope"])
	if err := json.Unmarshal(raw, &env); err != nil || env.Channel != "game" || env.Ref != "g1" || env.Message.Type != "Move" {
		t.Errorf("PUT envelope = %s (%v)", raw, err)
	}
	if put.Str("user") != "alice-renamed" {
		t.Errorf("PUT user = %q", put.Str("user"))
	}

	if got := b.Requests(http.MethodDelete, hello.Connection); len(got) != 0 {
		t.Fatalf("DELETE before the close: %v", got)
	}
	_ = c.Conn.Close(4000, "bye")
	del := b.Wait(http.MethodDelete, hello.Connection, 5*time.Second)
	if del.Body["code"] != float64(4000) || del.Str("reason") != "bye" || del.Body["crashed"] != false {
		t.Errorf("DELETE body = %s, want code 4000, reason bye, not crashed", del.Raw)
	}
	if got := del.Header.Get(webhook.IdempotencyHeader); got != hello.Connection {
		t.Errorf("DELETE Idempotency-Key = %q, want the connection id", got)
	}
}

// TestWebhookRefusals: anything but {"code":"OK"} closes the socket with
// 1008 and a reason, and no DELETE follows; fail-open accepts when the
// backend is unreachable, never when it refuses.
func TestWebhookRefusals(t *testing.T) {
	cases := []struct {
		name     string
		reply    testbackend.Reply
		failOpen bool
		reason   string // "" means accepted
	}{
		{"not OK", testbackend.Reply{Status: 200, Body: `{"code":"NO","reason":"account suspended"}`}, false, "refused by backend: account suspended"},
		{"not JSON", testbackend.Reply{Status: 200, Body: `yes`}, false, "refused by backend"},
		{"status", testbackend.Reply{Status: 503}, false, "backend answered 503"},
		{"timeout", testbackend.Reply{Status: 200, Body: `{"code":"OK"}`, Delay: 3 * time.Second}, false, "backend timeout"},
		{"timeout, fail-open", testbackend.Reply{Status: 200, Body: `{"code":"OK"}`, Delay: 3 * time.Second}, true, ""},
		{"refusal, fail-open", testbackend.Reply{Status: 403}, true, "backend answered 403"},
		{"bad user", testbackend.Reply{Status: 200, Body: `{"code":"OK","user":"bad\u0001name"}`}, false, "backend named an invalid user"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := testbackend.Start(t, func(r testbackend.Request) testbackend.Reply {
				if r.Method == http.MethodPost {
					return tc.reply
				}
				return testbackend.Reply{Status: 204}
			})
			env := backendEnv(b, nil)
			if tc.failOpen {
				env["WEBHOOK_FAIL_OPEN"] = "true"
			}
			n := startNode(t, env)
			c := wstest.Dial(t, n.WS()+"?user=bob")
			if tc.reason == "" {
				c.Expect(protocol.ChannelSession, protocol.TypeAuthenticated)
				return
			}
			code, reason := c.ExpectClose()
			if code != websocket.StatusPolicyViolation || reason != tc.reason {
				t.Fatalf("closed with %d %q, want 1008 %q", code, reason, tc.reason)
			}
			time.Sleep(quiet)
			if got := b.Requests(http.MethodDelete, ""); len(got) != 0 {
				t.Errorf("a refused connection got a DELETE: %s", got[0].Raw)
			}
		})
	}
}

// TestSlowBackendDoesNotHoldOthers: while the backend sits on one
// client's application message, other clients chat, and new clients are
// admitted, at full speed; the waiting client is answered unavailable at
// WEBHOOK_TIMEOUT and keeps its connection.
func TestSlowBackendDoesNotHoldOthers(t *testing.T) {
	b := testbackend.Start(t, func(r testbackend.Request) testbackend.Reply {
		if r.Method == http.MethodPut {
			return testbackend.Reply{Status: 200, Body: `[]`, Delay: 10 * time.Second}
		}
		return testbackend.AcceptAll(r)
	})
	n := startNode(t, backendEnv(b, map[string]string{"APP_CHANNELS": "game", "WEBHOOK_TIMEOUT": "2s"}))
	slow := wstest.Open(t, n.WS()+"?user=slow")
	other := wstest.Open(t, n.WS()+"?user=other")
	slow.SendRaw(`{"channel":"game","message":{"type":"Move","contents":{}}}`)
	b.Wait(http.MethodPut, "", 5*time.Second)

	start := time.Now()
	other.Send(protocol.ChannelChat, "SubmitMessage", "still here")
	other.Expect(protocol.ChannelChat, "NewMessageReceived")
	wstest.Open(t, n.WS()+"?user=newcomer")
	if d := time.Since(start); d > time.Second {
		t.Errorf("chat and a new admission took %s while the backend was slow", d)
	}
	slow.WaitFor(protocol.ChannelChat, "NewMessageReceived")
	slow.ExpectError("game", protocol.CodeUnavailable)
	slow.Barrier()
}

// TestBackendDownDeleteRetried: with the backend unreachable, a
// closed connection's DELETE is retried, not lost; once the backend is
// back the retry delivers it.
func TestBackendDownDeleteRetried(t *testing.T) {
	b := testbackend.Start(t, func(r testbackend.Request) testbackend.Reply {
		if r.Method == http.MethodDelete {
			return testbackend.Reply{Status: 503}
		}
		return testbackend.AcceptAll(r)
	})
	n := startNode(t, backendEnv(b, nil))
	c, hello := wstest.Connect(t, n.WS()+"?user=carol")
	c.Close()
	b.Wait(http.MethodDelete, hello.Connection, 5*time.Second) // the first attempt, refused
	b.SetAnswer(testbackend.AcceptAll)
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Requests(http.MethodDelete, hello.Connection)) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the DELETE was not retried after a 503")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
