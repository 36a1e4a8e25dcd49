package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wait"
)

// deployments are a single Redis and a 3-master cluster, for tests that
// must hold in both.
func deployments(t *testing.T) []struct {
	name    string
	url     string
	cluster []string
} {
	srv := testredis.Start(t)
	cluster := testredis.StartCluster(t, 3)
	return []struct {
		name    string
		url     string
		cluster []string
	}{{"single", srv.URL(), nil}, {"cluster", "", cluster.Addrs()}}
}

// TestJoinStormSharesRoundTrips: many connections joining at once reach
// Redis in a few pipelines, and each caller still gets its own answer:
// of a user's two connections joining together exactly one is first, and
// it is the one the room's JoinedRoom skips.
func TestJoinStormSharesRoundTrips(t *testing.T) {
	for _, d := range deployments(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			const users, topic = 200, "room:#storm"
			a, _ := newRedisNode(t, d.url, d.cluster, "js:", testOpts)
			_, watcher := newRedisNode(t, d.url, d.cluster, "js:", testOpts)
			if err := watcher.Subscribe(ctx, topic); err != nil {
				t.Fatal(err)
			}
			hook := &roundTrips{}
			a.client.AddHook(hook)

			var mu sync.Mutex
			firstConn := make(map[string][]string) // user → its connections reported first
			var wg sync.WaitGroup
			for u := range users {
				for c := range 2 {
					wg.Go(func() {
						user, conn := fmt.Sprintf("u%03d", u), fmt.Sprintf("u%03d-c%d", u, c)
						first, err := a.AddPresence(ctx, topic, user, conn, []byte("joined "+user))
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						defer mu.Unlock()
						if first {
							firstConn[user] = append(firstConn[user], conn)
						}
					})
				}
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if n := hook.n.Load(); n > 2*users/10 {
				t.Errorf("%d joins took %d round trips", 2*users, n)
			}
			if len(firstConn) != users {
				t.Fatalf("%d users had a first connection, want %d", len(firstConn), users)
			}
			for range users {
				m := watcher.next(t)
				user, _ := strings.CutPrefix(string(m.Data), "joined ")
				if conns := firstConn[user]; len(conns) != 1 || conns[0] != m.Except {
					t.Errorf("%s: first connections %v, announced except %q", user, conns, m.Except)
				}
			}
			watcher.nothing(t)
			if m := members(t, a, topic); len(m) != users {
				t.Errorf("%d members, want %d", len(m), users)
			}
		})
	}
}

// TestPresenceLotKeepsOrder: a join and a leave of one connection sent in
// the same pipeline happen in that order: the user is announced joined,
// then left, and is not present after.
func TestPresenceLotKeepsOrder(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, na := newRedisNode(t, srv.URL(), nil, "lo:", testOpts)
	const topic = "room:#order"
	if err := a.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	opCtx, cancel := a.op(ctx)
	defer cancel()
	join := &presenceOp{ctx: opCtx, done: make(chan presenceReply, 1), script: presenceAddScript, keys: a.presenceKeys(topic, "u"),
		args: []any{"u", "c", a.opts.PresenceTTL.Milliseconds(), a.channel(topic), "joined", "c", a.publishCommand(), "join", 0, topic}}
	leave := &presenceOp{ctx: opCtx, done: make(chan presenceReply, 1), script: presenceRemoveScript, keys: a.presenceKeys(topic, "u"),
		args: []any{"u", "c", a.channel(topic), "left", a.publishCommand(), a.sweptMemory().Milliseconds(), 0, topic}}
	w := a.presenceWriter(opCtx, topic)
	w.inbox.mu.Lock() // both in one lot
	w.inbox.items = append(w.inbox.items, join, leave)
	w.inbox.mu.Unlock()
	w.inbox.ready <- struct{}{}
	for _, op := range []*presenceOp{join, leave} {
		rep := <-op.done
		if n, err := rep.cmd.Int(); rep.err != nil || err != nil || n != 1 {
			t.Fatalf("reply %v, %v, %v; want 1", n, rep.err, err)
		}
	}
	for _, want := range []string{"joined", "left"} {
		if got := na.next(t); string(got.Data) != want {
			t.Fatalf("announced %q, want %q", got.Data, want)
		}
	}
	if m := members(t, a, topic); len(m) != 0 {
		t.Errorf("members %v after join and leave", m)
	}
}

