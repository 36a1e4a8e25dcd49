// Package server serves a Switchboard node over HTTP: the WebSocket
// endpoint (one goroutine per connection, a writer and tasks on demand,
// one keep-alive schedule per node) and
// the HTTP API around it.
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

	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/node"
)

// shutdownGrace is how long connections closed at the shutdown deadline
// may still take to clean up.
const shutdownGrace = 2 * time.Second

// Server serves one node over HTTP: the WebSocket endpoint and the HTTP
// API. It owns the connections, not the node: the caller starts the node
// before Serve and closes it after.
type Server struct {
	node       *node.Node
	cfg        config.Config
	log        *slog.Logger
	router     *channels.Router
	metrics    *metrics.Metrics
	auth       node.Authenticator // nil in open mode
	admission  *admission
	keepAlives *keepAlives
	echo       *echo.Echo

	mu       sync.Mutex
	clients  map[*client]struct{}
	byID     map[string]*client // the same connections by id, for the server API
	draining bool
	conns    sync.WaitGroup // one per serveConn
}

// New returns a server for n.
func New(n *node.Node) *Server {
	s := &Server{
		node: n, cfg: n.Config, log: n.Log, router: n.Router, metrics: n.Metrics, auth: n.Auth,
		clients:    make(map[*client]struct{}),
		byID:       make(map[string]*client),
		admission:  newAdmission(n.Config.AdmitConcurrency, n.Config.AdmitWait),
		keepAlives: newKeepAlives(n.Config.WSTimeout, n.Metrics.Pings),
	}
	s.echo = s.routes()
	n.SetController(s.control)
	return s
}

// Config is the node's configuration.
func (s *Server) Config() config.Config { return s.cfg }

// Handler is the node's HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Serve answers on ln until ctx ends, then shuts down gracefully: it stops
// accepting, closes every WebSocket with 1001 after flushing what is
// queued, and waits at most ShutdownTimeout for connections to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// The timeouts bound plain HTTP requests only: a hijacked (upgraded)
	// connection has its deadlines cleared by net/http, and WebSockets
	// keep their own (WS_TIMEOUT, WRITE_TIMEOUT).
	hs := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: min(10*time.Second, s.cfg.HTTPReadTimeout),
		ReadTimeout:       s.cfg.HTTPReadTimeout,
		WriteTimeout:      s.cfg.HTTPWriteTimeout,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())
	pings, stopPings := context.WithCancel(context.Background())
	var pinger sync.WaitGroup
	pinger.Go(func() { s.keepAlives.run(pings) })
	defer func() { stopPings(); pinger.Wait() }()

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
	s.byID[c.id] = c
	s.conns.Add(1)
	s.metrics.Opened.Inc()
	s.metrics.Connections.Inc()
	return true
}

func (s *Server) untrack(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	delete(s.byID, c.id)
	s.mu.Unlock()
	s.metrics.Connections.Dec()
	s.metrics.Closed.WithLabelValues(c.closeReq.cause.label()).Inc()
	s.conns.Done()
}

// Admitting reports how many connections are being verified and
// subscribed right now (at most ADMIT_CONCURRENCY).
func (s *Server) Admitting() int { return s.admission.inUse() }

// Connections reports how many WebSockets are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}
