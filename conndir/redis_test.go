package conndir

import (
	"context"
	"slices"
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
		d, err := NewRedis(c, RedisOptions{Options: Options{Node: node, TTL: time.Minute}, Prefix: "loss:"})
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
	// for good, even if its node comes back.
	if err := flush.ZAdd(ctx, "loss:{conndir}:expiry", redis.Z{Score: 1, Member: "c1"}).Err(); err != nil {
		t.Fatal(err)
	}
	b := newDir("b")
	claimed, err := b.Sweep(ctx)
	if err != nil || len(claimed) != 1 || claimed[0].ID != "c1" {
		t.Fatalf("sweep claimed %v, %v", claimed, err)
	}
	if err := b.Ack(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if lost, err := a.Heartbeat(ctx); err != nil || !slices.Equal(lost, []string{"c1"}) {
		t.Fatalf("heartbeat after a takeover: lost %v, %v; want [c1]", lost, err)
	}
}
