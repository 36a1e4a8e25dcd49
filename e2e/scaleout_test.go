package e2e

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// deployment is a Redis that nodes share, and a client to inspect it.
type deployment struct {
	name    string
	env     map[string]string
	redis   redis.UniversalClient
	sharded bool
}

func singleRedis(t *testing.T) (deployment, *testredis.Server) {
	t.Helper()
	srv := testredis.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	return deployment{name: "single", env: map[string]string{"REDIS_URL": srv.URL()}, redis: rc}, srv
}

func clusterRedis(t *testing.T) deployment {
	t.Helper()
	c := testredis.StartCluster(t, 3)
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rc.Close() })
	return deployment{name: "cluster", env: map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(c.Addrs(), ",")}, redis: rc, sharded: true}
}

// aliceAndBob connects alice to one WebSocket URL and bob to another, both
// in room, with alice told of bob's join.
func aliceAndBob(t *testing.T, urlA, urlB, room string) (alice, bob *wstest.Client) {
	t.Helper()
	alice = wstest.Open(t, urlA+"?user=alice")
	bob = wstest.Open(t, urlB+"?user=bob")
	alice.Join(room, "alice", "alice")
	bob.Join(room, "bob", "alice", "bob")
	alice.ExpectRoomUser("JoinedRoom", room, "bob")
	return alice, bob
}

// nodes starts n nodes on d with extra settings.
func (d deployment) nodes(t *testing.T, n int, extra map[string]string) []*testnode.Node {
	t.Helper()
	env := map[string]string{"REDIS_PREFIX": "sb-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"}
	for k, v := range d.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg := testnode.Config(t, env)
	out := make([]*testnode.Node, n)
	for i := range out {
		out[i] = testnode.StartRedis(t, cfg)
	}
	return out
}

