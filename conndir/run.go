package conndir

import (
	"context"
	"log/slog"
	"time"
)

// RunOptions configure Run.
type RunOptions struct {
	// Heartbeat is the interval between heartbeats; keep it at most a
	// third of the directory's TTL. Default DefaultTTL/3.
	Heartbeat time.Duration
	// Sweep is the interval between sweeps. Default DefaultTTL/3.
	Sweep time.Duration
	// OnClaimed is called, on Run's goroutine, with each record this node
	// claimed; nil: this node does not sweep. It must not block: it starts the DELETE webhook and, once
	// that ends, calls Ack (delivered) or Release (given up).
	OnClaimed func(Record)
	// OnLost is called with the ids Heartbeat reports as taken over by
	// another node; the caller closes those sockets.
	OnLost func(ids []string)
	// Logger receives heartbeat and sweep errors. Default slog.Default().
	Logger *slog.Logger
}

// Run heartbeats d, and sweeps it when OnClaimed is set, until ctx ends;
// the caller owns the goroutine it runs on. It removes nothing when ctx
// ends: the records of a stopped node expire on purpose, so that
// survivors send their DELETEs.
func Run(ctx context.Context, d Directory, opts RunOptions) {
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultTTL / 3
	}
	if opts.Sweep <= 0 {
		opts.Sweep = DefaultTTL / 3
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("node", d.Node())
	beat := time.NewTicker(opts.Heartbeat)
	defer beat.Stop()
	sweep := time.NewTicker(opts.Sweep)
	defer sweep.Stop()
	if opts.OnClaimed == nil {
		sweep.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			lost, err := d.Heartbeat(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("conndir heartbeat failed", "err", err)
			}
			if len(lost) > 0 && opts.OnLost != nil {
				opts.OnLost(lost)
			}
		case <-sweep.C:
			rs, err := d.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("conndir sweep failed", "err", err)
			}
			for _, r := range rs {
				opts.OnClaimed(r)
			}
		}
	}
}
