package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// testSecret and testAPIKey put a node in authenticated mode.
const (
	testSecret = "0123456789abcdef0123456789abcdef-limits"
	testAPIKey = "limits-api-key"
)

var authEnv = map[string]string{"JWT_SECRET": testSecret, "SERVER_API_KEY": testAPIKey}

// startKnownNode is startNode refusing environment names the config does
// not know: testnode.Config ignores them, so a renamed setting would
// otherwise fall back to its default and the test silently prove nothing.
func startKnownNode(t *testing.T, env map[string]string) *testnode.Node {
	t.Helper()
	for name := range env {
		if !slices.ContainsFunc(config.Settings, func(s config.Setting) bool { return s.Env == name }) {
			t.Fatalf("no setting %s", name)
		}
	}
	return startNode(t, env)
}

// ticket mints a single-use ticket for user, limited to rooms (nil: any).
func ticket(t *testing.T, user string, rooms ...string) string {
	t.Helper()
	tok, _, err := auth.NewMinter(testSecret, "switchboard").Mint(user, rooms, time.Minute)
	if err != nil {
		t.Fatalf("mint ticket: %v", err)
	}
	return tok
}

// envelope renders a frame by hand, contents given as raw JSON ("" leaves
// them out), for frames the typed Send cannot produce.
func envelope(channel, typ, contents string) string {
	msg := fmt.Sprintf(`"type":%q`, typ)
	if contents != "" {
		msg += `,"contents":` + contents
	}
	return fmt.Sprintf(`{"channel":%q,"message":{%s}}`, channel, msg)
}

// expectChat fails unless the next frame is the chat message text.
func expectChat(t *testing.T, c *wstest.Client, text string) protocol.ChatMessage {
	t.Helper()
	var got protocol.ChatMessage
	c.Expect(protocol.ChannelChat, protocol.TypeNewMessageReceived).Decode(t, &got)
	if got.Content != text {
		t.Fatalf("chat message %.40q, want %.40q", got.Content, text)
	}
	return got
}

// chatRoundTrip submits text on the chat and expects it back as the very
// next frame: the connection still works and nothing else was queued.
func chatRoundTrip(t *testing.T, c *wstest.Client, text string) {
	t.Helper()
	c.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, text)
	expectChat(t, c, text)
}

// waitChat skips other clients' chat messages until text arrives; any
// frame that is not a chat message fails the test.
func waitChat(t *testing.T, c *wstest.Client, text string) {
	t.Helper()
	for {
		f := c.Next()
		if f.Channel != protocol.ChannelChat || f.Type != protocol.TypeNewMessageReceived {
			t.Fatalf("got %.200s while waiting for chat message %q", f, text)
		}
		var got protocol.ChatMessage
		f.Decode(t, &got)
		if got.Content == text {
			return
		}
	}
}

// settle returns once every client is subscribed to the chat and has
// nothing left to receive. A handshake completes before the server has
// subscribed the connection, so a client must not expect others' messages
// before this. Each client posts in turn and waits for its own message
// (proving it subscribed), then all wait for the last one.
func settle(t *testing.T, clients ...*wstest.Client) {
	t.Helper()
	last := ""
	for i, c := range clients {
		last = fmt.Sprintf("settle %d", i)
		c.Send("chat", "SubmitMessage", last)
		waitChat(t, c, last)
	}
	for _, c := range clients {
		if c != clients[len(clients)-1] {
			waitChat(t, c, last)
		}
	}
}

// waitConnections polls until the node holds want WebSockets, failing
// after within.
func waitConnections(t *testing.T, n *testnode.Node, want int, within time.Duration) {
	t.Helper()
	wait.For(t, within, fmt.Sprintf("node holds %d connections", want), func() bool { return n.Server.Connections() == want })
}

// dialRaw opens a bare WebSocket that nobody reads: it never answers pings
// and never drains its TCP buffers.
func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return conn
}

