package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// unbounded lifts the per-connection rate limits so a test can fill a room
// quickly.
var unbounded = map[string]string{
	"RATE_LIMIT": "100000", "RATE_BURST": "100000",
	"RATE_BYTES": "1073741824", "RATE_BYTES_BURST": "1073741824",
}

func with(base map[string]string, extra ...string) map[string]string {
	out := make(map[string]string, len(base)+len(extra)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// fillRoom has a client on url post n messages of size bytes to room and
// returns their ids, oldest first.
func fillRoom(t *testing.T, url, room string, n, size int) []string {
	t.Helper()
	w := wstest.Open(t, url+"?user=writer")
	w.Join(room, "writer", "writer")
	pad := strings.Repeat("x", size-6)
	ids := make([]string, n)
	for i := range n {
		text := strconv.Itoa(100000 + i)[1:] + "-" + pad
		w.Say(room, text)
		ids[i] = w.ExpectRoomMessage(room, "writer", text).ID
	}
	w.Close()
	return ids
}

// stalledJoin connects a client that resumes room from since and then
// never reads, with a small receive buffer so the kernel cannot take the
// replay off the server's hands. It returns the connection, to close.
func stalledJoin(t *testing.T, url, user, room, since string) *websocket.Conn {
	t.Helper()
	dialer := &net.Dialer{}
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url+"?user="+user, &websocket.DialOptions{HTTPClient: &http.Client{Transport: transport}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseNow(); transport.CloseIdleConnections() })
	frame := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room, Since: since})
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestStalledResumesStayWithinReplayMemory: 50 clients on node B resume
// from the start of a 2 MiB room written on node A and then read nothing.
// The history B's replays hold in memory never passes REPLAY_MEMORY (read
// from the switchboard_replay_bytes gauge), though they do use it; and a
// client that does read, resuming while they stall, gets its replay.
func TestStalledResumesStayWithinReplayMemory(t *testing.T) {
	d, _ := singleRedis(t)
	const replayMemory = 128 << 10
	env := with(unbounded, "REPLAY_MEMORY", strconv.Itoa(replayMemory), "MAX_FRAME_BYTES", "32768", "SEND_QUEUE_BYTES", "65536")
	ns := d.nodes(t, 2, env)
	ids := fillRoom(t, ns[0].WS(), "#huge", 128, 16<<10)

	var peak, samples int
	var sampling sync.WaitGroup
	stop := make(chan struct{})
	sampling.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if used := replayGauge(t, ns[1]); used > peak {
				peak = used
			}
			samples++
		}
	})
	for i := range 50 {
		stalledJoin(t, ns[1].WS(), "stalled"+strconv.Itoa(i), "#huge", ids[0])
	}
	time.Sleep(time.Second)
	// A reading client's resume still proceeds, taking its turn.
	reader := wstest.Open(t, ns[1].WS()+"?user=reader")
	reader.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#huge", Since: ids[len(ids)-4]})
	reader.Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
	reader.Expect(protocol.ChannelChatRoom, protocol.TypeJoinedRoom)
	for _, id := range ids[len(ids)-3:] {
		var m protocol.RoomMessage
		reader.Expect(protocol.ChannelChatRoom, protocol.TypeNewMessage).Decode(t, &m)
		if m.ID != id {
			t.Fatalf("reader got %s, want %s", m.ID, id)
		}
	}
	close(stop)
	sampling.Wait()
	t.Logf("replay memory peaked at %d bytes over %d samples (budget %d)", peak, samples, replayMemory)
	if peak > replayMemory {
		t.Fatalf("replays held %d bytes, over REPLAY_MEMORY %d", peak, replayMemory)
	}
	if peak < replayMemory/2 {
		t.Fatalf("replays held at most %d bytes: the 50 stalled resumes never contended for the %d budget", peak, replayMemory)
	}
}

// replayGauge reads switchboard_replay_bytes from a node's metrics, as
// /metrics serves them.
func replayGauge(t *testing.T, n *testnode.Node) int {
	t.Helper()
	rec := httptest.NewRecorder()
	n.Node.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(line, "switchboard_replay_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Error(err)
			}
			return int(f)
		}
	}
	t.Error("no switchboard_replay_bytes gauge in /metrics")
	return 0
}