// subscribers counts the nodes subscribed to a topic's channel, asking
// Redis itself (PUBSUB NUMSUB, or SHARDNUMSUB on the slot's master).
func (d deployment) subscribers(t *testing.T, prefix, topic string) int64 {
	t.Helper()
	ctx := context.Background()
	ch := prefix + "{" + topic + "}"
	if !d.sharded {
		return d.redis.PubSubNumSub(ctx, ch).Val()[ch]
	}
	master, err := d.redis.(*redis.ClusterClient).MasterForKey(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	return master.PubSubShardNumSub(ctx, ch).Val()[ch]
}

// converge bounds how long a test waits, polling with wait.For, for
// nodes and Redis to reach a state (subscriptions, readiness, presence).
const converge = 15 * time.Second

// TestScaleOut runs the original prototype's two-server walk-through on a
// single Redis and on a Redis Cluster.
func TestScaleOut(t *testing.T) {
	single, _ := singleRedis(t)
	for _, d := range []deployment{single, clusterRedis(t)} {
		t.Run(d.name, func(t *testing.T) {
			t.Run("ChatAcrossNodes", func(t *testing.T) { testChatAcrossNodes(t, d) })
			t.Run("PingAcrossNodes", func(t *testing.T) { testPingAcrossNodes(t, d) })
			t.Run("RoomWalkThroughAcrossNodes", func(t *testing.T) { testRoomsAcrossNodes(t, d) })
			t.Run("JoinSeesTheNextMessage", func(t *testing.T) { testJoinSeesNextMessage(t, d) })
			t.Run("OrderAcrossNodes", func(t *testing.T) { testOrderAcrossNodes(t, d) })
		})
	}
}

func testChatAcrossNodes(t *testing.T, d deployment) {
	ns := d.nodes(t, 2, nil)
	a, b := wstest.Open(t, ns[0].WS()), wstest.Open(t, ns[1].WS())
	a.Send("chat", "SubmitMessage", "Hello World")
	for _, c := range []*wstest.Client{a, b} {
		var m protocol.ChatMessage
		c.Expect("chat", "NewMessageReceived").Decode(t, &m)
		if m.Content != "Hello World" || m.ID == "" {
			t.Errorf("got %+v", m)
		}
	}
}

func testPingAcrossNodes(t *testing.T, d deployment) {
	ns := d.nodes(t, 3, nil)
	clients := []*wstest.Client{wstest.Open(t, ns[0].WS()), wstest.Open(t, ns[1].WS()), wstest.Open(t, ns[2].WS())}
	for i, n := range ns {
		path := "/ping" + strconv.Itoa(1+i%2)
		if status, body := n.Do(t, http.MethodGet, path, "", nil); status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		for _, c := range clients {
			var got int
			c.Expect("ping", "Ping").Decode(t, &got)
			if got != 1+i%2 {
				t.Errorf("Ping %d after %s", got, path)
			}
		}
	}
}

func testRoomsAcrossNodes(t *testing.T, d deployment) {
	ns := d.nodes(t, 2, nil)
	prefix := ns[0].Server.Config().RedisPrefix
	subs := func() int64 { return d.subscribers(t, prefix, "room:#haskell") }
	alice := wstest.Open(t, ns[0].WS()+"?user=alice")
	bob := wstest.Open(t, ns[1].WS()+"?user=bob")
	carol := wstest.Open(t, ns[0].WS()+"?user=carol")

	alice.Join("#haskell", "alice", "alice")
	if got := subs(); got != 1 {
		t.Fatalf("after the first join: %d nodes subscribed, want 1", got)
	}
	alice.Say("#haskell", "Monad monoid category whatever")
	alice.ExpectRoomMessage("#haskell", "alice", "Monad monoid category whatever")

	// bob is no member: his join's strict replies below would fail on a
	// NewMessage that reached him first.
	bob.Join("#haskell", "bob", "alice", "bob")
	alice.ExpectRoomUser("JoinedRoom", "#haskell", "bob")
	if got := subs(); got != 2 {
		t.Fatalf("after a join on the second node: %d nodes subscribed, want 2", got)
	}
	carol.Join("#haskell", "carol", "alice", "bob", "carol")
	alice.ExpectRoomUser("JoinedRoom", "#haskell", "carol")
	bob.ExpectRoomUser("JoinedRoom", "#haskell", "carol")
	if got := subs(); got != 2 {
		t.Fatalf("a second local member added a subscription: %d, want 2", got)
	}

	bob.Say("#haskell", "from node two")
	for _, c := range []*wstest.Client{alice, bob, carol} {
		c.ExpectRoomMessage("#haskell", "bob", "from node two")
	}

	alice.Send("chat-room", "LeaveRoom", protocol.RoomRef{Room: "#haskell"})
	alice.ExpectRoomUser("LeftRoom", "#haskell", "alice")
	bob.ExpectRoomUser("LeftRoom", "#haskell", "alice")
	carol.ExpectRoomUser("LeftRoom", "#haskell", "alice")
	if got := subs(); got != 2 {
		t.Fatalf("node one unsubscribed while carol is still in the room")
	}
	carol.Close()
	bob.ExpectRoomUser("LeftRoom", "#haskell", "carol")
	wait.For(t, converge, "node one unsubscribes when its last member leaves", func() bool { return subs() == 1 })

	alice.Say("#haskell", "not a member")
	alice.ExpectError("chat-room", protocol.CodeNotMember)
	bob.Close()
	wait.For(t, converge, "no node subscribed once the room is empty", func() bool { return subs() == 0 })
}

// testJoinSeesNextMessage guards against the original prototype's race: a
// join must be acknowledged only once its subscription is in effect, so a
// message sent right after the acknowledgement always arrives.
func testJoinSeesNextMessage(t *testing.T, d deployment) {
	ns := d.nodes(t, 2, map[string]string{"RATE_LIMIT": "1000", "RATE_BURST": "1000"})
	alice := wstest.Open(t, ns[0].WS()+"?user=alice")
	bob := wstest.Open(t, ns[1].WS()+"?user=bob")
	for i := range 25 {
		room := "#race-" + strconv.Itoa(i)
		alice.Join(room, "alice", "alice")
		bob.Join(room, "bob", "alice", "bob")
		alice.ExpectRoomUser("JoinedRoom", room, "bob")
		alice.Say(room, "right after")
		bob.ExpectRoomMessage(room, "alice", "right after")
		alice.ExpectRoomMessage(room, "alice", "right after")
	}
}

func testOrderAcrossNodes(t *testing.T, d deployment) {
	ns := d.nodes(t, 2, map[string]string{"RATE_LIMIT": "10000", "RATE_BURST": "10000"})
	alice, bob := aliceAndBob(t, ns[0].WS(), ns[1].WS(), "#order")
	const count = 300
	for i := range count {
		alice.Say("#order", strconv.Itoa(i))
	}
	for i := range count {
		bob.ExpectRoomMessage("#order", "alice", strconv.Itoa(i))
	}
}

// TestMemberListsAcrossNodes checks accurate presence: each user listed
// once, whichever node and however many tabs.
func TestMemberListsAcrossNodes(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, nil)
	a1 := wstest.Open(t, ns[0].WS()+"?user=alice")
	a2 := wstest.Open(t, ns[1].WS()+"?user=alice")
	bob := wstest.Open(t, ns[1].WS()+"?user=bob")
	a1.Join("#m", "alice", "alice")
	a2.Join("#m", "alice", "alice") // a second tab, on another node: no new member
	// a1's next frame must be bob's JoinedRoom, not a second one of alice.
	bob.Join("#m", "bob", "alice", "bob")
	a1.ExpectRoomUser("JoinedRoom", "#m", "bob")
	a2.ExpectRoomUser("JoinedRoom", "#m", "bob")
	a1.Close()
	// Once node one has finished with a1 (its leave is published by then),
	// a message from a2 is bob's next frame: no LeftRoom, since alice
	// still has a tab in the room.
	wait.For(t, wstest.Timeout, "node one closes a1", func() bool { return ns[0].Server.Connections() == 0 })
	a2.Say("#m", "still here")
	bob.ExpectRoomMessage("#m", "alice", "still here")
	a2.ExpectRoomMessage("#m", "alice", "still here")
	a2.Close()
	bob.ExpectRoomUser("LeftRoom", "#m", "alice")
	late := wstest.Open(t, ns[0].WS()+"?user=carol")
	late.Join("#m", "carol", "bob", "carol")
}