// TestClientErrors provokes every error code a client can cause and checks
// the Error envelope's channel and code, and that the connection still
// works afterwards.
func TestClientErrors(t *testing.T) {
	type errorCase struct {
		name    string
		env     map[string]string
		query   func(t *testing.T) string            // appended to the WebSocket URL
		setup   func(t *testing.T, c *wstest.Client) // before the bad frame
		frame   string                               // the bad frame…
		provoke func(t *testing.T, c *wstest.Client) // …or what to do instead
		channel string                               // where the Error is answered
		code    protocol.Code
		recover func(t *testing.T, c *wstest.Client) // before checking chat still works
	}
	joinRoom := func(room string) func(t *testing.T, c *wstest.Client) {
		return func(t *testing.T, c *wstest.Client) {
			t.Helper()
			c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: room})
			c.Expect("chat-room", "MemberList")
			c.Expect("chat-room", "JoinedRoom")
		}
	}
	authenticate := func(t *testing.T, c *wstest.Client) {
		t.Helper()
		c.Send("session", "Authenticate", protocol.Authenticate{Token: ticket(t, "alice")})
		var got protocol.Authenticated
		c.Expect("session", "Authenticated").Decode(t, &got)
		if got.User != "alice" {
			t.Fatalf("authenticated as %q, want alice", got.User)
		}
	}
	cases := []errorCase{
		// invalid_json: the frame cannot be read, so neither can its channel.
		{name: "garbage", frame: `hello there`, channel: "error", code: protocol.CodeInvalidJSON},
		{name: "empty frame", frame: ``, channel: "error", code: protocol.CodeInvalidJSON},
		{name: "JSON array", frame: `[{"channel":"chat","message":{"type":"SubmitMessage","contents":"x"}}]`, channel: "error", code: protocol.CodeInvalidJSON},
		{name: "truncated object", frame: `{"channel":"chat","message":{"type":"SubmitMessage","conte`, channel: "error", code: protocol.CodeInvalidJSON},
		{name: "trailing data", frame: envelope("chat", "SubmitMessage", `"x"`) + `}`, channel: "error", code: protocol.CodeInvalidJSON},
		{name: "channel not a string", frame: `{"channel":1,"message":{"type":"SubmitMessage"}}`, channel: "error", code: protocol.CodeInvalidJSON},
		{name: "message not an object", frame: `{"channel":"chat","message":"SubmitMessage"}`, channel: "error", code: protocol.CodeInvalidJSON},

		// unknown_channel: answered on "error", never on the unknown name.
		{name: "unknown channel", frame: envelope("nope", "SubmitMessage", `"x"`), channel: "error", code: protocol.CodeUnknownChannel},
		{name: "missing channel", frame: `{"message":{"type":"SubmitMessage","contents":"x"}}`, channel: "error", code: protocol.CodeUnknownChannel},
		{name: "channel named error", frame: envelope("error", "Error", `{}`), channel: "error", code: protocol.CodeUnknownChannel},

		// unknown_type: answered on the (known) channel.
		{name: "unknown chat type", frame: envelope("chat", "Shout", `"x"`), channel: "chat", code: protocol.CodeUnknownType},
		{name: "unknown chat-room type", frame: envelope("chat-room", "KickUser", `{"room":"#r"}`), channel: "chat-room", code: protocol.CodeUnknownType},
		{name: "missing type", frame: `{"channel":"chat","message":{"contents":"x"}}`, channel: "chat", code: protocol.CodeUnknownType},
		{name: "missing message", frame: `{"channel":"chat-room"}`, channel: "chat-room", code: protocol.CodeUnknownType},
		{name: "server type sent by client", frame: envelope("chat", "NewMessageReceived", `{"content":"x"}`), channel: "chat", code: protocol.CodeUnknownType},
		{name: "ping takes no client messages", frame: envelope("ping", "Ping", `1`), channel: "ping", code: protocol.CodeUnknownType},
		{name: "inbox takes no client messages", frame: envelope("inbox", "Message", `{"content":"x"}`), channel: "inbox", code: protocol.CodeUnknownType},
		{name: "unknown session type", frame: envelope("session", "Logout", `{}`), channel: "session", code: protocol.CodeUnknownType},

		// invalid_contents: answered on the channel.
		{name: "SubmitMessage with a number", frame: envelope("chat", "SubmitMessage", `42`), channel: "chat", code: protocol.CodeInvalidContents},
		{name: "SubmitMessage without contents", frame: envelope("chat", "SubmitMessage", ``), channel: "chat", code: protocol.CodeInvalidContents},
		{name: "SubmitMessage with blank text", frame: envelope("chat", "SubmitMessage", `"  \t "`), channel: "chat", code: protocol.CodeInvalidContents},
		{name: "JoinRoom without room", frame: envelope("chat-room", "JoinRoom", `{}`), channel: "chat-room", code: protocol.CodeInvalidContents},
		{name: "JoinRoom without contents", frame: envelope("chat-room", "JoinRoom", ``), channel: "chat-room", code: protocol.CodeInvalidContents},
		{name: "JoinRoom with room not a string", frame: envelope("chat-room", "JoinRoom", `{"room":7}`), channel: "chat-room", code: protocol.CodeInvalidContents},
		{
			name: "JoinRoom with room name too long", env: map[string]string{"MAX_ROOM_NAME": "8"},
			frame:   envelope("chat-room", "JoinRoom", `{"room":"#abcdefgh"}`), // 9 characters
			channel: "chat-room", code: protocol.CodeInvalidContents,
			recover: joinRoom("#abcdefg"), // 8 characters are fine
		},
		{name: "JoinRoom with control character", frame: envelope("chat-room", "JoinRoom", `{"room":"#a\u0007b"}`), channel: "chat-room", code: protocol.CodeInvalidContents},
		{name: "JoinRoom with since garbage", frame: envelope("chat-room", "JoinRoom", `{"room":"#r","since":"garbage"}`), channel: "chat-room", code: protocol.CodeInvalidContents},
		{name: "SendMessage without message", setup: joinRoom("#r"), frame: envelope("chat-room", "SendMessage", `{"room":"#r"}`), channel: "chat-room", code: protocol.CodeInvalidContents},
		{name: "GetHistory with negative limit", frame: envelope("chat", "GetHistory", `{"limit":-1}`), channel: "chat", code: protocol.CodeInvalidContents},
		{name: "GetHistory since garbage", frame: envelope("chat", "GetHistory", `{"since":"garbage"}`), channel: "chat", code: protocol.CodeInvalidContents},

		// not_member.
		{name: "SendMessage to a room not joined", setup: joinRoom("#mine"), frame: envelope("chat-room", "SendMessage", `{"room":"#other","message":"hi"}`), channel: "chat-room", code: protocol.CodeNotMember},
		{name: "GetHistory of a room not joined", setup: joinRoom("#mine"), frame: envelope("chat-room", "GetHistory", `{"room":"#other"}`), channel: "chat-room", code: protocol.CodeNotMember},
		{name: "LeaveRoom of a room not joined", setup: joinRoom("#mine"), frame: envelope("chat-room", "LeaveRoom", `{"room":"#other"}`), channel: "chat-room", code: protocol.CodeNotMember},

		// too_many_rooms.
		{
			name: "JoinRoom beyond MAX_ROOMS", env: map[string]string{"MAX_ROOMS": "2"},
			setup: func(t *testing.T, c *wstest.Client) {
				joinRoom("#a")(t, c)
				joinRoom("#b")(t, c)
			},
			frame:   envelope("chat-room", "JoinRoom", `{"room":"#c"}`),
			channel: "chat-room", code: protocol.CodeTooManyRooms,
			recover: func(t *testing.T, c *wstest.Client) {
				c.Send("chat-room", "LeaveRoom", protocol.RoomRef{Room: "#a"})
				c.ExpectRoomUser("LeftRoom", "#a", "alice")
				joinRoom("#c")(t, c) // room for one more now
			},
		},

		// rate_limited: two frames pass (the burst), the third is dropped.
		{
			name: "frames beyond the burst", env: map[string]string{"RATE_LIMIT": "1", "RATE_BURST": "2"},
			provoke: func(t *testing.T, c *wstest.Client) {
				for i := range 3 {
					c.Send("chat", "SubmitMessage", fmt.Sprintf("burst %d", i))
				}
				expectChat(t, c, "burst 0")
				expectChat(t, c, "burst 1")
			},
			channel: "error", code: protocol.CodeRateLimited,
			// Not an assertion: the bucket needs a second to hold a token again.
			recover: func(*testing.T, *wstest.Client) { time.Sleep(1500 * time.Millisecond) },
		},

		// history_disabled.
		{name: "chat GetHistory without history", env: map[string]string{"HISTORY_SIZE": "0"}, frame: envelope("chat", "GetHistory", `{}`), channel: "chat", code: protocol.CodeHistoryDisabled},
		{name: "room GetHistory without history", env: map[string]string{"HISTORY_SIZE": "0"}, setup: joinRoom("#r"), frame: envelope("chat-room", "GetHistory", `{"room":"#r"}`), channel: "chat-room", code: protocol.CodeHistoryDisabled},

		// session.
		{name: "Authenticate in open mode", frame: envelope("session", "Authenticate", `{"token":"x"}`), channel: "session", code: protocol.CodeAlreadyAuthed},
		{
			name: "Authenticate twice", env: authEnv,
			query: func(t *testing.T) string { return "?token=" + ticket(t, "alice") },
			setup: func(t *testing.T, c *wstest.Client) { c.Expect("session", "Authenticated") },
			frame: envelope("session", "Authenticate", `{"token":"x"}`), channel: "session", code: protocol.CodeAlreadyAuthed,
		},
		{name: "unauthenticated chat", env: authEnv, frame: envelope("chat", "SubmitMessage", `"x"`), channel: "chat", code: protocol.CodeUnauthenticated, recover: authenticate},
		{name: "unauthenticated frame on an unknown channel", env: authEnv, frame: envelope("nope", "SubmitMessage", `"x"`), channel: "error", code: protocol.CodeUnauthenticated, recover: authenticate},
		{name: "Authenticate with bad contents", env: authEnv, frame: envelope("session", "Authenticate", `"token"`), channel: "session", code: protocol.CodeInvalidContents, recover: authenticate},
		{
			name: "JoinRoom the ticket does not allow", env: authEnv,
			query:   func(t *testing.T) string { return "?token=" + ticket(t, "alice", "#ok") },
			setup:   func(t *testing.T, c *wstest.Client) { c.Expect("session", "Authenticated") },
			frame:   envelope("chat-room", "JoinRoom", `{"room":"#secret"}`),
			channel: "chat-room", code: protocol.CodeForbidden,
			recover: joinRoom("#ok"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := startKnownNode(t, tc.env)
			url := n.WS()
			switch {
			case tc.query != nil:
				url += tc.query(t)
			case tc.env["JWT_SECRET"] == "":
				url += "?user=alice"
			}
			c := wstest.Dial(t, url)
			if tc.env["JWT_SECRET"] == "" {
				c.Expect("session", "Authenticated") // open mode greets at once
			}
			if tc.setup != nil {
				tc.setup(t, c)
			}
			if tc.provoke != nil {
				tc.provoke(t, c)
			} else {
				c.SendRaw(tc.frame)
			}
			if e := c.ExpectError(tc.channel, tc.code); e.Message == "" {
				t.Errorf("Error %s has no message", tc.code)
			}
			if tc.recover != nil {
				tc.recover(t, c)
			}
			chatRoundTrip(t, c, "still connected")
			if got := n.Server.Connections(); got != 1 {
				t.Errorf("node holds %d connections, want 1", got)
			}
		})
	}
}

