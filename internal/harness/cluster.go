package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
)

const (
	clusterCreateTimeout = 60 * time.Second // for redis-cli --cluster create
	clusterReadyTimeout  = 30 * time.Second // until every node reports ok
	clusterSlots         = 16384
)

// Cluster is a local Redis Cluster of masters without replicas, each a
// redis-server on 127.0.0.1.
type Cluster struct {
	nodes []*Redis
}

// StartCluster starts masters (at least 3) cluster-enabled redis-servers,
// each in its own directory under dir, joins them with `redis-cli
// --cluster create`, and waits until every node reports cluster_state:ok
// with all 16384 slots assigned. On error, the nodes it started are
// stopped again; otherwise the caller stops them with Stop.
func StartCluster(ctx context.Context, dir string, masters int) (c *Cluster, err error) {
	if masters < 3 {
		return nil, fmt.Errorf("a Redis Cluster needs at least 3 masters, got %d", masters)
	}
	if _, err := RedisBinary(); err != nil {
		return nil, err
	}
	cli, err := RedisCLIBinary()
	if err != nil {
		return nil, err
	}

	c = &Cluster{}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()
	for i := range masters {
		nodeDir := filepath.Join(dir, "node-"+strconv.Itoa(i))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return c, err
		}
		n, err := StartRedis(ctx, RedisOptions{
			Dir: nodeDir,
			Args: []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
				"--cluster-node-timeout", "5000",
			},
			ClusterBus: true,
		})
		if err != nil {
			return c, err
		}
		c.nodes = append(c.nodes, n)
	}

	cctx, cancel := context.WithTimeout(ctx, clusterCreateTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.CommandContext(cctx, cli, args...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return c, fmt.Errorf("%s %s: %v\n%s", cli, strings.Join(args, " "), err, out)
	}
	if err := c.WaitReady(ctx); err != nil {
		return c, err
	}
	return c, nil
}

// Addrs returns the "127.0.0.1:port" addresses of the nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Nodes returns the nodes of the cluster, in the order of Addrs, for
// callers that stop, kill or restart one.
func (c *Cluster) Nodes() []*Redis {
	return append([]*Redis(nil), c.nodes...)
}

// Stop stops every node; it is safe to call again.
func (c *Cluster) Stop() error {
	var errs []error
	for _, n := range c.nodes {
		if err := n.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", n.Addr(), err))
		}
	}
	return errors.Join(errs...)
}

// WaitReady waits (up to 30 s, or until ctx ends) until every node
// reports cluster_state:ok, knows every node and sees all slots assigned
// and served; for example after one of the Nodes was restarted (it
// rejoins from its nodes file, without its data).
func (c *Cluster) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	if err := wait.Until(ctx, 100*time.Millisecond, c.ready); err != nil {
		return fmt.Errorf("cluster %v not ready: %w", c.Addrs(), err)
	}
	return nil
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
		info := ParseInfo(reply)
		for k, v := range want {
			if info[k] != v {
				return fmt.Errorf("%s: %s is %q, want %q", addr, k, info[k], v)
			}
		}
	}
	return nil
}
