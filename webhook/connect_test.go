package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConnect(t *testing.T) {
	cases := []struct {
		name       string
		answer     func(http.ResponseWriter, *http.Request, string)
		failOpen   bool
		wantUser   string
		wantRooms  []string
		wantOpen   bool
		wantReason string // Error.Reason; "" for an accept
		wantClose  string // Error.CloseReason
	}{
		{name: "OK", answer: reply(200, `{"code":"OK"}`), wantUser: "alice"},
		{name: "OK names user and rooms", answer: reply(200, `{"code":"OK","user":"bob","rooms":["#a","#b"]}`), wantUser: "bob", wantRooms: []string{"#a", "#b"}},
		{name: "non-OK code", answer: reply(200, `{"code":"DENIED","reason":"account revoked"}`), wantReason: ReasonRefused, wantClose: "refused by backend: account revoked"},
		{name: "non-OK without reason", answer: reply(200, `{"code":"NOPE"}`), wantReason: ReasonRefused, wantClose: "refused by backend: NOPE"},
		{name: "not JSON", answer: reply(200, `OK`), wantReason: ReasonRefused, wantClose: "refused by backend"},
		{name: "empty body", answer: reply(200, ``), wantReason: ReasonRefused, wantClose: "refused by backend"},
		{name: "non-2xx with OK body", answer: reply(403, `{"code":"OK"}`), wantReason: ReasonStatus, wantClose: "backend answered 403"},
		{name: "5xx", answer: reply(502, ``), wantReason: ReasonStatus, wantClose: "backend answered 502"},
		{name: "timeout", answer: hang(nil), wantReason: ReasonTimeout, wantClose: "backend timeout"},
		{name: "timeout, fail-open", answer: hang(nil), failOpen: true, wantUser: "alice", wantOpen: true},
		{name: "refusal, fail-open still refuses", answer: reply(200, `{"code":"DENIED"}`), failOpen: true, wantReason: ReasonRefused, wantClose: "refused by backend: DENIED"},
		{name: "non-2xx, fail-open still refuses", answer: reply(401, ``), failOpen: true, wantReason: ReasonStatus, wantClose: "backend answered 401"},
		{name: "long reason is cut", answer: reply(200, `{"code":"NO","reason":"`+strings.Repeat("é", 100)+`"}`), wantReason: ReasonRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, tc.answer)
			c, _ := newClient(t, b.URL, Options{FailOpen: tc.failOpen, Timeout: 300 * time.Millisecond})
			ev := ConnectEvent{Connection: "c1", User: "alice", WSURI: "http://sb.example/connections/c1"}
			got, err := c.Connect(context.Background(), ev)

			req := b.next(t)
			if req.Method != http.MethodPost {
				t.Errorf("method %s, want POST", req.Method)
			}
			if req.SigErr != nil {
				t.Errorf("signature: %v", req.SigErr)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(req.Body), &body); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"connection": "c1", "user": "alice", "ws_uri": "http://sb.example/connections/c1"}
			if len(body) != len(want) || body["connection"] != want["connection"] || body["user"] != want["user"] || body["ws_uri"] != want["ws_uri"] {
				t.Errorf("body %v, want %v", body, want)
			}

			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Connect: %v, want accept", err)
				}
				if got.User != tc.wantUser || !slices.Equal(got.Rooms, tc.wantRooms) || got.FailedOpen != tc.wantOpen {
					t.Fatalf("reply %+v, want user %q rooms %v failedOpen %v", got, tc.wantUser, tc.wantRooms, tc.wantOpen)
				}
				return
			}
			var werr *Error
			if !errors.As(err, &werr) || werr.Reason != tc.wantReason {
				t.Fatalf("Connect error %v, want reason %s", err, tc.wantReason)
			}
			cr := werr.CloseReason()
			if len(cr) > MaxCloseReason || !utf8Valid(cr) {
				t.Fatalf("close reason %q is %d bytes or not UTF-8", cr, len(cr))
			}
			if tc.wantClose != "" && cr != tc.wantClose {
				t.Fatalf("close reason %q, want %q", cr, tc.wantClose)
			}
		})
	}
}

func TestConnectTransportFailure(t *testing.T) {
	b := newBackend(t, reply(200, `{"code":"OK"}`))
	url := b.URL
	b.Close() // nothing listens there any more

	for _, failOpen := range []bool{false, true} {
		c, _ := newClient(t, url, Options{FailOpen: failOpen})
		got, err := c.Connect(context.Background(), ConnectEvent{Connection: "c1", User: "u"})
		var werr *Error
		switch {
		case failOpen && (err != nil || !got.FailedOpen || got.User != "u"):
			t.Errorf("fail-open: %+v, %v; want accepted", got, err)
		case !failOpen && (!errors.As(err, &werr) || werr.Reason != ReasonTransport || werr.CloseReason() != "backend unavailable"):
			t.Errorf("fail-closed: %v; want a transport refusal", err)
		}
	}
}

func TestConnectForwardsHeaders(t *testing.T) {
	b := newBackend(t, reply(200, `{"code":"OK"}`))
	c, _ := newClient(t, b.URL, Options{})
	handshake := http.Header{
		"Authorization": {"Bearer tok"},
		"Cookie":        {"session=abc; tracking=zzz; csrf=x1"},
		"User-Agent":    {"browser"},
	}
	ev := ConnectEvent{Connection: "c1", Header: ForwardHeader(handshake, []string{"session", "csrf"})}
	if _, err := c.Connect(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	req := b.next(t)
	if got := req.Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("Authorization %q", got)
	}
	if got := req.Header.Get("Cookie"); got != "session=abc; csrf=x1" {
		t.Errorf("Cookie %q, want only the named cookies", got)
	}
	if got := req.Header.Get("User-Agent"); got == "browser" {
		t.Errorf("User-Agent forwarded, want only Authorization and named cookies")
	}
}

func TestForwardHeader(t *testing.T) {
	cases := []struct {
		name    string
		in      http.Header
		cookies []string
		want    http.Header
	}{
		{"nothing", http.Header{"X": {"y"}}, []string{"s"}, nil},
		{"authorization only", http.Header{"Authorization": {"Basic x"}}, nil, http.Header{"Authorization": {"Basic x"}}},
		{"cookie not named", http.Header{"Cookie": {"a=1"}}, []string{"b"}, nil},
		{"named cookie", http.Header{"Cookie": {"a=1; b=2"}}, []string{"b"}, http.Header{"Cookie": {"b=2"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ForwardHeader(tc.in, tc.cookies)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k := range tc.want {
				if !slices.Equal(got[k], tc.want[k]) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
