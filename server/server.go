// Package server serves Switchboard over HTTP: the WebSocket endpoint (a
// reader, worker, writer and keep-alive per connection) and the HTTP API.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/rooms"
)

// shutdownGrace is how long connections closed at the shutdown deadline
// may still take to clean up.
const shutdownGrace = 2 * time.Second

// Broker is everything the server and its channels need of a broker.
type Broker interface {
	channels.Broker
	rooms.Subscriber
	// Start begins delivering subscribed messages to deliver.
	Start(deliver func(broker.Message))
	// Ready reports whether the broker can serve traffic now.
	Ready(ctx context.Context) error
	// Claim records a key for ttl, reporting whether it was new.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Server is one Switchboard node.
type Server struct {
	cfg     config.Config
	log     *slog.Logger
	broker  Broker
	reg     *rooms.Registry
	router  *channels.Router
	ping    *channels.Ping
	rooms   *channels.ChatRoom
	inbox   *channels.Inbox
	metrics *metrics.Metrics
	auth    authenticator // nil in open mode
	minter  *auth.Minter  // nil unless JWT_SECRET is set
	echo    *echo.Echo

	mu       sync.Mutex
	clients  map[*client]struct{}
	draining bool
	conns    sync.WaitGroup // one per serveConn
}

// New assembles a node over b and starts b's deliveries into the node's
// registry. The caller closes b after Serve returns.
func New(cfg config.Config, b Broker, log *slog.Logger) (*Server, error) {
	verifier, err := newAuthenticator(cfg, b)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, auth: verifier, clients: make(map[*client]struct{})}
	if cfg.JWTSecret != "" {
		s.minter = auth.NewMinter(cfg.JWTSecret, cfg.JWTAudience)
	}
	var reg *rooms.Registry
	s.metrics = metrics.New(func() int { return reg.Subscriptions() })
	b = instrument(b, s.metrics)
	s.broker = b
	reg = rooms.New(b, cfg.SendQueueBytes, log)
	s.reg = reg
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
	}
	s.ping = channels.NewPing(b, s.reg)
	s.rooms = channels.NewChatRoom(b, s.reg, limits, log)
	s.inbox = channels.NewInbox(b, s.reg)
	s.router = channels.NewRouter(map[string]channels.Channel{
		"chat":      channels.NewChat(b, s.reg, limits),
		"chat-room": s.rooms,
		"ping":      s.ping,
		"inbox":     s.inbox,
	})
	b.Start(s.reg.Deliver)
	// Global topics are subscribed for the node's whole life. If the broker
	// is down now, it subscribes them when it comes back; /readyz tells.
	for _, topic := range []string{channels.TopicChat, channels.TopicPing} {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.OpTimeout)
		if err := s.reg.Pin(ctx, topic); err != nil {
			log.Warn("global topic not subscribed yet; will retry when the broker is back", "topic", topic, "err", err)
		}
		cancel()
	}
	s.echo = s.routes()
	return s, nil
}

// Config is the node's configuration.
func (s *Server) Config() config.Config { return s.cfg }

// Handler is the node's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve answers on ln until ctx ends, then shuts down gracefully: it stops
// accepting, closes every WebSocket with 1001 after flushing what is
// queued, and waits at most ShutdownTimeout for connections to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	var sweeper sync.WaitGroup
	sweeper.Go(func() { s.rooms.SweepExpired(sweepCtx, s.cfg.PresenceTTL/3) })
	defer func() { stopSweep(); sweeper.Wait() }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown(hs, served)
}

func (s *Server) shutdown(hs *http.Server, served <-chan error) error {
	start := time.Now()
	deadline, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()

	s.mu.Lock()
	s.draining = true
	open := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		open = append(open, c)
	}
	s.mu.Unlock()
	s.log.Info("shutting down", "connections", len(open))

	// Stop accepting and let plain HTTP requests finish; upgraded
	// connections are ours to close.
	shutErr := hs.Shutdown(deadline)
	<-served
	for _, c := range open {
		c.close(closeFor(causeShutdown))
	}

	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline.Done():
		s.mu.Lock()
		for c := range s.clients {
			_ = c.ws.CloseNow()
		}
		s.mu.Unlock()
		// Connections now end at once; their clean-up (leaving rooms in
		// Redis) gets a short grace, not another full timeout.
		select {
		case <-done:
		case <-time.After(shutdownGrace):
			s.log.Warn("shutdown deadline passed with connections still cleaning up; their presence will expire")
		}
	}
	s.log.Info("shut down", "took", time.Since(start).Round(time.Millisecond))
	if shutErr != nil && !errors.Is(shutErr, context.DeadlineExceeded) {
		return shutErr
	}
	return nil
}

// track registers a connection, unless the server is draining.
func (s *Server) track(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.clients[c] = struct{}{}
	s.conns.Add(1)
	s.metrics.Opened.Inc()
	s.metrics.Connections.Inc()
	return true
}

func (s *Server) untrack(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	s.metrics.Connections.Dec()
	s.metrics.Closed.WithLabelValues(c.closeReq.cause.label()).Inc()
	s.conns.Done()
}

// Connections reports how many WebSockets are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}
