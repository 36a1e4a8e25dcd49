// Package testredis starts throwaway real redis-server processes, single
// servers and small clusters, on free loopback ports for Go tests. It is
// a thin testing.TB layer over internal/harness: each helper fails the
// test on error and stops what it started when the test ends.
package testredis

import (
	"context"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/harness"
)

// SkipEnv is the environment variable that, when set to "1", makes tests
// skip instead of fail if redis-server is not installed. CI leaves it unset
// so that a missing Redis fails the build.
const SkipEnv = "SWITCHBOARD_SKIP_REDIS"

// Require returns the path of redis-server. If it is missing, Require skips
// the test when $SWITCHBOARD_SKIP_REDIS is "1" and fails it otherwise, with
// a message saying how to install Redis.
func Require(t testing.TB) string {
	t.Helper()
	return requireBinary(t, harness.RedisBinary)
}

func requireBinary(t testing.TB, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("skipping (%s=1): %v", SkipEnv, err)
		}
		t.Fatalf("%v (or set %s=1 to skip tests that need Redis)", err, SkipEnv)
	}
	return path
}

// Server is one redis-server process listening on 127.0.0.1. It keeps its
// port across Stop and Restart. Its methods are safe for concurrent use.
type Server struct {
	*harness.Redis
}

// Start starts a redis-server on a free 127.0.0.1 port without persistence,
// with a fresh t.TempDir() as its working directory, and waits until it
// answers commands (up to 10 s). Extra redis-server arguments, such as "--requirepass",
// "secret", are appended to the defaults. The server is stopped when the
// test and its subtests finish.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	Require(t)
	r, err := harness.StartRedis(context.Background(), harness.RedisOptions{Dir: t.TempDir(), Args: extraArgs})
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	s := &Server{r}
	t.Cleanup(func() { s.cleanup(t) })
	return s
}

// cleanup stops s at the end of a test, showing its output if the test
// failed.
func (s *Server) cleanup(t testing.TB) {
	if err := s.Redis.Stop(); err != nil {
		t.Errorf("testredis: stopping %s: %v", s.Addr(), err)
	}
	if t.Failed() {
		t.Logf("redis-server %s output:\n%s", s.Addr(), s.Output())
	}
}

// Stop terminates the server with SIGTERM, then SIGKILL if it has not exited
// after a grace period, and waits until its port refuses connections. It
// does nothing if the server is already stopped.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.Redis.Stop(); err != nil {
		t.Fatalf("testredis: stopping %s: %v", s.Addr(), err)
	}
}

// Kill stops the server abruptly with SIGKILL, as in a crash, and waits
// until its port refuses connections. It does nothing if the server is
// already stopped.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.Redis.Kill(); err != nil {
		t.Fatalf("testredis: killing %s: %v", s.Addr(), err)
	}
}

// Restart starts the server again on the same port, stopping it first if it
// is running, and waits until it answers commands; it keeps retrying the
// port for up to 10 s while it is still in use. Data does not survive, since
// persistence is off; a cluster node rejoins its cluster from its nodes file.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Redis.Restart(context.Background()); err != nil {
		t.Fatalf("testredis: %v", err)
	}
}

// Cluster is a local Redis Cluster of masters without replicas, each a
// redis-server on 127.0.0.1.
type Cluster struct {
	c     *harness.Cluster
	nodes []*Server
}

// StartCluster starts masters (at least 3) cluster-enabled redis-servers,
// joins them with `redis-cli --cluster create`, and waits until every node
// reports cluster_state:ok with all 16384 slots assigned. The nodes are
// stopped when the test and its subtests finish.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	Require(t)
	requireBinary(t, harness.RedisCLIBinary)
	c, err := harness.StartCluster(context.Background(), t.TempDir(), masters)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	tc := &Cluster{c: c}
	for _, n := range c.Nodes() {
		s := &Server{n}
		tc.nodes = append(tc.nodes, s)
		t.Cleanup(func() { s.cleanup(t) })
	}
	return tc
}

// Addrs returns the "127.0.0.1:port" addresses of the nodes.
func (c *Cluster) Addrs() []string { return c.c.Addrs() }

// Nodes returns the nodes of the cluster, in the order of Addrs, for tests
// that stop, kill or restart one.
func (c *Cluster) Nodes() []*Server {
	return append([]*Server(nil), c.nodes...)
}

// WaitReady waits until every node reports cluster_state:ok again, for
// example after one of the Nodes was restarted (it rejoins from its nodes
// file, without its data).
func (c *Cluster) WaitReady(t testing.TB) {
	t.Helper()
	if err := c.c.WaitReady(context.Background()); err != nil {
		t.Fatalf("testredis: %v", err)
	}
}