// TestFloodingClosesTheFlooderOnly: a client that keeps sending while rate
// limited is closed with 1008; another client on the node does not notice.
func TestFloodingClosesTheFlooderOnly(t *testing.T) {
	n := startKnownNode(t, map[string]string{"RATE_LIMIT": "1", "RATE_BURST": "4", "RATE_LIMIT_STRIKES": "3"})
	bystander := wstest.Open(t, n.WS()+"?user=bystander")
	flooder := wstest.Open(t, n.WS()+"?user=flooder")
	settle(t, bystander, flooder) // one frame of each one's burst of 4

	// Write until the server closes the connection; only burst + strikes
	// frames are needed, the rest shows the close is not postponed.
	frame := protocol.Encode("chat", "SubmitMessage", "flood")
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		err := flooder.Conn.Write(ctx, websocket.MessageText, frame)
		cancel()
		if err != nil {
			break
		}
	}
	code, reason := flooder.ExpectClose()
	if code != websocket.StatusPolicyViolation || reason != "rate limit exceeded" {
		t.Errorf("flooder closed with %d %q, want 1008 %q", code, reason, "rate limit exceeded")
	}
	waitConnections(t, n, 1, wstest.Timeout)

	// The bystander saw at most the flooder's burst, and still has its own
	// burst: buckets are per connection.
	bystander.Send("chat", "SubmitMessage", "unaffected 1")
	bystander.Send("chat", "SubmitMessage", "unaffected 2")
	waitChat(t, bystander, "unaffected 1")
	expectChat(t, bystander, "unaffected 2")
}

