package testredis

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	clusterCreateTimeout = 60 * time.Second // for redis-cli --cluster create
	clusterReadyTimeout  = 30 * time.Second // until every node reports ok
	clusterSlots         = 16384
)

// Cluster is a local Redis Cluster of masters without replicas, each a
// redis-server on 127.0.0.1.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts masters (at least 3) cluster-enabled redis-servers,
// joins them with `redis-cli --cluster create`, and waits until every node
// reports cluster_state:ok with all 16384 slots assigned. The nodes are
// stopped when the test and its subtests finish.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("testredis: a Redis Cluster needs at least 3 masters, got %d", masters)
	}
	Require(t)
	cli := requireBinary(t, cliBinary)

	c := &Cluster{}
	for i := range masters {
		dir := t.TempDir()
		c.nodes = append(c.nodes, start(t, dir, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(i)+".conf"),
			"--cluster-node-timeout", "5000",
		}, true))
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testredis: %s %s: %v\n%s", cli, strings.Join(args, " "), err, out)
	}

	c.WaitReady(t)
	return c
}

// Addrs returns the "127.0.0.1:port" addresses of the nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

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
	if err := c.waitReady(clusterReadyTimeout); err != nil {
		t.Fatalf("testredis: cluster %v: %v", c.Addrs(), err)
	}
}

// waitReady waits until every node reports cluster_state:ok, knows every
// node and sees all slots assigned and served.
func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) ready() error {
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_slots_ok":       strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.nodes)),
	}
	for _, addr := range c.Addrs() {
		reply, err := command(addr, time.Second, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
		}
		info := infoFields(reply)
		for k, v := range want {
			if info[k] != v {
				return fmt.Errorf("%s: %s is %q, want %q", addr, k, info[k], v)
			}
		}
	}
	return nil
}