// TestCancelledCallerLeavesItsLotAlone: a caller that gives up while its
// join waits for Redis gets its own context's error; the others sent with
// it get their answers.
func TestCancelledCallerLeavesItsLotAlone(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, _ := newRedisNode(t, srv.URL(), nil, "cc:", testOpts)
	if _, err := a.AddPresence(ctx, "room:#warm", "w", "w", nil); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 700, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Ping(ctx)
	leaving, leave := context.WithCancel(ctx)
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range errs {
		c := ctx
		if i == 0 {
			c = leaving
		}
		wg.Go(func() {
			_, errs[i] = a.AddPresence(c, "room:#pause", fmt.Sprintf("u%d", i), "c", nil)
		})
	}
	time.Sleep(200 * time.Millisecond)
	leave()
	wg.Wait()
	if !errors.Is(errs[0], context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("caller %d: %v", i+1, err)
		}
	}
}

// TestHeartbeatOneScriptPerRoom: a heartbeat refreshes a node's entries
// with one script call per room, keeping them past their TTL, and a user
// swept during a partition is announced again, once.
func TestHeartbeatOneScriptPerRoom(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	rooms := []string{"room:#1", "room:#2", "room:#3"}

	t.Run("count", func(t *testing.T) {
		a, _ := newRedisNode(t, srv.URL(), nil, "hc:", testOpts) // a 30 s TTL: no beat of its own here
		for _, room := range rooms {
			for _, conn := range []string{"x1", "x2", "y1"} {
				if _, err := a.AddPresence(ctx, room, conn[:1], conn, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := a.presence.beat(a); err != nil { // loads the script
			t.Fatal(err)
		}
		if err := admin.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := a.presence.beat(a); err != nil {
			t.Fatal(err)
		}
		if got := commandStats(t, admin)["evalsha"]; got != int64(len(rooms)) {
			t.Errorf("one beat of %d rooms ran %d scripts", len(rooms), got)
		}
		for _, room := range rooms {
			ttl := admin.PTTL(ctx, a.key(room, ":conns:x")).Val()
			if n := admin.ZCard(ctx, a.key(room, ":conns:x")).Val(); n != 2 || ttl <= 0 {
				t.Errorf("%s: x has %d connections, ttl %v", room, n, ttl)
			}
		}
	})

	t.Run("alive and back", func(t *testing.T) {
		opts := testOpts
		opts.PresenceTTL = 1500 * time.Millisecond
		a, _ := newRedisNode(t, srv.URL(), nil, "hb:", opts)
		b, nb := newRedisNode(t, srv.URL(), nil, "hb:", opts)
		for _, room := range rooms {
			if err := b.Subscribe(ctx, room); err != nil {
				t.Fatal(err)
			}
			for _, conn := range []string{"x1", "x2", "y1"} {
				if _, err := a.AddPresence(ctx, room, conn[:1], conn, []byte("joined "+conn[:1])); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 2 * len(rooms) {
			nb.next(t)
		}
		time.Sleep(2 * opts.PresenceTTL)
		for _, room := range rooms {
			if m := members(t, b, room); !slices.Equal(m, []string{"x", "y"}) {
				t.Fatalf("%s after 2 TTLs: members %v", room, m)
			}
		}
		// As if a partition outlasted the TTL in one room.
		for _, u := range []string{"x", "y"} {
			if err := admin.ZAdd(ctx, b.key(rooms[1], ":users"), redis.Z{Score: 1, Member: u}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		gone, err := b.SweepPresence(ctx, rooms[1], UserTemplate{Head: []byte("left "), Middle: []byte(" ")})
		sort.Strings(gone)
		if err != nil || !slices.Equal(gone, []string{"x", "y"}) {
			t.Fatalf("sweep: %v, %v", gone, err)
		}
		var got []string
		for range 4 {
			m := nb.next(t)
			got = append(got, string(m.Data)+" except "+m.Except)
		}
		sort.Strings(got)
		want := []string{"joined x except x1", "joined y except y1", `left x "x" except `, `left y "y" except `}
		if !slices.Equal(got, want) && !slices.Equal(got, []string{"joined x except x2", want[1], want[2], want[3]}) {
			t.Errorf("announced %q, want %q", got, want)
		}
		nb.nothing(t)
	})
}

// TestOneNodeSweepsARoom: nodes sweeping a room at the same moment do its
// work once: each expired user is removed and announced by one of them;
// after the lock's time another sweep runs again.
func TestOneNodeSweepsARoom(t *testing.T) {
	for _, d := range deployments(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			opts := testOpts
			opts.PresenceTTL = 1500 * time.Millisecond
			const topic = "room:#swept"
			crashed, _ := newRedisNode(t, d.url, d.cluster, "os:", opts)
			nodes := make([]*Redis, 3)
			var watcher *node
			for i := range nodes {
				nodes[i], watcher = newRedisNode(t, d.url, d.cluster, "os:", opts)
			}
			if err := watcher.Subscribe(ctx, topic); err != nil {
				t.Fatal(err)
			}
			ghosts := []string{"g1", "g2", "g3"}
			for _, u := range ghosts {
				if _, err := crashed.AddPresence(ctx, topic, u, u, nil); err != nil {
					t.Fatal(err)
				}
			}
			// A live member keeps the room's keys from expiring with the ghosts.
			if _, err := nodes[0].AddPresence(ctx, topic, "alive", "alive", nil); err != nil {
				t.Fatal(err)
			}
			_ = crashed.Close()
			time.Sleep(opts.PresenceTTL + 100*time.Millisecond)

			left := UserTemplate{Head: []byte("left "), Middle: []byte(" ")}
			sweep := func() []string {
				var mu sync.Mutex
				var all []string
				var wg sync.WaitGroup
				for _, n := range nodes {
					wg.Go(func() {
						gone, err := n.SweepPresence(ctx, topic, left)
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						all = append(all, gone...)
						mu.Unlock()
					})
				}
				wg.Wait()
				sort.Strings(all)
				return all
			}
			if all := sweep(); !slices.Equal(all, ghosts) {
				t.Fatalf("three nodes sweeping reported %v, want %v once each", all, ghosts)
			}
			var got []string
			for range ghosts {
				got = append(got, string(watcher.next(t).Data))
			}
			sort.Strings(got)
			if !slices.Equal(got, []string{`left g1 "g1"`, `left g2 "g2"`, `left g3 "g3"`}) {
				t.Errorf("announced %q", got)
			}
			watcher.nothing(t)

			// The lock passes: the next sweep does its work again.
			// (An entry no node refreshes, expired as soon as it is made.)
			if err := nodes[0].client.ZAdd(ctx, nodes[0].key(topic, ":users"), redis.Z{Score: 1, Member: "late"}).Err(); err != nil {
				t.Fatal(err)
			}
			if all := sweep(); len(all) != 0 {
				t.Errorf("a sweep within the lock's time removed %v", all)
			}
			time.Sleep(nodes[0].sweepLock())
			if all := sweep(); !slices.Equal(all, []string{"late"}) {
				t.Errorf("a sweep after the lock removed %v, want [late]", all)
			}
		})
	}
}

// TestSweepSkipsRoomsThatCannotHaveExpired: a node's refresh of a room
// learns the earliest deadline of its users, any node's; until then a
// sweep of the room costs no Redis command, and once it has passed the
// sweep goes to Redis and announces the user of the node that stopped.
func TestSweepSkipsRoomsThatCannotHaveExpired(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	opts := testOpts
	opts.PresenceTTL = 3 * time.Second
	a, _ := newRedisNode(t, srv.URL(), nil, "skip:", opts)
	b, _ := newRedisNode(t, srv.URL(), nil, "skip:", opts)
	const room = "room:#skip"
	if _, err := b.AddPresence(ctx, room, "gone", "g1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPresence(ctx, room, "stays", "s1", nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // b stops refreshing: "gone" expires
		t.Fatal(err)
	}
	if err := a.presence.beat(a); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	left := UserTemplate{Head: []byte(`{"user":"`), Tail: []byte(`"}`)}
	if gone, err := a.SweepPresence(ctx, room, left); err != nil || len(gone) != 0 {
		t.Fatalf("early sweep: %v, %v", gone, err)
	}
	if n := commandStats(t, admin)["evalsha"]; n != 0 {
		t.Errorf("a sweep before any user could expire ran %d scripts", n)
	}
	var gone []string
	wait.For(t, 3*opts.PresenceTTL, "the stopped node's user swept", func() bool {
		users, err := a.SweepPresence(ctx, room, left)
		gone = append(gone, users...)
		return err == nil && len(gone) > 0
	})
	if len(gone) != 1 || gone[0] != "gone" {
		t.Fatalf("swept %v, want [gone]", gone)
	}
	page, err := a.Members(ctx, room, MembersQuery{})
	if err != nil || len(page.Users) != 1 || page.Users[0] != "stays" {
		t.Fatalf("members after the sweep: %+v, %v", page, err)
	}
}