// TestFrameSizeLimit: a frame of MAX_FRAME_BYTES is processed; a larger one
// closes its connection with 1009, and nobody else's.
func TestFrameSizeLimit(t *testing.T) {
	const limit = 1024
	// frameOf builds a chat frame of exactly size bytes.
	frameOf := func(t *testing.T, size int) []byte {
		t.Helper()
		empty := len(protocol.Encode("chat", "SubmitMessage", ""))
		f := protocol.Encode("chat", "SubmitMessage", strings.Repeat("x", size-empty))
		if len(f) != size {
			t.Fatalf("built a %d-byte frame, want %d", len(f), size)
		}
		return f
	}
	for _, size := range []int{limit + 1, 2000, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			n := startKnownNode(t, map[string]string{"MAX_FRAME_BYTES": fmt.Sprint(limit)})
			other := wstest.Open(t, n.WS()+"?user=other")
			big := wstest.Open(t, n.WS()+"?user=big")
			settle(t, other, big)

			atLimit := frameOf(t, limit)
			big.SendBytes(websocket.MessageText, atLimit)
			text := strings.Repeat("x", limit-len(protocol.Encode("chat", "SubmitMessage", "")))
			expectChat(t, big, text)
			expectChat(t, other, text)

			// The server may close before the frame is all written: the
			// write can fail, the close frame must still come.
			ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
			defer cancel()
			_ = big.Conn.Write(ctx, websocket.MessageText, frameOf(t, size))
			if code, reason := big.ExpectClose(); code != websocket.StatusMessageTooBig {
				t.Errorf("oversized frame closed the connection with %d %q, want 1009", code, reason)
			}
			waitConnections(t, n, 1, wstest.Timeout)
			// Nothing of the oversized frame was broadcast: the round trip's
			// strict expectation would fail on it.
			chatRoundTrip(t, other, "still here")
		})
	}
}

