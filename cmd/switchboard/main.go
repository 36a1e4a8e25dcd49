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
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/config"
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

	b, err := newBroker(cfg, log)
	if err != nil {
		log.Error("cannot create broker", "err", err)
		return 1
	}
	defer func() { _ = b.Close() }()

	srv, err := server.New(cfg, b, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
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
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

// nodeBroker is a broker the node can run on and close.
type nodeBroker interface {
	server.Broker
	Close() error
}

func newBroker(cfg config.Config, log *slog.Logger) (nodeBroker, error) {
	opts := broker.Options{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL, PresenceTTL: cfg.PresenceTTL}
	switch {
	case cfg.RedisURL != "" || len(cfg.RedisClusterAddrs) > 0:
		b, err := broker.NewRedis(broker.RedisOptions{
			Options: opts, URL: cfg.RedisURL, ClusterAddrs: cfg.RedisClusterAddrs,
			Prefix: cfg.RedisPrefix, OpTimeout: cfg.OpTimeout, Log: log,
		})
		if err != nil {
			return nil, err
		}
		if len(cfg.RedisClusterAddrs) > 0 {
			log.Info("using Redis Cluster with sharded pub/sub", "nodes", cfg.RedisClusterAddrs, "prefix", cfg.RedisPrefix)
		} else {
			log.Info("using Redis", "url", redactURL(cfg.RedisURL), "prefix", cfg.RedisPrefix)
		}
		return b, nil
	default:
		log.Info("using the embedded in-memory broker: this node runs alone (set REDIS_URL to scale out)")
		return broker.NewMemory(opts), nil
	}
}

// redactURL hides a password in a Redis URL before it is logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}

func newLogger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
