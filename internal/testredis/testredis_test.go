package testredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// newClient returns a go-redis client for s, closed when the test ends.
func newClient(t *testing.T, s *Server) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", s.URL(), err)
	}
	opt.MaxRetries = -1 // fail fast while the server is down
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// assertRefused fails the test unless connecting to addr is refused.
func assertRefused(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s succeeded, want connection refused", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
}

func TestServerSetGet(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	if host, _, err := net.SplitHostPort(s.Addr()); err != nil || host != "127.0.0.1" {
		t.Errorf("Addr() = %q, want 127.0.0.1:port", s.Addr())
	}

	ctx := context.Background()
	rdb := newClient(t, s)
	tests := []struct{ key, value string }{
		{"plain", "hello"},
		{"empty", ""},
		{"spaces and:colons", "a b\r\nc"},
		{"unicode-ключ", "值"},
	}
	for _, tt := range tests {
		if err := rdb.Set(ctx, tt.key, tt.value, 0).Err(); err != nil {
			t.Fatalf("SET %q: %v", tt.key, err)
		}
		got, err := rdb.Get(ctx, tt.key).Result()
		if err != nil || got != tt.value {
			t.Errorf("GET %q = %q, %v; want %q", tt.key, got, err, tt.value)
		}
	}
}

func TestServerStopAndRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		down func(*Server, testing.TB)
	}{
		{"stop", (*Server).Stop},
		{"kill", (*Server).Kill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := Start(t)
			addr := s.Addr()
			rdb := newClient(t, s)
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}

			tt.down(s, t)
			tt.down(s, t) // stopping twice is a no-op
			assertRefused(t, addr)
			if err := rdb.Ping(ctx).Err(); err == nil {
				t.Fatal("PING succeeded while the server was down")
			}

			s.Restart(t)
			if s.Addr() != addr {
				t.Fatalf("Addr() after Restart = %q, want %q", s.Addr(), addr)
			}
			// The old client reconnects to the same address.
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING after Restart: %v", err)
			}
			if err := rdb.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
				t.Errorf("GET after Restart: %v, want redis.Nil (no persistence)", err)
			}

			s.Restart(t) // restarting a running server works too
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatalf("PING after second Restart: %v", err)
			}
		})
	}
}

func TestCleanupStopsProcess(t *testing.T) {
	t.Parallel()
	Require(t)
	var pid int
	var addr string
	ok := t.Run("start", func(t *testing.T) {
		s := Start(t)
		pid, addr = s.Pid(), s.Addr()
		if pid == 0 {
			t.Fatal("server has no pid")
		}
	})
	if !ok {
		return
	}
	// Cleanup waited for the exit, so the process is gone and reaped.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after cleanup: %v, want ESRCH", pid, err)
	}
	assertRefused(t, addr)
}

// recordingTB records Skipf and Fatalf, which end the calling goroutine
// like the real ones do.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRequire(t *testing.T) {
	real := Require(t)
	tests := []struct {
		name        string
		bin, skip   string
		wantSkipped bool
		wantFailed  bool
	}{
		{name: "found", bin: real},
		{name: "missing fails", bin: "/nonexistent/redis-server", wantFailed: true},
		{name: "missing fails unless skip is 1", bin: "/nonexistent/redis-server", skip: "true", wantFailed: true},
		{name: "missing skips", bin: "/nonexistent/redis-server", skip: "1", wantSkipped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("REDIS_SERVER_BIN", tt.bin)
			t.Setenv(SkipEnv, tt.skip)
			rec := &recordingTB{TB: t}
			var got string
			done := make(chan struct{})
			go func() {
				defer close(done)
				got = Require(rec)
			}()
			<-done
			if rec.skipped != tt.wantSkipped || rec.failed != tt.wantFailed {
				t.Fatalf("skipped=%v failed=%v (%q), want skipped=%v failed=%v",
					rec.skipped, rec.failed, rec.msg, tt.wantSkipped, tt.wantFailed)
			}
			if tt.wantSkipped || tt.wantFailed {
				if !strings.Contains(rec.msg, "apt-get install redis-server") {
					t.Errorf("message %q does not say how to install Redis", rec.msg)
				}
				return
			}
			if got != real {
				t.Errorf("Require() = %q, want %q", got, real)
			}
		})
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := StartCluster(t, 3)
	t.Logf("3-master cluster ready in %v", time.Since(start).Round(time.Millisecond))

	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })

	// redis-cli splits the slots evenly: 0-5460, 5461-10922, 10923-16383,
	// so these keys land on three different masters.
	keys := []struct {
		key  string
		slot int64
	}{
		{"b", 3300},
		{"c", 7365},
		{"a", 15495},
		{"{user:1}:name", 10778}, // hash tag: only "user:1" is hashed
	}
	for _, k := range keys {
		slot, err := rdb.ClusterKeySlot(ctx, k.key).Result()
		if err != nil || slot != k.slot {
			t.Fatalf("CLUSTER KEYSLOT %q = %d, %v; want %d", k.key, slot, err, k.slot)
		}
		if err := rdb.Set(ctx, k.key, "v-"+k.key, 0).Err(); err != nil {
			t.Fatalf("SET %q: %v", k.key, err)
		}
		if got, err := rdb.Get(ctx, k.key).Result(); err != nil || got != "v-"+k.key {
			t.Fatalf("GET %q = %q, %v; want %q", k.key, got, err, "v-"+k.key)
		}
	}
	// Every master holds some of the keys.
	for _, addr := range c.Addrs() {
		node := redis.NewClient(&redis.Options{Addr: addr})
		n, err := node.DBSize(ctx).Result()
		node.Close()
		if err != nil || n == 0 {
			t.Errorf("DBSIZE on %s = %d, %v; want > 0", addr, n, err)
		}
	}

	t.Run("sharded pubsub", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		const channel, payload = "orders:{eu}", "order 42"
		sub := rdb.SSubscribe(ctx, channel)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // subscription confirmation
			t.Fatalf("SSUBSCRIBE %s: %v", channel, err)
		}
		if n, err := rdb.SPublish(ctx, channel, payload).Result(); err != nil || n != 1 {
			t.Fatalf("SPUBLISH %s = %d, %v; want 1 receiver", channel, n, err)
		}
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("receiving on %s: %v", channel, err)
		}
		if msg.Channel != channel || msg.Payload != payload {
			t.Errorf("got %q on %q, want %q on %q", msg.Payload, msg.Channel, payload, channel)
		}
	})
}
