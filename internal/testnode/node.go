// Package testnode starts real Switchboard nodes on free loopback ports for
// end-to-end tests.
package testnode

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/server"
)

// Config returns the default configuration with env overriding it, as if
// the variables were set in the environment.
func Config(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// ClosingBroker is a broker a node runs on; the node closes it.
type ClosingBroker = node.Broker

// Node is a running server.
type Node struct {
	URL    string // http://127.0.0.1:port
	Node   *node.Node
	Server *server.Server
	Broker ClosingBroker
	stop   context.CancelFunc
	done   chan error
}

// WS is the node's WebSocket URL.
func (n *Node) WS() string { return "ws" + strings.TrimPrefix(n.URL, "http") + "/websockets" }

// Start runs a node on 127.0.0.1:0 over b until the test ends (or Stop).
func Start(t testing.TB, cfg config.Config, b ClosingBroker) *Node {
	t.Helper()
	nd, err := node.New(cfg, b, Logger(t))
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	if err := nd.Start(); err != nil {
		t.Fatalf("node.Start: %v", err)
	}
	srv := server.New(nd)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{URL: "http://" + ln.Addr().String(), Node: nd, Server: srv, Broker: b, stop: cancel, done: make(chan error, 1)}
	go func() { n.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { n.Stop(t) })
	return n
}

// StartMemory runs a node on a fresh in-memory broker.
func StartMemory(t testing.TB, cfg config.Config) *Node {
	t.Helper()
	return Start(t, cfg, broker.NewMemory(node.BrokerOptions(cfg)))
}

// Stop shuts the node down gracefully and closes it (and its broker); it returns
// how long the shutdown took. Calling it again does nothing.
func (n *Node) Stop(t testing.TB) time.Duration {
	t.Helper()
	if n.stop == nil {
		return 0
	}
	start := time.Now()
	n.stop()
	n.stop = nil
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("node did not stop within 30s")
	}
	if err := n.Node.Close(); err != nil {
		t.Errorf("closing the node: %v", err)
	}
	return time.Since(start)
}

// Do performs an HTTP request against the node and returns status and
// body.
func (n *Node) Do(t testing.TB, method, path, body string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Logger logs to the test log at debug level when SWITCHBOARD_TEST_LOG is
// set, and discards otherwise.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("SWITCHBOARD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// StartRedis runs a node whose broker is the Redis (or Redis Cluster)
// named in cfg.
func StartRedis(t testing.TB, cfg config.Config) *Node {
	t.Helper()
	b, err := broker.NewRedis(broker.RedisOptions{
		Options:      node.BrokerOptions(cfg),
		URL:          cfg.RedisURL,
		ClusterAddrs: cfg.RedisClusterAddrs,
		Prefix:       cfg.RedisPrefix,
		OpTimeout:    cfg.OpTimeout,
		Log:          Logger(t),
	})
	if err != nil {
		t.Fatalf("redis broker: %v", err)
	}
	return Start(t, cfg, b)
}