// TestResumeAcrossPagesWhileTrafficContinues: a resume whose replay takes
// several pages (a page is SEND_QUEUE_BYTES/4) while messages keep coming
// from another node gets every message once, in order, with no gap
// between the replay and the live ones.
func TestResumeAcrossPagesWhileTrafficContinues(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, with(unbounded, "MAX_FRAME_BYTES", "32768", "SEND_QUEUE_BYTES", "65536"))
	const room, stored, live = "#pages", 60, 150
	ids := fillRoom(t, ns[0].WS(), room, stored, 2048) // ~120 KiB: about 8 pages

	alice := wstest.Open(t, ns[0].WS()+"?user=alice")
	alice.Join(room, "alice", "alice")
	var sending sync.WaitGroup
	sending.Go(func() {
		for i := range live {
			alice.Say(room, strconv.Itoa(i))
		}
	})
	bob := wstest.Open(t, ns[1].WS()+"?user=bob")
	bob.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: room, Since: ids[0]})
	bob.Expect(protocol.ChannelChatRoom, protocol.TypeMemberList)
	var joined protocol.JoinedRoom
	bob.Expect(protocol.ChannelChatRoom, protocol.TypeJoinedRoom).Decode(t, &joined)
	if joined.Recovered == nil || !*joined.Recovered {
		t.Fatalf("recovered = %v, want true", joined.Recovered)
	}
	for _, id := range ids[1:] {
		var m protocol.RoomMessage
		bob.WaitFor(protocol.ChannelChatRoom, protocol.TypeNewMessage).Decode(t, &m)
		if m.ID != id {
			t.Fatalf("replay gave %s, want %s", m.ID, id)
		}
	}
	for i := range live {
		var m protocol.RoomMessage
		bob.WaitFor(protocol.ChannelChatRoom, protocol.TypeNewMessage).Decode(t, &m)
		if m.User != "alice" || m.Message != strconv.Itoa(i) {
			t.Fatalf("live message %d: got %q from %s", i, m.Message, m.User)
		}
	}
	sending.Wait()
	expectNothingMore(alice, "alice", room, bob)
}

// TestFullRedisAnswersUnavailable: when Redis reaches maxmemory (with
// noeviction, as the compose file sets it), a message that cannot be
// stored is answered unavailable, and nothing is delivered for it.
func TestFullRedisAnswersUnavailable(t *testing.T) {
	srv := testredis.Start(t, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
	n := testnode.StartRedis(t, testnode.Config(t, with(unbounded, "REDIS_URL", srv.URL())))
	alice := wstest.Open(t, n.WS()+"?user=alice")
	alice.Join("#full", "alice", "alice")
	text := strings.Repeat("f", 16<<10)
	broadcasts := 0
	for i := range 1000 {
		alice.SendRef(protocol.ChannelChatRoom, strconv.Itoa(i), protocol.TypeSendMessage, protocol.SendMessage{Room: "#full", Message: text, Ack: true})
		// The answer (Sent or Error) and the broadcast come in either order.
		f := alice.Next()
		for f.Type == protocol.TypeNewMessage {
			broadcasts++
			f = alice.Next()
		}
		if f.Type == protocol.TypeSent {
			continue
		}
		var e protocol.Error
		f.Decode(t, &e)
		if f.Type != "Error" || e.Code != protocol.CodeUnavailable || e.Room != "#full" {
			t.Fatalf("message %d into a full Redis answered %s %+v", i, f.Type, e)
		}
		if i == 0 {
			t.Fatal("the first message was refused: Redis was full from the start")
		}
		// Every stored message was broadcast, the refused one was not.
		for broadcasts < i {
			alice.Expect(protocol.ChannelChatRoom, protocol.TypeNewMessage)
			broadcasts++
		}
		alice.ExpectNothing(200 * time.Millisecond)
		return
	}
	t.Fatal("1000 messages of 16 KiB fitted into a 4 MB Redis")
}