// slowConsumer is a node with a client that does not read (slow), one
// that reads (fast) and one that posts (sender), after sender has posted
// messages of size bytes each, paced by fast's reception, until the node
// closed the slow client for falling behind (sent of them, at most max).
type slowConsumer struct {
	n            *testnode.Node
	slow         *websocket.Conn
	fast, sender *wstest.Client
	max, size    int
	sent         int       // messages posted, the last one after the close
	closedAt     time.Time // when fast learnt that slow was closed
}

// chatText is the i-th message of a slowConsumer burst.
func chatText(i, size int) string {
	prefix := fmt.Sprintf("%05d|", i)
	return prefix + strings.Repeat("m", size-len(prefix))
}

// watchRoom is the room fast and slow share: slow's LeftRoom there tells
// fast the moment the node has closed slow (its worker stops and leaves its
// rooms when the close is requested, whatever its writer is stuck in).
const watchRoom = "#watch"

// startSlowConsumer sets the scene: send queues of 16 messages, no rate
// limit to speak of, and a write timeout and ping interval far beyond the
// test's span so that only the queue can close the slow client. The burst
// stops as soon as the node has closed the slow client, so that the test
// knows when the node decided.
func startSlowConsumer(t *testing.T, writeTimeout string) *slowConsumer {
	t.Helper()
	// 240 × 32 KiB is about twice what loopback TCP buffers (about 3 MiB
	// here) and the queue hold between the server and a client that does
	// not read; the burst fails loudly if that was not enough.
	s := &slowConsumer{max: 240, size: 32 << 10}
	s.n = startKnownNode(t, map[string]string{
		"SEND_QUEUE_BYTES": fmt.Sprint(16 * s.size),
		"RATE_LIMIT":       "100000",
		"RATE_BURST":       "100000",
		"RATE_BYTES":       "1073741824",
		"RATE_BYTES_BURST": "1073741824",
		"MAX_CHAT_MESSAGE": fmt.Sprint(2 * s.size),
		"WRITE_TIMEOUT":    writeTimeout,
		"WS_TIMEOUT":       "1h",
		"MAX_FRAME_BYTES":  fmt.Sprint(2 * s.size),
		"SHUTDOWN_TIMEOUT": "2s",
	})
	s.slow = dialRaw(t, s.n.WS()+"?user=slow")
	s.fast = wstest.Open(t, s.n.WS()+"?user=fast")
	s.sender = wstest.Open(t, s.n.WS()+"?user=sender")
	settle(t, s.fast, s.sender)
	s.fast.Join(watchRoom, "fast", "fast")
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	join := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: watchRoom})
	if err := s.slow.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatalf("slow client's JoinRoom: %v", err)
	}
	// Frames are processed only once a connection is admitted, so slow is
	// subscribed to the chat too.
	s.fast.ExpectRoomUser(protocol.TypeJoinedRoom, watchRoom, "slow")
	waitConnections(t, s.n, 3, wstest.Timeout)

	// Pace the burst on the fast client so that its own queue never holds
	// more than one message: only the slow client can fall behind.
	burstStart := time.Now()
	for s.sent < s.max && s.closedAt.IsZero() {
		text := chatText(s.sent, s.size)
		s.sender.Send("chat", "SubmitMessage", text)
		s.sent++
		for {
			f := s.fast.Next()
			if f.Channel == protocol.ChannelChatRoom && f.Type == protocol.TypeLeftRoom {
				var left protocol.RoomUser
				f.Decode(t, &left)
				if left.Room != watchRoom || left.User != "slow" {
					t.Fatalf("fast client got LeftRoom %+v during the burst", left)
				}
				s.closedAt = time.Now()
				continue
			}
			var got protocol.ChatMessage
			if f.Channel != protocol.ChannelChat || f.Type != protocol.TypeNewMessageReceived {
				t.Fatalf("fast client got %.200s during the burst", f)
			}
			if f.Decode(t, &got); got.Content != text {
				t.Fatalf("fast client got message %.6q, want %.6q (in order, none lost)", got.Content, text)
			}
			break
		}
	}
	if s.closedAt.IsZero() {
		t.Fatalf("slow client still open after %d × %d bytes it did not read", s.max, s.size)
	}
	t.Logf("slow client closed after %d of %d messages × %d bytes, %s into the burst", s.sent, s.max, s.size, s.closedAt.Sub(burstStart).Round(time.Millisecond))
	return s
}

