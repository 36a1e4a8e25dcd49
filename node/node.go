// Package node wires one Switchboard node — its broker, hub, channels,
// authentication and metrics — and starts and stops them; package server
// serves it over HTTP and WebSocket.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/conndir"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/rooms"
	"github.com/switchboard/switchboard/webhook"
)

// Broker is the broker a node runs on: the whole contract.
type Broker = broker.Broker

// Authenticator verifies tickets; a node in open mode has none.
type Authenticator interface {
	Verify(ctx context.Context, token string) (auth.Identity, error)
}

// Node is one Switchboard node, transport aside. New builds it without
// touching the network; Start starts it; Close stops it and closes its
// broker.
type Node struct {
	Config  config.Config
	Log     *slog.Logger
	Broker  Broker // instrumented: every operation is timed in Metrics
	Hub     *rooms.Hub
	Router  *channels.Router
	Rooms   *channels.ChatRoom
	Ping    *channels.Ping
	Inbox   *channels.Inbox
	Metrics *metrics.Metrics
	// Auth verifies tickets; nil in open mode.
	Auth Authenticator
	// Minter mints tickets; nil unless JWT_SECRET is set.
	Minter *auth.Minter
	// ID names this node in the connection directory and its control
	// topic; a fresh UUID per process.
	ID string
	// Dir is the connection directory shared by every node.
	Dir conndir.Directory
	// Webhook calls the backend's lifecycle webhooks; nil without API_URI.
	Webhook *webhook.Client

	raw        Broker // the broker as given, closed by Close
	control    string // this node's control topic
	controller atomic.Pointer[Controller]
	dirClient  redis.UniversalClient // the directory's, closed by Close; nil in memory
	mu         sync.Mutex
	started    bool
	closed     bool
	stop       context.CancelFunc
	tasks      sync.WaitGroup // the presence sweeper and the directory loop
}

// New assembles a node over b, which it owns from here on: Close closes it
// (also when New fails). No network I/O happens until Start.
func New(cfg config.Config, b Broker, log *slog.Logger) (n *Node, err error) {
	verifier, err := newAuthenticator(cfg, b)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	n = &Node{Config: cfg, Log: log, Auth: verifier, raw: b, ID: uuid.NewString()}
	n.control = ControlTopic(n.ID)
	if cfg.JWTSecret != "" {
		n.Minter = auth.NewMinter(cfg.JWTSecret, cfg.JWTAudience)
	}
	n.Metrics = metrics.New(func() int { return n.Hub.Subscriptions() })
	if n.Dir, n.dirClient, err = newDirectory(cfg, n.ID); err != nil {
		_ = b.Close()
		return nil, err
	}
	if n.Webhook, err = newWebhook(cfg, n.Metrics, log); err != nil {
		n.closeBackend(0)
		_ = b.Close()
		return nil, err
	}
	n.Broker = limitPublishing(instrument(b, n.Metrics), cfg.NodePublishBytes)
	n.Hub = rooms.New(n.Broker, cfg.SendQueueBytes, channels.GapFrame, log)
	limits := channels.Limits{
		MaxRooms:       cfg.MaxRooms,
		MaxRoomName:    cfg.MaxRoomName,
		HistoryEnabled: cfg.HistorySize > 0,
		HistoryPage:    cfg.HistoryPage,
		HistoryMaxPage: cfg.HistoryMaxPage,
		OpTimeout:      cfg.OpTimeout,
		// Half the queue: an answer always fits behind some broadcasts.
		HistoryPageBytes: cfg.SendQueueBytes / 2,
		ReplayBytes:      4 * cfg.SendQueueBytes,
		// A quarter of the queue: a page fits behind what is queued.
		ReplayPageBytes: cfg.SendQueueBytes / 4,
		ReplayMemory:    cfg.ReplayMemory,
		LargeRoom:       cfg.LargeRoom,
		MemberPage:      cfg.MemberPage,
		MaxChatMessage:  cfg.MaxChatMessage,
		MaxRoomMessage:  cfg.MaxRoomMessage,
		ChatPublish:     cfg.ChatPublish,
	}
	n.Ping = channels.NewPing(n.Broker, n.Hub)
	n.Rooms = channels.NewChatRoom(n.Broker, n.Hub, limits, log)
	replay := n.Rooms.ReplayBudget()
	n.Metrics.Registerer().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_replay_bytes",
		Help: "Bytes of history that resumes hold in memory while they replay (at most REPLAY_MEMORY).",
	}, func() float64 { return float64(replay.InUse()) }))
	n.Inbox = channels.NewInbox(n.Broker, n.Hub)
	chans := map[string]channels.Channel{
		"chat":      channels.NewChat(n.Broker, n.Hub, limits),
		"chat-room": n.Rooms,
		"ping":      n.Ping,
		"inbox":     n.Inbox,
	}
	for _, name := range cfg.AppChannels {
		chans[name] = channels.NewApp(name, webhookForwarder{n.Webhook}, log)
	}
	n.Router = channels.NewRouter(chans)
	return n, nil
}

