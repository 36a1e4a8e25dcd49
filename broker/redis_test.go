package broker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
)

func redisBackend(t *testing.T, url string, cluster []string) backend {
	return backend{
		multiNode: true,
		newNode: func(t *testing.T, opts Options) Broker {
			b, err := NewRedis(RedisOptions{Options: opts, URL: url, ClusterAddrs: cluster, Prefix: "test:" + t.Name() + ":", OpTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

func TestRedisConformance(t *testing.T) {
	srv := testredis.Start(t)
	runConformance(t, redisBackend(t, srv.URL(), nil))
}

func TestRedisClusterConformance(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	runConformance(t, redisBackend(t, "", cluster.Addrs()))
}

// newRedisNode starts a Redis broker node collecting deliveries.
func newRedisNode(t *testing.T, url string, cluster []string, prefix string, opts Options) (*Redis, *node) {
	t.Helper()
	b, err := NewRedis(RedisOptions{Options: opts, URL: url, ClusterAddrs: cluster, Prefix: prefix, OpTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{Broker: b, got: make(chan Message, 10000)}
	n.Start(func(m Message) { n.got <- m })
	t.Cleanup(func() { _ = b.Close() })
	return b, n
}

// numsub asks Redis how many connections subscribe to a channel.
func numsub(t *testing.T, c redis.UniversalClient, sharded bool, ch string) int64 {
	t.Helper()
	ctx := context.Background()
	var m map[string]int64
	var err error
	if sharded {
		// Shard channels are counted by the master serving their slot.
		master, merr := c.(*redis.ClusterClient).MasterForKey(ctx, ch)
		if merr != nil {
			t.Fatal(merr)
		}
		m, err = master.PubSubShardNumSub(ctx, ch).Result()
	} else {
		m, err = c.PubSubNumSub(ctx, ch).Result()
	}
	if err != nil {
		t.Fatal(err)
	}
	return m[ch]
}

// TestOnePubSubConnectionPerNode checks through Redis itself that a node
// multiplexes every subscription over one connection (one per shard in a
// cluster) and that each channel is subscribed once per node.
func TestOnePubSubConnectionPerNode(t *testing.T) {
	srv := testredis.Start(t)
	cluster := testredis.StartCluster(t, 3)
	for _, tc := range []struct {
		name    string
		url     string
		addrs   []string
		sharded bool
	}{
		{"single", srv.URL(), nil, false},
		{"cluster", "", cluster.Addrs(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			a, _ := newRedisNode(t, tc.url, tc.addrs, "p:", testOpts)
			b, _ := newRedisNode(t, tc.url, tc.addrs, "p:", testOpts)
			topics := []string{"room:#a", "room:#b", "room:#c", "room:#d", "room:#e", "room:#f"}
			for _, topic := range topics {
				for _, n := range []*Redis{a, b} {
					if err := n.Subscribe(ctx, topic); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, topic := range topics {
				if got := numsub(t, a.client, tc.sharded, a.channel(topic)); got != 2 {
					t.Errorf("%s: %d subscribers, want 2 (one per node)", topic, got)
				}
			}
			if err := a.Unsubscribe(ctx, topics[0]); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return numsub(t, a.client, tc.sharded, a.channel(topics[0])) == 1 })

			shards := a.subs.shardCount()
			want := 1
			if tc.sharded {
				want = 3 // six rooms spread over three masters
			}
			if shards > want {
				t.Errorf("%d pub/sub connections, want at most %d", shards, want)
			}
		})
	}
}

// TestRedisRestart stops Redis under a subscribed node, checks that
// publishing fails with ErrUnavailable and readiness drops, then restarts
// it and checks that the node restores its subscriptions by itself.
func TestRedisRestart(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, na := newRedisNode(t, srv.URL(), nil, "r:", testOpts)
	b, _ := newRedisNode(t, srv.URL(), nil, "r:", testOpts)
	if err := a.Subscribe(ctx, "room:#x"); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	_, err := b.Publish(ctx, Message{Topic: "room:#x", Data: []byte("lost")}, true)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish with Redis down: err = %v, want ErrUnavailable", err)
	}
	waitFor(t, func() bool { return a.Ready(ctx) != nil })

	srv.Restart(t)
	waitFor(t, func() bool { return a.Ready(ctx) == nil })
	if _, err := b.Publish(ctx, Message{Topic: "room:#x", Data: []byte("back")}, true); err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); string(got.Data) != "back" {
		t.Errorf("after restart delivered %q", got.Data)
	}
}

// TestPublishRightAfterRestart: connections a node's pool kept from
// before a Redis restart are found closed and replaced; the first publishes
// after Redis is back succeed, none fails on a stale connection.
func TestPublishRightAfterRestart(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, na := newRedisNode(t, srv.URL(), nil, "r:", testOpts)
	b, _ := newRedisNode(t, srv.URL(), nil, "r:", testOpts)
	if err := a.Subscribe(ctx, "room:#x"); err != nil {
		t.Fatal(err)
	}
	// Leave several idle connections in b's pool.
	client := b.client.(*redis.Client)
	var held []*redis.Conn
	for range 6 {
		c := client.Conn()
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		_ = c.Close()
	}
	if idle := client.PoolStats().IdleConns; idle < 6 {
		t.Fatalf("pool holds %d idle connections, want 6", idle)
	}

	srv.Stop(t)
	srv.Restart(t)
	waitFor(t, func() bool { return a.Ready(ctx) == nil })
	for i := range 6 {
		data := fmt.Sprintf("back %d", i)
		if _, err := b.Publish(ctx, Message{Topic: "room:#x", Data: []byte(data)}, true); err != nil {
			t.Fatalf("publish %d after restart: %v", i, err)
		}
		if got := na.next(t); string(got.Data) != data {
			t.Fatalf("after restart delivered %q, want %q", got.Data, data)
		}
	}
}

// TestRedisDownAtStart: a node starts while Redis is down, is not ready,
// keeps the subscriptions it was asked for, and serves them once Redis
// comes up.
func TestRedisDownAtStart(t *testing.T) {
	srv := testredis.Start(t)
	srv.Stop(t)
	ctx := context.Background()
	a, na := newRedisNode(t, srv.URL(), nil, "d:", testOpts)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := a.Subscribe(short, "chat"); err == nil {
		t.Fatal("subscribe with Redis down succeeded")
	}
	if a.Ready(ctx) == nil {
		t.Fatal("ready with Redis down")
	}
	srv.Restart(t)
	waitFor(t, func() bool { return a.Ready(ctx) == nil })
	b, _ := newRedisNode(t, srv.URL(), nil, "d:", testOpts)
	if _, err := b.Publish(ctx, Message{Topic: "chat", Data: []byte("hello")}, false); err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); string(got.Data) != "hello" {
		t.Errorf("delivered %q", got.Data)
	}
}

// shardCount is how many pub/sub connections the node keeps.
func (s *subscriptions) shardCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shards)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterSlotMoveReroutesSubscription moves the slot of a subscribed
// room to another master: Redis unsubscribes the node there, and the node
// must follow the slot to its new master by itself.
func TestClusterSlotMoveReroutesSubscription(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	ctx := context.Background()
	a, na := newRedisNode(t, "", cluster.Addrs(), "mv:", testOpts)
	b, _ := newRedisNode(t, "", cluster.Addrs(), "mv:", testOpts)
	const topic = "room:#moving"
	if err := a.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	ch := a.channel(topic)
	slot, err := b.client.ClusterKeySlot(ctx, ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner, err := b.cluster.MasterForKey(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	var target string
	for _, addr := range cluster.Addrs() {
		if addr != owner.Options().Addr {
			target = addr
			break
		}
	}
	nodeClient := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	targetID, err := nodeClient(target).Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	// The room has no keys, so the slot can be reassigned directly; the
	// target learns first, then the old owner, then the rest.
	order := []string{target, owner.Options().Addr}
	for _, addr := range cluster.Addrs() {
		if addr != target && addr != owner.Options().Addr {
			order = append(order, addr)
		}
	}
	for _, addr := range order {
		if err := nodeClient(addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", targetID).Err(); err != nil {
			t.Fatalf("SETSLOT on %s: %v", addr, err)
		}
	}
	waitFor(t, func() bool {
		n, err := nodeClient(target).PubSubShardNumSub(ctx, ch).Result()
		return err == nil && n[ch] == 1
	})
	waitFor(t, func() bool { return a.Ready(ctx) == nil })
	if _, err := b.Publish(ctx, Message{Topic: topic, Data: []byte("after the move")}, true); err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); string(got.Data) != "after the move" {
		t.Errorf("delivered %q", got.Data)
	}
}

// TestCancelledCallsKeepTheConnection: a caller's context that runs out
// must not reset the node's one pub/sub connection (go-redis drops a
// connection whose write was cancelled), which would make every other
// subscription of the node restore.
func TestCancelledCallsKeepTheConnection(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, _ := newRedisNode(t, srv.URL(), nil, "c:", testOpts)
	if err := a.Subscribe(ctx, "room:#kept"); err != nil {
		t.Fatal(err)
	}
	expired, cancel := context.WithCancel(ctx)
	cancel()
	for i := range 20 {
		topic := "room:#" + strings.Repeat("x", i+1)
		_ = a.Subscribe(expired, topic)
		_ = a.Unsubscribe(expired, topic)
	}
	waitFor(t, func() bool { return a.Ready(ctx) == nil })
	a.subs.mu.Lock()
	connects := a.subs.shards[""].connects.Load()
	a.subs.mu.Unlock()
	if connects != 1 {
		t.Fatalf("the pub/sub connection was made %d times, want 1", connects)
	}
}

// TestPresenceComesBackAnnouncedOnlyIfAnnouncedGone: a user swept as gone
// (its node was cut off past the TTL) is announced again when its node's
// heartbeat comes back; a user Redis merely forgot (a restart) is restored
// silently, since nobody was told it left.
func TestPresenceComesBackAnnouncedOnlyIfAnnouncedGone(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	opts := testOpts
	opts.PresenceTTL = 1500 * time.Millisecond
	a, _ := newRedisNode(t, srv.URL(), nil, "pa:", opts)
	b, nb := newRedisNode(t, srv.URL(), nil, "pa:", opts)
	if err := b.Subscribe(ctx, "room:#p"); err != nil {
		t.Fatal(err)
	}
	if first, err := a.AddPresence(ctx, "room:#p", "u", "c1", []byte("joined u")); err != nil || !first {
		t.Fatalf("add: %v, %v", first, err)
	}
	if got := nb.next(t); string(got.Data) != "joined u" {
		t.Fatalf("announced %q", got.Data)
	}

	// Redis forgets everything: the heartbeat restores u without a word.
	if err := b.client.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		m, _ := b.Members(ctx, "room:#p", MembersQuery{})
		return slices.Equal(m.Users, []string{"u"})
	})
	nb.nothing(t)

	// As if a partition outlasted the TTL: u expires and b sweeps it.
	if err := b.client.ZAdd(ctx, b.key("room:#p", ":users"), redis.Z{Score: 1, Member: "u"}).Err(); err != nil {
		t.Fatal(err)
	}
	gone, err := b.SweepPresence(ctx, "room:#p", UserTemplate{Head: []byte("left "), Middle: []byte(" ")})
	if err != nil || !slices.Equal(gone, []string{"u"}) {
		t.Fatalf("sweep: %v, %v", gone, err)
	}
	if got := nb.next(t); string(got.Data) != `left u "u"` {
		t.Fatalf("sweep announced %q", got.Data)
	}
	if got := nb.next(t); string(got.Data) != "joined u" {
		t.Fatalf("after the sweep, the heartbeat announced %q", got.Data)
	}
}

// TestDeadMasterDoesNotSpin: while the master serving a subscribed room is
// down, the node retries with backoff instead of rebuilding its shard in a
// tight loop.
func TestDeadMasterDoesNotSpin(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	ctx := context.Background()
	a, _ := newRedisNode(t, "", cluster.Addrs(), "sp:", testOpts)
	const topic = "room:#spin"
	if err := a.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	master, err := a.cluster.MasterForKey(ctx, a.channel(topic))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cluster.Nodes() {
		if n.Addr() == master.Options().Addr {
			n.Kill(t)
		}
	}
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	time.Sleep(3 * time.Second)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	if cpu > time.Second { // a tight retry loop burns about a core: 3 s here
		t.Fatalf("%s of CPU in 3 s while a master is down: the node spins", cpu)
	}
	shards := a.subs.shardCount()
	if shards > 3 {
		t.Fatalf("%d shards for a 3-master cluster", shards)
	}
}

// TestErrorsKeepTheirCause: a call Redis does not answer in time fails
// with ErrUnavailable when the broker's OpTimeout runs out, but with the
// caller's own context error when the caller's deadline passes first (the
// caller left; Redis is not to blame).
func TestErrorsKeepTheirCause(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	b, err := NewRedis(RedisOptions{Options: testOpts, URL: srv.URL(), Prefix: "ec:", OpTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.Start(func(Message) {})
	t.Cleanup(func() { _ = b.Close() })
	if _, err := b.Publish(ctx, Message{Topic: "t", Data: []byte("warm")}, true); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	for _, tc := range []struct {
		name     string
		deadline time.Duration // of the caller's context; 0: none
		want     error
		notWant  error
	}{
		{"broker timeout", 0, ErrUnavailable, context.Canceled},
		{"caller deadline", 100 * time.Millisecond, context.DeadlineExceeded, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Longer than any timeout here; commands (even UNPAUSE) wait it out.
			if err := admin.Do(ctx, "CLIENT", "PAUSE", 1500, "ALL").Err(); err != nil {
				t.Fatal(err)
			}
			defer admin.Ping(ctx) // returns once the pause is over
			callCtx := ctx
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				callCtx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			_, err := b.Publish(callCtx, Message{Topic: "t", Data: []byte("x")}, true)
			if !errors.Is(err, tc.want) || errors.Is(err, tc.notWant) {
				t.Fatalf("err = %v, want %v and not %v", err, tc.want, tc.notWant)
			}
		})
	}
}

// TestCloseEndsEveryGoroutine: Close ends the shards, their connections'
// readers, the router and the presence heartbeat, in a cluster too.
func TestCloseEndsEveryGoroutine(t *testing.T) {
	srv := testredis.Start(t)
	cluster := testredis.StartCluster(t, 3)
	for _, tc := range []struct {
		name  string
		url   string
		addrs []string
	}{
		{"single", srv.URL(), nil},
		{"cluster", "", cluster.Addrs()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			before := runtime.NumGoroutine()
			a, err := NewRedis(RedisOptions{Options: testOpts, URL: tc.url, ClusterAddrs: tc.addrs, Prefix: "ce:", OpTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			a.Start(func(Message) {})
			for _, topic := range []string{"room:#a", "room:#b", "room:#c", "room:#d"} {
				if err := a.Subscribe(ctx, topic); err != nil {
					t.Fatal(err)
				}
				if _, err := a.Publish(ctx, Message{Topic: topic, Data: []byte("x")}, true); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := a.AddPresence(ctx, "room:#a", "u", "c", nil); err != nil {
				t.Fatal(err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
