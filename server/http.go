package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/switchboard/switchboard/protocol"

	"github.com/switchboard/switchboard/web"
)

// routes wires the HTTP API.
func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURIPath: true, LogStatus: true, LogLatency: true, LogRemoteIP: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelDebug
			if v.Status >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(c.Request().Context(), level, "http", "method", v.Method, "path", v.URIPath,
				"status", v.Status, "latency", v.Latency, "remote", v.RemoteIP)
			return nil
		},
	}))

	e.GET("/websockets", s.handleWebSocket)
	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleReady)
	web.Register(e) // the browser client at /

	api := e.Group("", s.requireAPIKey, middleware.BodyLimit(strconv.Itoa(maxAPIBody)))
	for _, n := range []int{1, 2} {
		path, h := "/ping"+strconv.Itoa(n), s.handlePing(n)
		api.GET(path, h)
		api.POST(path, h)
	}
	api.POST("/message", s.handleMessage)
	api.POST("/tokens", s.handleTokens)
	api.GET("/rooms/:room/messages", s.handleRoomMessages)
	s.registerBackendAPI(api)
	if s.cfg.MetricsAddr == "" {
		api.GET("/metrics", echo.WrapHandler(s.metrics.Handler()))
	}
	return e
}

// requireAPIKey guards the server-to-server API with SERVER_API_KEY when it
// is set (Authorization: Bearer <key>, compared in constant time).
func (s *Server) requireAPIKey(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.ServerAPIKey == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.ServerAPIKey))
	return func(c echo.Context) error {
		scheme, got, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		// Comparing digests keeps the comparison constant-time whatever
		// the length of what was sent: the key's length does not leak.
		gotSum := sha256.Sum256([]byte(got))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(gotSum[:], want[:]) != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="switchboard"`)
			// Refused before the body is read; closing the connection
			// spares the server reading (or waiting for) a body it will
			// never use.
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return echo.NewHTTPError(http.StatusUnauthorized, "missing or wrong API key: send Authorization: Bearer <SERVER_API_KEY>")
		}
		return next(c)
	}
}

func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady reports whether this node can serve traffic: it is not
// shutting down and its broker is reachable with every subscription in
// place.
func (s *Server) handleReady(c echo.Context) error {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.node.Ready(ctx); err != nil {
		// The cause names internal addresses: it goes to the log, and the
		// probe gets a reason without them.
		s.log.Info("not ready", "err", err)
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "the message broker is unreachable or restoring subscriptions"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// handlePing sends Ping n to every client on every node.
func (s *Server) handlePing(n int) echo.HandlerFunc {
	return func(c echo.Context) error {
		nodes, err := s.node.Ping.Publish(c.Request().Context(), n)
		if err != nil {
			s.log.Warn("ping not published", "n", n, "err", err)
			return echo.NewHTTPError(http.StatusServiceUnavailable, "message service unavailable: "+err.Error())
		}
		return c.JSON(http.StatusOK, map[string]int{"ping": n, "nodes": nodes})
	}
}

// readJSON decodes a request body as JSON whatever its Content-Type, so
// that curl -d '{...}' works without -H.
func readJSON(c echo.Context, dst any, limit int64) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, limit+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "cannot read body")
	}
	if int64(len(body)) > limit {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body too large")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body is not the JSON object expected: "+protocol.DescribeJSONError(err))
	}
	return nil
}
