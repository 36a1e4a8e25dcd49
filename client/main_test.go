package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/protocol"
)

// TestMain fails the run when a goroutine outlives its test: every Conn's
// reader and every Reconnecting's supervisor must end with Close.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper")); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testTimeout bounds every wait of a test.
const testTimeout = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// memoryNode starts one node on the embedded broker with extra settings.
func memoryNode(t *testing.T, env map[string]string) *testnode.Node {
	t.Helper()
	return testnode.StartMemory(t, testnode.Config(t, env))
}

// redisNodes starts n nodes sharing one real redis-server.
func redisNodes(t *testing.T, n int) []*testnode.Node {
	t.Helper()
	srv := testredis.Start(t)
	cfg := testnode.Config(t, map[string]string{
		"REDIS_URL":    srv.URL(),
		"REDIS_PREFIX": "sbc-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":",
	})
	nodes := make([]*testnode.Node, n)
	for i := range nodes {
		nodes[i] = testnode.StartRedis(t, cfg)
	}
	return nodes
}

// dial connects as user (open mode) and closes the connection when the
// test ends.
func dial(t *testing.T, n *testnode.Node, user string) *Conn {
	t.Helper()
	c, err := Dial(testCtx(t), n.WS()+"?user="+user, Options{})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// next returns the next frame of channel/typ, skipping others, failing the
// test if none comes in time.
func next(t *testing.T, c interface {
	Next(context.Context) (Frame, error)
}, channel, typ string) Frame {
	t.Helper()
	ctx := testCtx(t)
	for {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s/%s: %v", channel, typ, err)
		}
		if f.Channel == channel && f.Type == typ {
			return f
		}
	}
}

// nextMessage returns the next room message, skipping other frames.
func nextMessage(t *testing.T, c interface {
	Next(context.Context) (Frame, error)
}) protocol.RoomMessage {
	t.Helper()
	var m protocol.RoomMessage
	if err := next(t, c, protocol.ChannelChatRoom, protocol.TypeNewMessage).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// requireRefEcho skips the test unless the server echoes refs: it sends a
// JoinRoom with a ref and looks at the reply.
func requireRefEcho(t *testing.T, n *testnode.Node) {
	t.Helper()
	c := dial(t, n, "ref-probe")
	ctx := testCtx(t)
	if err := c.SendRef(ctx, "probe-1", protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "ref-probe"}); err != nil {
		t.Fatal(err)
	}
	f := next(t, c, protocol.ChannelChatRoom, protocol.TypeMemberList)
	if f.Ref != "probe-1" {
		t.Skipf("the server does not echo refs yet (MemberList answering a JoinRoom with ref %q came as %s): skipping until it does", "probe-1", f)
	}
}

// mintTicket asks the node's POST /tokens for a ticket for user.
func mintTicket(t *testing.T, n *testnode.Node, user string) string {
	t.Helper()
	status, body := n.Do(t, http.MethodPost, "/tokens", `{"user":"`+user+`"}`,
		http.Header{"Authorization": {"Bearer " + testAPIKey}})
	if status != http.StatusOK {
		t.Fatalf("POST /tokens = %d %s", status, body)
	}
	var resp struct{ Token string }
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Token == "" {
		t.Fatalf("POST /tokens answered %s: %v", body, err)
	}
	return resp.Token
}

const (
	testSecret = "client-test-secret-at-least-32-bytes-long"
	testAPIKey = "client-test-api-key"
)

// authNode starts a node in authenticated mode.
func authNode(t *testing.T) *testnode.Node {
	t.Helper()
	return memoryNode(t, map[string]string{"JWT_SECRET": testSecret, "SERVER_API_KEY": testAPIKey})
}
