package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
)

// roundTrips counts what a client sends to Redis: one per command sent
// alone, one per pipeline however many commands it holds.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// commandStats reads INFO commandstats: the calls of each command since
// the last CONFIG RESETSTAT, counting commands run inside scripts too.
func commandStats(tb testing.TB, admin *redis.Client) map[string]int64 {
	tb.Helper()
	info, err := admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	stats := make(map[string]int64)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		stats[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return stats
}

// presenceCost is what one presence workload cost Redis.
type presenceCost struct {
	roundTrips int64 // sent by the node
	scripts    int64 // EVALSHA and EVAL calls
	commands   int64 // every command Redis ran, inside scripts too
}

// measurePresence runs work on a fresh node and reports what it cost,
// the node's setup and the measuring commands left out.
func measurePresence(tb testing.TB, srv *testredis.Server, prefix string, work func(r *Redis)) presenceCost {
	tb.Helper()
	ctx := context.Background()
	opts := testOpts
	r, err := NewRedis(RedisOptions{Options: opts, URL: srv.URL(), Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	r.Start(func(Message) {})
	defer func() { _ = r.Close() }()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer func() { _ = admin.Close() }()
	hook := &roundTrips{}
	r.client.AddHook(hook)
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		tb.Fatal(err)
	}
	work(r)
	stats := commandStats(tb, admin)
	c := presenceCost{roundTrips: hook.n.Load(), scripts: stats["evalsha"] + stats["eval"]}
	for name, n := range stats {
		if name != "info" && name != "config|resetstat" {
			c.commands += n
		}
	}
	return c
}

// BenchmarkPresenceJoinStorm: 2,000 connections join one room on one node
// at once. It reports the Redis round trips, script calls and commands
// the joins cost, per join.
func BenchmarkPresenceJoinStorm(b *testing.B) {
	const joins = 2000
	srv := testredis.Start(b)
	var cost presenceCost
	for i := 0; b.Loop(); i++ {
		c := measurePresence(b, srv, fmt.Sprintf("js%d:", i), func(r *Redis) {
			var wg sync.WaitGroup
			for u := range joins {
				wg.Go(func() {
					user := "u" + strconv.Itoa(u)
					if _, err := r.AddPresence(context.Background(), "room:#storm", user, user+"-c", []byte("joined")); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		})
		cost.roundTrips += c.roundTrips
		cost.scripts += c.scripts
		cost.commands += c.commands
	}
	per := float64(b.N * joins)
	b.ReportMetric(float64(cost.roundTrips)/per, "roundtrips/join")
	b.ReportMetric(float64(cost.scripts)/per, "scripts/join")
	b.ReportMetric(float64(cost.commands)/per, "rediscmds/join")
}

// BenchmarkPresenceHeartbeat: one heartbeat of a node holding 2,000
// connection-rooms (100 rooms of 20 users). It reports the Redis round
// trips, script calls and commands of one beat.
func BenchmarkPresenceHeartbeat(b *testing.B) {
	const rooms, users = 100, 20
	srv := testredis.Start(b)
	ctx := context.Background()
	r, err := NewRedis(RedisOptions{Options: testOpts, URL: srv.URL(), Prefix: "hb:"})
	if err != nil {
		b.Fatal(err)
	}
	r.Start(func(Message) {})
	b.Cleanup(func() { _ = r.Close() })
	for room := range rooms {
		for u := range users {
			user := "u" + strconv.Itoa(u)
			if _, err := r.AddPresence(ctx, "room:#"+strconv.Itoa(room), user, user+"-c", []byte("joined")); err != nil {
				b.Fatal(err)
			}
		}
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = admin.Close() })
	hook := &roundTrips{}
	r.client.AddHook(hook)
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := r.presence.beat(r); err != nil {
			b.Fatal(err)
		}
	}
	stats := commandStats(b, admin)
	var commands int64
	for name, n := range stats {
		if name != "config|resetstat" {
			commands += n
		}
	}
	per := float64(b.N)
	b.ReportMetric(float64(hook.n.Load())/per, "roundtrips/beat")
	b.ReportMetric(float64(stats["evalsha"]+stats["eval"])/per, "scripts/beat")
	b.ReportMetric(float64(commands)/per, "rediscmds/beat")
}
