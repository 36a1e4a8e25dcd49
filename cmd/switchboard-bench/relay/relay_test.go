package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T) *Relay {
	t.Helper()
	r, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

func TestGreeting(t *testing.T) {
	r := start(t)
	tests := []struct {
		query, user string // user "" means a generated name
	}{
		{"?user=alice", "alice"},
		{"", ""},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		_, hello := wstest.Connect(t, r.URL+tt.query)
		if tt.user != "" && hello.User != tt.user || tt.user == "" && !strings.HasPrefix(hello.User, "relay-") {
			t.Errorf("greeting for %q names user %q", tt.query, hello.User)
		}
		if hello.Connection == "" || seen[hello.Connection] {
			t.Errorf("connection id %q is empty or reused", hello.Connection)
		}
		seen[hello.Connection] = true
	}
}

// TestRelay: a join is answered to the joiner only; a message reaches
// every member of its room, the sender included, and nobody else. Each
// negative claim is checked with a barrier: a later frame the client
// must receive, which would come after the unwanted one.
func TestRelay(t *testing.T) {
	r := start(t)
	alice := wstest.Open(t, r.URL+"?user=alice")
	bob := wstest.Open(t, r.URL+"?user=bob")
	carol := wstest.Open(t, r.URL+"?user=carol")

	alice.Join("#a", "alice", "alice")
	bob.Join("#a", "bob", "alice", "bob")
	carol.Join("#b", "carol", "carol")

	// No join broadcast: alice's next frame is her own message.
	alice.Say("#a", "hello")
	alice.ExpectRoomMessage("#a", "alice", "hello")
	bob.ExpectRoomMessage("#a", "alice", "hello")

	// carol is in another room: her next frame is her own message.
	carol.Say("#b", "elsewhere")
	carol.ExpectRoomMessage("#b", "carol", "elsewhere")

	// A message to a room one is not in goes nowhere.
	carol.Say("#a", "intruder")
	carol.Say("#b", "after")
	carol.ExpectRoomMessage("#b", "carol", "after")
	bob.Say("#a", "barrier")
	for _, c := range []*wstest.Client{alice, bob} {
		c.ExpectRoomMessage("#a", "bob", "barrier")
	}

	// A member who leaves (closes) is no longer sent to.
	bob.Close()
	alice.Say("#a", "alone")
	alice.ExpectRoomMessage("#a", "alice", "alone")
	carol.Join("#a", "carol", "alice", "carol")
}

// TestSlowConsumerIsDropped: a client that stops reading is disconnected
// once its queue overflows, while a member reading the same room gets
// every message.
func TestSlowConsumerIsDropped(t *testing.T) {
	r := start(t)
	fast := wstest.Open(t, r.URL+"?user=fast")
	fast.Join("#r", "fast", "fast")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// slow's socket has a small receive buffer, so that it fills after
	// little data.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	slow, _, err := websocket.Dial(ctx, r.URL+"?user=slow", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	join := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#r"})
	if err := slow.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	// slow reads nothing from now on. Once the relay has joined it (fast
	// is told nothing, so ask the relay through slow's own frames: a
	// message from slow reaches fast only after slow's join ran).
	text := strings.Repeat("x", 32<<10)
	say := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeSendMessage, protocol.SendMessage{Room: "#r", Message: "from slow"})
	if err := slow.Write(ctx, websocket.MessageText, say); err != nil {
		t.Fatal(err)
	}
	fast.ExpectRoomMessage("#r", "slow", "from slow")

	// Enough 32 KiB messages to fill slow's socket buffers and its 256
	// slots many times over. fast waits for its own messages after every
	// batch, far fewer than 256 (the relay has no flow control: a sender
	// that outruns its own writer overflows its own queue too).
	const batches, batch = 100, 32
	for i := 0; i < batches && r.Dropped() == 0; i++ {
		for range batch {
			fast.Say("#r", text)
		}
		for range batch {
			fast.ExpectRoomMessage("#r", "fast", text)
		}
	}
	wait.For(t, 10*time.Second, "the slow client dropped", func() bool { return r.Dropped() == 1 })
	// slow's connection has ended: reading drains what was delivered and
	// then fails.
	for {
		if _, _, err := slow.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("slow's connection still open after it was dropped")
			}
			break
		}
	}
	// fast is still served.
	fast.Say("#r", "still here")
	fast.ExpectRoomMessage("#r", "fast", "still here")
}

func TestStopEndsConnections(t *testing.T) {
	r, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := wstest.Open(t, r.URL+"?user=u")
	c.Join("#r", "u", "u")
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if f, ok := c.NextOrClose(); ok {
		t.Fatalf("got %s after Stop, want the connection ended", f)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, _, err := websocket.Dial(ctx, r.URL, nil); err == nil {
		_ = conn.CloseNow()
		t.Error("dial after Stop succeeded")
	}
}

// TestReadyz: the relay answers GET /readyz, which the bench polls before
// measuring it as a child process.
func TestReadyz(t *testing.T) {
	r := start(t)
	resp, err := http.Get("http://" + r.Addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz: %s", resp.Status)
	}
}
