// Command switchboard runs one Switchboard node: a typed channel and
// subscription WebSocket server. With no Redis configured it runs alone on
// an embedded broker; with REDIS_URL or REDIS_CLUSTER_ADDRS, any number of
// nodes share traffic through Redis.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/server"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := config.FromEnv(os.Args[1:])
	if errors.Is(err, config.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchboard: invalid configuration:\n%v\n", err)
		return 2
	}
	log := newLogger(cfg)

	b, err := node.NewBroker(cfg, log)
	if err != nil {
		log.Error("cannot create broker", "err", err)
		return 1
	}
	n, err := node.New(cfg, b, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer func() { _ = n.Close() }()
	if err := n.Start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	srv := server.New(n)
	if cfg.ServerAPIKey == "" {
		log.Warn("SERVER_API_KEY is not set: /ping1, /ping2, POST /message and the rest of the server API are open to anyone who can reach this port")
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Addr(), "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var sides sync.WaitGroup
	defer sides.Wait()
	sideCtx, stopSides := context.WithCancel(ctx)
	defer stopSides()
	for _, side := range srv.Sides() {
		sln, err := net.Listen("tcp", side.Addr)
		if err != nil {
			log.Error("cannot listen", "listener", side.Name, "addr", side.Addr, "err", err)
			return 1
		}
		log.Info("side listener", "listener", side.Name, "addr", sln.Addr().String())
		sides.Go(func() {
			if err := server.ServeSide(sideCtx, sln, side.Handler, log); err != nil {
				log.Error("side listener stopped", "listener", side.Name, "err", err)
			}
		})
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

func newLogger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