// TestCrashedNodeMembersExpire SIGKILLs a node: its members vanish from
// member lists within PRESENCE_TTL, with no other node's help, and Redis
// drops its subscriptions.
func TestCrashedNodeMembersExpire(t *testing.T) {
	d, srv := singleRedis(t)
	prefix := "crash:"
	env := map[string]string{"REDIS_URL": srv.URL(), "REDIS_PREFIX": prefix, "PRESENCE_TTL": "2s"}
	victim := testnode.StartProcess(t, binary, env)
	survivor := testnode.StartRedis(t, testnode.Config(t, env))

	ghost := wstest.Open(t, victim.WS()+"?user=ghost")
	ghost.Join("#c", "ghost", "ghost")
	alive := wstest.Open(t, survivor.WS()+"?user=alive")
	alive.Join("#c", "alive", "alive", "ghost")
	ghost.ExpectRoomUser("JoinedRoom", "#c", "alive")
	if got := d.subscribers(t, prefix, "room:#c"); got != 2 {
		t.Fatalf("%d nodes subscribed, want 2", got)
	}

	killed := time.Now()
	victim.Kill()
	wait.For(t, converge, "the crashed node's subscription is gone", func() bool { return d.subscribers(t, prefix, "room:#c") == 1 })
	// The survivor's sweep tells the room, as a graceful disconnect would.
	alive.ExpectRoomUser("LeftRoom", "#c", "ghost")
	wait.For(t, converge, "the crashed node's member expires", func() bool {
		c := wstest.Open(t, survivor.WS()+"?user=probe")
		c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: "#c"})
		var list protocol.MemberList
		c.Expect("chat-room", "MemberList").Decode(t, &list)
		c.Close()
		return slices.Equal(list.Users, []string{"alive", "probe"})
	})
	if took := time.Since(killed); took > 2*time.Second+3*time.Second {
		t.Errorf("expiry took %s with PRESENCE_TTL 2s", took)
	}
}