// stillServed checks that the fast client and the sender still get chat.
func (s *slowConsumer) stillServed(t *testing.T) {
	t.Helper()
	chatRoundTrip(t, s.fast, "after the slow one")
	waitChat(t, s.sender, "after the slow one") // past its own burst
}

// stuckWriteGrace mirrors server/writer.go: once a connection is closed as
// too slow, the write it is stuck in gets this long before it is
// abandoned, and with it the chance to deliver the 1008 close frame.
const stuckWriteGrace = 5 * time.Second

// TestSlowConsumerIsClosedOthersAreNot: a client that does not read is
// closed with 1008 when its queue overflows, while a client that reads
// gets every message in order. The slow client starts reading as soon as
// the node has closed it, well within stuckWriteGrace, so the close frame
// must reach it.
func TestSlowConsumerIsClosedOthersAreNot(t *testing.T) {
	s := startSlowConsumer(t, "30s")

	// Now read the slow client: it gets some of the messages, in order and
	// without gaps, then the close frame.
	readStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, first := 0, -1
	var err error
	for {
		var data []byte
		if _, data, err = s.slow.Read(ctx); err != nil {
			break
		}
		var env protocol.Envelope
		var msg protocol.ChatMessage
		if e := json.Unmarshal(data, &env); e != nil {
			t.Fatalf("slow client got %.80q: %v", data, e)
		}
		if env.Channel != protocol.ChannelChat {
			continue // the greeting, and its own join
		}
		if e := json.Unmarshal(env.Message.Contents, &msg); e != nil {
			t.Fatalf("slow client got %.80q: %v", data, e)
		}
		if strings.HasPrefix(msg.Content, "settle ") {
			continue // the frames that made sure the others were subscribed
		}
		var i int
		if _, e := fmt.Sscanf(msg.Content, "%05d|", &i); e != nil {
			t.Fatalf("slow client got chat message %.80q", msg.Content)
		}
		if first < 0 {
			first = i
		}
		if i != first+got {
			t.Fatalf("slow client got message %d after %d", i, first+got-1)
		}
		got++
	}
	t.Logf("slow client started reading %s after the node closed it, got %d of %d messages, then %v",
		readStart.Sub(s.closedAt).Round(time.Millisecond), got, s.sent, err)
	if got >= s.sent {
		t.Errorf("slow client got all %d messages: it never fell behind, the test proves nothing", got)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "connection too slow to keep up with messages" {
		t.Errorf("slow client's connection ended with %v, want close 1008 %q", err, "connection too slow to keep up with messages")
	}
	waitConnections(t, s.n, 2, wstest.Timeout)
	s.fast.ExpectNothing(quiet)
	s.stillServed(t)
}

// TestSlowConsumerIsDroppedWithoutWaitingForWriteTimeout: once its queue
// overflows, a client that does not read is disconnected — it leaves the
// node's connections — without waiting for its blocked write to time out.
func TestSlowConsumerIsDroppedWithoutWaitingForWriteTimeout(t *testing.T) {
	const writeTimeout = time.Minute
	s := startSlowConsumer(t, writeTimeout.String())
	// The slow client never reads. Twice the grace is generous for the
	// server to act on its own decision, and far less than the write
	// timeout.
	waitConnections(t, s.n, 2, 2*stuckWriteGrace)
	s.stillServed(t)
}

// TestFlooderGetsEveryAnswerBeforeTheClose: a client closed for flooding
// still receives the answers to everything it sent before (its
// rate_limited errors included), then the 1008 close frame.
func TestFlooderGetsEveryAnswerBeforeTheClose(t *testing.T) {
	n := startNode(t, nil) // RATE_BURST 40, RATE_LIMIT_STRIKES 20
	c := wstest.Open(t, n.WS())
	// The node closes the flooder after RATE_BURST + RATE_LIMIT_STRIKES
	// frames: writes racing that close may fail, and that is fine.
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
		err := c.Conn.Write(ctx, websocket.MessageText, []byte(`{"channel":"chat","message":{"type":"GetHistory","contents":{}}}`))
		cancel()
		if err != nil {
			break
		}
	}
	histories, limited := 0, 0
	for {
		f, ok := c.NextOrClose()
		if !ok {
			break
		}
		switch {
		case f.Type == "History":
			histories++
		case f.Type == "Error" && strings.Contains(string(f.Contents), "rate_limited"):
			limited++
		default:
			t.Fatalf("unexpected %s", f)
		}
	}
	code, reason := c.ExpectClose()
	if code != websocket.StatusPolicyViolation || reason != "rate limit exceeded" {
		t.Fatalf("closed with %d %q", code, reason)
	}
	if histories < 40 || limited < 1 {
		t.Fatalf("%d History and %d rate_limited answers before the close, want the burst's 40 and the refusals", histories, limited)
	}
}
