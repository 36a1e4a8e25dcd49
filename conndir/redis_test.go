package conndir

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
)

// redisCluster returns a factory of nodes, each with its own client, on
// keys under a prefix of its own per test.
func redisCluster(newClient func() redis.UniversalClient) func(t *testing.T) newNodeFunc {
	return func(t *testing.T) newNodeFunc {
		prefix := "test:" + t.Name() + ":"
		return func(t *testing.T, opts Options) Directory {
			c := newClient()
			t.Cleanup(func() { _ = c.Close() })
			d, err := NewRedis(c, RedisOptions{Options: opts, Prefix: prefix, BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
}

func TestRedisConformance(t *testing.T) {
	srv := testredis.Start(t)
	runConformance(t, redisCluster(func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: srv.Addr()})
	}))
}

func TestRedisClusterConformance(t *testing.T) {
	cluster := testredis.StartCluster(t, 3)
	runConformance(t, redisCluster(func() redis.UniversalClient {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	}))
}

// TestRedisLosingItsDataLosesNoConnection: a Redis restarted without its
// data (here: flushed) has forgotten every record. The next heartbeat of
// the node that holds them writes them back instead of reporting them
// lost (which would close live sockets), while a record another node
// took over and settled stays lost.
func TestRedisLosingItsDataLosesNoConnection(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	newDir := func(node string) *Redis {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { _ = c.Close() })
		d, err := NewRedis(c, RedisOptions{Options: Options{Node: node, TTL: time.Minute, SweepLimit: 1}, Prefix: "loss:"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := newDir("a")
	for _, id := range []string{"c1", "c2"} {
		if err := a.Register(ctx, Record{ID: id, User: "u", Rooms: []string{"#r"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Update(ctx, "c2", Change{Rooms: []string{"#r", "#s"}, SetRooms: true}); err != nil {
		t.Fatal(err)
	}
	flush := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer flush.Close()
	if err := flush.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	lost, err := a.Heartbeat(ctx)
	if err != nil || len(lost) != 0 {
		t.Fatalf("heartbeat after Redis lost its data: lost %v, err %v; want nothing lost", lost, err)
	}
	for id, rooms := range map[string][]string{"c1": {"#r"}, "c2": {"#r", "#s"}} {
		r, err := a.Get(ctx, id)
		if err != nil || r.Node != "a" || r.User != "u" || !slices.Equal(r.Rooms, rooms) {
			t.Errorf("%s after the heartbeat: %+v, %v; want it back with rooms %v", id, r, err, rooms)
		}
	}
	if got, err := a.ListByUser(ctx, "u"); err != nil || len(got) != 2 {
		t.Errorf("ListByUser after the heartbeat: %v, %v", got, err)
	}

	// A record that another node settled (its DELETE delivered) is lost
	// for good, even if its node comes back; its other record stays.
	// Here a's deadline is moved into the past as if it had stalled, and
	// b, claiming one record per sweep, takes over one of the two.
	if err := flush.ZAdd(ctx, "loss:{conndir}:expiry", redis.Z{Score: 1, Member: "a"}).Err(); err != nil {
		t.Fatal(err)
	}
	b := newDir("b")
	claimed, err := b.Sweep(ctx)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("sweep claimed %v, %v; want one record", claimed, err)
	}
	if err := b.Ack(ctx, claimed[0].ID); err != nil {
		t.Fatal(err)
	}
	if lost, err := a.Heartbeat(ctx); err != nil || !slices.Equal(lost, []string{claimed[0].ID}) {
		t.Fatalf("heartbeat after a takeover: lost %v, %v; want [%s]", lost, err, claimed[0].ID)
	}
	kept := map[string]string{"c1": "c2", "c2": "c1"}[claimed[0].ID]
	if r, err := b.Get(ctx, kept); err != nil || r.Node != "a" {
		t.Errorf("Get %s, which a kept: %+v, %v", kept, r, err)
	}
	if rs, err := b.Sweep(ctx); err != nil || len(rs) != 0 {
		t.Errorf("sweep once a is back: %v, %v; want nothing", rs, err)
	}
}

// TestRedisHeartbeatCostsNoWorkPerConnection: a heartbeat of a node whose
// records are intact costs Redis a few commands (those its script runs
// included), the same for 2,000 connections as for 10; a record with new
// activity adds one script call of its own, and a sweep that finds nothing
// expired costs a few commands too.
func TestRedisHeartbeatCostsNoWorkPerConnection(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	newDir := func(node string, conns int) *Redis {
		d, err := NewRedis(c, RedisOptions{Options: Options{Node: node}, Prefix: "cost:"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range conns {
			if err := d.Register(ctx, Record{ID: fmt.Sprintf("%s-%d", node, i), User: fmt.Sprintf("u%d", i%50)}); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	// commands counts what Redis executes during f.
	commands := func(f func()) (n int64, all map[string]cmdStat) {
		t.Helper()
		if err := c.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		f()
		all = commandStats(t, c)
		for cmd, s := range all {
			if cmd != "config" && cmd != "info" {
				n += s.calls
			}
		}
		return n, all
	}
	beat := func(d *Redis) func() {
		return func() {
			if lost, err := d.Heartbeat(ctx); err != nil || len(lost) != 0 {
				t.Fatalf("%s: Heartbeat = %v, %v", d.Node(), lost, err)
			}
		}
	}
	small, big := newDir("small", 10), newDir("big", 2000)
	nSmall, _ := commands(beat(small))
	nBig, stats := commands(beat(big))
	t.Logf("heartbeat of 2,000 idle connections: %d commands: %v", nBig, stats)
	if nBig >= 10 || nBig != nSmall {
		t.Errorf("heartbeat: %d commands for 2,000 connections, %d for 10; want the same few", nBig, nSmall)
	}
	if n, _ := commands(beat(big)); n != nBig {
		t.Errorf("second heartbeat: %d commands, first %d", n, nBig)
	}

	for i := range 3 {
		if err := big.Update(ctx, fmt.Sprintf("big-%d", i), Change{LastActivity: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// One script call each: EVAL (or EVALSHA), EXISTS, HSET, PEXPIRE.
	if n, stats := commands(beat(big)); n != nBig+3*4 {
		t.Errorf("heartbeat with 3 active connections: %d commands, want %d: %v", n, nBig+3*4, stats)
	}

	other := newDir("other", 0)
	n, stats := commands(func() {
		if rs, err := other.Sweep(ctx); err != nil || len(rs) != 0 {
			t.Fatalf("Sweep = %v, %v", rs, err)
		}
	})
	if n >= 10 {
		t.Errorf("sweep with nothing expired: %d commands: %v", n, stats)
	}
}

// TestRedisLosingRecentWritesLosesNoConnection: a Redis that lost a node's
// latest registration but not its deadline (a failover to a replica that
// had not received it, a restart from an older snapshot) counts fewer
// registrations than the node was told it made, so the node's next
// heartbeat checks its records and writes the lost one back.
func TestRedisLosingRecentWritesLosesNoConnection(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	d, err := NewRedis(c, RedisOptions{Options: Options{Node: "a", TTL: time.Minute}, Prefix: "recent:"})
	if err != nil {
		t.Fatal(err)
	}
	register(t, d, Record{ID: "c1", User: "u"})
	if lost, err := d.Heartbeat(ctx); err != nil || len(lost) != 0 {
		t.Fatalf("Heartbeat = %v, %v", lost, err)
	}
	register(t, d, Record{ID: "c2", User: "u", Rooms: []string{"#r"}})
	// What Redis forgets of c2's Register (its hash, user index entry,
	// node set entry, registration count), leaving the node's deadline.
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, "recent:conn:c2")
		p.SRem(ctx, "recent:conn-user:u", "c2")
		p.SRem(ctx, "recent:{conndir}:node:a", "c2")
		p.HIncrBy(ctx, "recent:{conndir}:registered", "a", -1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, "c2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get c2 once lost = %v", err)
	}
	if lost, err := d.Heartbeat(ctx); err != nil || len(lost) != 0 {
		t.Fatalf("Heartbeat after the loss = %v, %v; want nothing lost", lost, err)
	}
	if r, err := d.Get(ctx, "c2"); err != nil || !slices.Equal(r.Rooms, []string{"#r"}) {
		t.Fatalf("Get c2 after the heartbeat = %+v, %v; want it back", r, err)
	}
	if rs, err := d.ListByUser(ctx, "u"); err != nil || len(rs) != 2 {
		t.Fatalf("ListByUser = %v, %v; want c1 and c2", rs, err)
	}
}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct{ calls, usec int64 }

// commandStats returns INFO commandstats since the last CONFIG RESETSTAT,
// by command name (a subcommand counts as its command). A command a script
// runs counts both in its own line and in the script call's time.
func commandStats(tb testing.TB, c *redis.Client) map[string]cmdStat {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]cmdStat{}
	for line := range strings.SplitSeq(info, "\n") {
		// cmdstat_zadd:calls=1,usec=3,usec_per_call=3.00,...
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		cmd, isStat := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isStat {
			continue
		}
		cmd, _, _ = strings.Cut(cmd, "|")
		s := out[cmd]
		for field := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(field, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				s.calls += n
			case "usec":
				s.usec += n
			}
		}
		out[cmd] = s
	}
	return out
}
