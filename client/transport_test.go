package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/protocol"
)

// TestSkipGreeting: with SkipGreeting, Dial returns before the greeting,
// which Next then returns in its place; the frames an unauthenticated
// connection provokes are observed one by one.
func TestSkipGreeting(t *testing.T) {
	open := memoryNode(t, nil)
	auth := authNode(t)
	probe := func(t *testing.T, c *Conn) {
		t.Helper()
		if err := c.SendRef(testCtx(t), "probe", protocol.ChannelSession, "Ping", nil); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name  string
		url   string
		token func(t *testing.T) string
		act   func(t *testing.T, c *Conn)
		want  []string // channel/type[/code] of each frame, in order
	}{
		{"open greets first", open.WS() + "?user=alice", nil, probe,
			[]string{"session/Authenticated", "session/Error/unknown_type"}},
		{"token sent, greeting from Next", auth.WS(), func(t *testing.T) string { return mintTicket(t, auth, "bob") }, probe,
			[]string{"session/Authenticated", "session/Error/unknown_type"}},
		{"no token on an authenticated server", auth.WS(), nil, probe,
			[]string{"session/Error/unauthenticated"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{SkipGreeting: true}
			if tc.token != nil {
				opts.Token = tc.token(t)
			}
			c, err := Dial(testCtx(t), tc.url, opts)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if c.User() != "" {
				t.Errorf("User() = %q before any greeting was read", c.User())
			}
			tc.act(t, c)
			for i, want := range tc.want {
				f, err := c.Next(testCtx(t))
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				got := f.Channel + "/" + f.Type
				var pe *protocol.Error
				if errors.As(f.Err(), &pe) {
					got += "/" + string(pe.Code)
				}
				if got != want {
					t.Fatalf("frame %d = %s (%s), want %s", i, got, f, want)
				}
			}
		})
	}
}

// TestWriteFrame: raw frames reach the server unchanged, text or binary,
// well-formed or not.
func TestWriteFrame(t *testing.T) {
	n := memoryNode(t, nil)
	cases := []struct {
		name     string
		typ      websocket.MessageType
		frame    string
		wantType string
		wantCode protocol.Code
	}{
		{"not json", websocket.MessageText, `{"channel":`, protocol.TypeError, protocol.CodeInvalidJSON},
		{"binary envelope", websocket.MessageBinary, `{"channel":"chat","message":{"type":"SubmitMessage","contents":"bin"}}`, "NewMessageReceived", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, n, "raw")
			if err := c.WriteFrame(testCtx(t), tc.typ, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			f, err := c.Next(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if f.Type != tc.wantType {
				t.Fatalf("answer %s, want type %s", f, tc.wantType)
			}
			var pe *protocol.Error
			if tc.wantCode != "" && (!errors.As(f.Err(), &pe) || pe.Code != tc.wantCode) {
				t.Fatalf("answer %s, want code %s", f, tc.wantCode)
			}
		})
	}
}

// TestPing: a WebSocket ping is answered while the reader runs, and fails
// with ErrClosed once the connection is closed.
func TestPing(t *testing.T) {
	n := memoryNode(t, nil)
	c := dial(t, n, "pinger")
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	_ = c.Close()
	if err := c.Ping(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v, want ErrClosed", err)
	}
}

// TestCloseWith: the peer sees the chosen close code and reason (or none
// after CloseNow), and the Conn ends with ErrClosed either way. The peer
// is a bare WebSocket endpoint that greets and records how it was closed.
func TestCloseWith(t *testing.T) {
	cases := []struct {
		name       string
		close      func(c *Conn) error
		wantCode   websocket.StatusCode
		wantReason string
	}{
		{"custom code", func(c *Conn) error { return c.CloseWith(4000, "bye") }, 4000, "bye"},
		{"normal", (*Conn).Close, websocket.StatusNormalClosure, ""},
		{"now", (*Conn).CloseNow, -1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			closed := make(chan error, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := websocket.Accept(w, r, nil)
				if err != nil {
					closed <- err
					return
				}
				defer ws.CloseNow()
				hello := `{"channel":"session","message":{"type":"Authenticated","contents":{"user":"u","connection":"c1"}}}`
				if err := ws.Write(r.Context(), websocket.MessageText, []byte(hello)); err != nil {
					closed <- err
					return
				}
				for {
					if _, _, err := ws.Read(context.Background()); err != nil {
						closed <- err
						return
					}
				}
			}))
			defer srv.Close()
			c, err := Dial(testCtx(t), "ws"+strings.TrimPrefix(srv.URL, "http"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.close(c); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Next(testCtx(t)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Next after closing: %v, want ErrClosed", err)
			}
			var ce websocket.CloseError
			select {
			case err := <-closed:
				if got := websocket.CloseStatus(err); got != tc.wantCode {
					t.Fatalf("peer saw %v (status %d), want %d", err, got, tc.wantCode)
				}
				if errors.As(err, &ce) && ce.Reason != tc.wantReason {
					t.Fatalf("peer saw reason %q, want %q", ce.Reason, tc.wantReason)
				}
			case <-testCtx(t).Done():
				t.Fatal("the peer never saw the connection end")
			}
		})
	}
}

// TestHandshakeResponse: a refused upgrade's HandshakeError carries the
// server's HTTP answer.
func TestHandshakeResponse(t *testing.T) {
	n := memoryNode(t, nil)
	_, err := Dial(testCtx(t), n.WS()+"?user=%07bell", Options{})
	var he *HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("Dial with a control character in ?user=: %v, want a HandshakeError", err)
	}
	if he.StatusCode != http.StatusBadRequest || he.Response == nil || he.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("HandshakeError %d with response %v, want 400", he.StatusCode, he.Response)
	}
}
