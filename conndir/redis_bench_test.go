package conndir

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
)

// BenchmarkRedisIdleHeartbeat measures what one heartbeat of a node holding
// 15,000 idle connections costs Redis: commands executed (those inside
// scripts included), the time Redis counts for the top-level commands
// (commandstats usec of the script calls, which include the commands they
// run, plus that of commands sent directly), and Redis's CPU time (INFO
// cpu, which also counts its own housekeeping).
func BenchmarkRedisIdleHeartbeat(b *testing.B) {
	const conns = 15_000
	srv := testredis.Start(b)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	d, err := NewRedis(c, RedisOptions{Options: Options{Node: "idle"}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range conns {
		if err := d.Register(ctx, Record{ID: fmt.Sprintf("conn-%05d", i), User: fmt.Sprintf("user-%d", i%1000)}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := d.Heartbeat(ctx); err != nil { // past a first beat's one-off work
		b.Fatal(err)
	}
	before := redisCPU(b, c)
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if lost, err := d.Heartbeat(ctx); err != nil || len(lost) > 0 {
			b.Fatalf("Heartbeat = %v, %v", lost, err)
		}
	}
	b.StopTimer()
	stats := commandStats(b, c)
	cpu := redisCPU(b, c) - before
	var calls, usec int64
	for cmd, s := range stats {
		if cmd != "info" && cmd != "config" {
			calls += s.calls
		}
	}
	scripts := stats["eval"].calls + stats["evalsha"].calls
	usec = stats["eval"].usec + stats["evalsha"].usec
	if scripts == 0 { // no script: every command was sent directly
		for cmd, s := range stats {
			if cmd != "info" && cmd != "config" {
				usec += s.usec
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(calls)/n, "redis-cmds/beat")
	b.ReportMetric(float64(scripts)/n, "scripts/beat")
	b.ReportMetric(float64(usec)/n, "redis-usec/beat")
	b.ReportMetric(float64(cpu.Microseconds())/n, "redis-cpu-usec/beat")
}

// redisCPU returns the CPU time the Redis server used so far.
func redisCPU(tb testing.TB, c *redis.Client) time.Duration {
	tb.Helper()
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