// TestRedisRestartUnderLoad stops Redis under two nodes with connected
// clients: they stay connected, publishing is answered with unavailable,
// /readyz reports not ready, and when Redis returns traffic flows again
// without any client reconnecting.
func TestRedisRestartUnderLoad(t *testing.T) {
	d, srv := singleRedis(t)
	ns := d.nodes(t, 2, map[string]string{"PRESENCE_TTL": "3s", "OP_TIMEOUT": "1s"})
	alice, bob := aliceAndBob(t, ns[0].WS(), ns[1].WS(), "#r")

	srv.Stop(t)
	alice.Say("#r", "into the void")
	alice.ExpectError("chat-room", protocol.CodeUnavailable)
	alice.Send("chat", "SubmitMessage", "void")
	alice.ExpectError("chat", protocol.CodeUnavailable)
	for _, n := range ns {
		wait.For(t, converge, "readyz reports not ready", func() bool {
			status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil)
			return status == http.StatusServiceUnavailable
		})
	}

	srv.Restart(t)
	for _, n := range ns {
		wait.For(t, converge, "readyz reports ready again", func() bool {
			status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil)
			return status == http.StatusOK
		})
	}
	alice.Say("#r", "back")
	bob.ExpectRoomMessage("#r", "alice", "back")
	alice.ExpectRoomMessage("#r", "alice", "back")
	bob.Send("chat", "SubmitMessage", "chat is back")
	alice.WaitFor("chat", "NewMessageReceived")
	// Presence lost with Redis's memory comes back with the next heartbeat.
	wait.For(t, converge, "presence restored", func() bool {
		c := wstest.Open(t, ns[0].WS()+"?user=probe")
		c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: "#r"})
		var list protocol.MemberList
		c.Expect("chat-room", "MemberList").Decode(t, &list)
		c.Close()
		return slices.Equal(list.Users, []string{"alice", "bob", "probe"})
	})
}

// TestNodeStartsWithoutRedis: Redis unreachable at start, the node runs,
// is not ready, and becomes ready and useful when Redis appears.
func TestNodeStartsWithoutRedis(t *testing.T) {
	d, srv := singleRedis(t)
	srv.Stop(t)
	n := d.nodes(t, 1, nil)[0]
	if status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil); status != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d with Redis down", status)
	}
	if status, _ := n.Do(t, http.MethodGet, "/healthz", "", nil); status != http.StatusOK {
		t.Fatalf("healthz = %d: the process is alive", status)
	}
	srv.Restart(t)
	wait.For(t, converge, "ready once Redis is up", func() bool {
		status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil)
		return status == http.StatusOK
	})
	c := wstest.Open(t, n.WS())
	c.Send("chat", "SubmitMessage", "hello")
	c.Expect("chat", "NewMessageReceived")
}

// TestSlowRedisDoesNotDropClients: while Redis stalls longer than the
// keep-alive allows, a client waiting for its join still answers pings
// (the reader never waits for Redis) and stays connected.
func TestSlowRedisDoesNotDropClients(t *testing.T) {
	d, _ := singleRedis(t)
	n := d.nodes(t, 1, map[string]string{"WS_TIMEOUT": "2s", "OP_TIMEOUT": "10s"})[0]
	c := wstest.Open(t, n.WS()+"?user=patient")
	if err := d.redis.Do(context.Background(), "CLIENT", "PAUSE", "3500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	// More frames than the worker's inbox holds, all waiting on Redis: the
	// reader waits too, and the keep-alive must not mistake that for death.
	const rooms = 30
	for i := range rooms {
		c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: "#slow-" + strconv.Itoa(i)})
	}
	for i := range rooms {
		room := "#slow-" + strconv.Itoa(i)
		var list protocol.MemberList
		c.Expect("chat-room", "MemberList").Decode(t, &list)
		if list.Room != room {
			t.Fatalf("answer %d is for %q, want %q", i, list.Room, room)
		}
		c.ExpectRoomUser("JoinedRoom", room, "patient")
	}
	c.Say("#slow-0", "still here")
	c.ExpectRoomMessage("#slow-0", "patient", "still here")
	if got := n.Server.Connections(); got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}
}