// NewBroker builds the broker cfg asks for: Redis (or Redis Cluster) when
// one is configured, else the embedded in-memory broker. It connects to
// nothing yet.
func NewBroker(cfg config.Config, log *slog.Logger) (Broker, error) {
	opts := BrokerOptions(cfg)
	if cfg.RedisURL == "" && len(cfg.RedisClusterAddrs) == 0 {
		log.Info("using the embedded in-memory broker: this node runs alone (set REDIS_URL to scale out)")
		return broker.NewMemory(opts), nil
	}
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
}

// BrokerOptions are the broker settings in cfg.
func BrokerOptions(cfg config.Config) broker.Options {
	return broker.Options{
		HistorySize: cfg.HistorySize, HistoryBytes: cfg.HistoryBytes, MemoryBytes: cfg.MemoryHistoryBytes,
		HistoryTTL: cfg.HistoryTTL, PresenceTTL: cfg.PresenceTTL, LargeRoom: cfg.LargeRoom,
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

func newAuthenticator(cfg config.Config, claims auth.Claimer) (Authenticator, error) {
	var key auth.Key
	switch {
	case cfg.JWTSecret != "":
		key = auth.HMACKey(cfg.JWTSecret)
	case cfg.JWTPublicKey != "":
		k, err := auth.LoadPublicKey(cfg.JWTPublicKey)
		if err != nil {
			return nil, err
		}
		key = k
	default:
		return nil, nil
	}
	return auth.NewVerifier(key, cfg.JWTAudience, cfg.TokenMaxTTL, claims), nil
}

// ErrClosed is returned by Start on a closed node.
var ErrClosed = errors.New("node closed")

// Start starts the broker's deliveries into the hub, subscribes the
// global topics (chat, ping) and the node's control topic for the node's
// whole life, and starts the presence sweeper and the connection
// directory's heartbeat and sweep. If the broker is down now, the global topics are
// subscribed when it comes back (Ready tells).
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case n.started:
		return errors.New("node already started")
	}
	n.started = true
	n.raw.Start(n.deliver)
	for _, topic := range []string{channels.TopicChat, channels.TopicPing, n.control} {
		ctx, cancel := context.WithTimeout(context.Background(), n.Config.OpTimeout)
		if err := n.Hub.Pin(ctx, topic); err != nil {
			n.Log.Warn("global topic not subscribed yet; will retry when the broker is back", "topic", topic, "err", err)
		}
		cancel()
	}
	ctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	n.tasks.Go(func() { n.Rooms.SweepExpired(ctx, n.Config.PresenceTTL/3) })
	n.tasks.Go(func() { n.runDirectory(ctx) })
	return nil
}

// Ready reports nil when the node can serve traffic: its broker is
// reachable with every subscription in place.
func (n *Node) Ready(ctx context.Context) error {
	if err := n.Broker.Ready(ctx); err != nil {
		return fmt.Errorf("broker not ready: %w", err)
	}
	return nil
}

// Close stops what Start started and closes the broker, whether or not
// the node was started. Connections must have ended first (the server's
// shutdown sees to that). Later calls do nothing.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	stop := n.stop
	n.mu.Unlock()
	if stop != nil {
		stop()
		n.tasks.Wait()
	}
	n.closeBackend(n.Config.ShutdownTimeout)
	start := time.Now()
	err := n.raw.Close()
	n.Log.Debug("broker closed", "took", time.Since(start).Round(time.Millisecond))
	return err
}
