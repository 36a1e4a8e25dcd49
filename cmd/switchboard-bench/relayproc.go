package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard/switchboard/cmd/switchboard-bench/relay"
)

// roleEnv names the environment variable that makes the bench's own
// binary serve the reference relay instead of running the bench: the
// relay runs as a child process so that its CPU and memory are measured
// apart from the load generator's, exactly as a node's are.
const roleEnv = "SWITCHBOARD_BENCH_ROLE"

// roleRelay is roleEnv's value for a relay child.
const roleRelay = "relay"

// serveRelay runs the reference relay until SIGTERM or SIGINT. It logs
// one JSON record {"msg":"listening","addr":…} on stderr, the line
// harness.StartNode waits for, and serves GET /readyz.
func serveRelay() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := relay.Start(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		return 1
	}
	rec, _ := json.Marshal(map[string]string{"level": "INFO", "msg": "listening", "addr": r.Addr})
	fmt.Fprintf(os.Stderr, "%s\n", rec)
	<-ctx.Done()
	if err := r.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "relay: %v\n", err)
		return 1
	}
	return 0
}

// startRelay runs the bench's own executable as a relay child (see
// roleEnv) and waits until it is ready.
func startRelay(ctx context.Context, apiKey string) (*node, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	n, err := startNode(ctx, exe, nodeEnv([]string{roleEnv + "=" + roleRelay}), apiKey)
	if err != nil {
		return nil, fmt.Errorf("reference relay: %w", err)
	}
	n.relay = true
	return n, nil
}