// TestFailedJoinLeavesNoSubscription: a join that times out while Redis
// stalls is answered unavailable, and once Redis answers again the node
// holds no subscription for the room nobody joined.
func TestFailedJoinLeavesNoSubscription(t *testing.T) {
	d, _ := singleRedis(t)
	n := d.nodes(t, 1, map[string]string{"OP_TIMEOUT": "300ms"})[0]
	prefix := n.Server.Config().RedisPrefix
	c := wstest.Open(t, n.WS()+"?user=u")
	if err := d.redis.Do(context.Background(), "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: "#never"})
	c.ExpectError("chat-room", protocol.CodeUnavailable)
	wait.For(t, converge, "Redis answers again and the node is ready", func() bool {
		status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil)
		return status == http.StatusOK
	})
	// A stray subscription would be a SUBSCRIBE the node sent during the
	// pause. A join is answered only once Redis confirmed its own
	// SUBSCRIBE, sent after it: past this barrier the stray one shows.
	c.Join("#barrier", "u", "u")
	if got := d.subscribers(t, prefix, "room:#never"); got != 0 {
		t.Fatalf("%d subscriptions to a room nobody joined", got)
	}
	c.Join("#never", "u", "u") // and joining works now
}

// TestJoinersDoNotQueueBehindAFailingSubscribe: while Redis stalls, every
// first joiner of a room is answered within its own OP_TIMEOUT, rather
// than one OP_TIMEOUT after the joiner ahead of it.
func TestJoinersDoNotQueueBehindAFailingSubscribe(t *testing.T) {
	d, _ := singleRedis(t)
	const opTimeout = time.Second
	n := d.nodes(t, 1, map[string]string{"OP_TIMEOUT": opTimeout.String()})[0]
	clients := make([]*wstest.Client, 4)
	for i := range clients {
		clients[i] = wstest.Open(t, n.WS()+"?user=j"+strconv.Itoa(i))
	}
	if err := d.redis.Do(context.Background(), "CLIENT", "PAUSE", "6000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, c := range clients {
		c.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: "#stalled"})
	}
	for i, c := range clients {
		c.ExpectError("chat-room", protocol.CodeUnavailable)
		// Generous: the contract is one OP_TIMEOUT each, not one per joiner ahead.
		if took := time.Since(start); took > 3*opTimeout {
			t.Errorf("joiner %d answered after %s with OP_TIMEOUT %s", i, took.Round(time.Millisecond), opTimeout)
		}
	}
}

// TestJoinerHearsTheReplyToItsJoin: a member who answers a JoinedRoom at
// once reaches the joiner: the joiner listens before it is announced.
func TestJoinerHearsTheReplyToItsJoin(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, fast)
	bot := wstest.Open(t, ns[0].WS()+"?user=bot")
	for i := range 20 {
		room := "#welcome-" + strconv.Itoa(i)
		bot.Join(room, "bot", "bot")
		alice := wstest.Open(t, ns[1].WS()+"?user=alice")
		alice.Send("chat-room", "JoinRoom", protocol.RoomRef{Room: room})
		bot.ExpectRoomUser("JoinedRoom", room, "alice")
		bot.Say(room, "welcome alice")
		alice.Expect("chat-room", "MemberList")
		alice.ExpectRoomUser("JoinedRoom", room, "alice")
		alice.ExpectRoomMessage(room, "bot", "welcome alice")
		bot.ExpectRoomMessage(room, "bot", "welcome alice")
		alice.Close()
		bot.ExpectRoomUser("LeftRoom", room, "alice")
	}
}
