package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Side is an optional listener beside the main one, for operators only:
// what it serves is never reachable through the main port.
type Side struct {
	Name    string // "metrics" or "pprof"
	Addr    string
	Handler http.Handler
}

// Sides lists the side listeners the configuration asks for: /metrics on
// METRICS_ADDR and Go's profiler on PPROF_ADDR.
func (s *Server) Sides() []Side {
	var sides []Side
	if s.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		sides = append(sides, Side{Name: "metrics", Addr: s.cfg.MetricsAddr, Handler: mux})
	}
	if s.cfg.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		sides = append(sides, Side{Name: "pprof", Addr: s.cfg.PprofAddr, Handler: mux})
	}
	return sides
}

// ServeSide serves h on ln until ctx ends. Profiles take up to a minute to
// write, so responses get that long; requests still must arrive quickly.
func ServeSide(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	stop := context.AfterFunc(ctx, func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	})
	defer stop()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
