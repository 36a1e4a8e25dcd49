package main

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
)

// stormResult is what one run of joinstorm, connectstorm or idle
// measured on one target (Switchboard's nodes, or the relay).
type stormResult struct {
	Clients, Admitted int
	Time              time.Duration // first dial → last client admitted (and joined)
	Tail              time.Duration // then until frames stopped arriving (joinstorm)

	Window                    time.Duration // CPU window: dialling, then the tail
	NodeCPU, RedisCPU         time.Duration
	OtherCPU, StealCPU        time.Duration
	HaveRedis                 bool
	FramesIn                  int64   // frames the clients received
	FramesOut                 float64 // frames the nodes wrote (-1: not exposed)
	AdmitP50, AdmitP99        time.Duration
	AdmitP999, AdmitMax       time.Duration
	JoinP50, JoinP99          time.Duration // first dial → own JoinedRoom
	RSSBefore, RSSAfter       int64         // KiB, before any client and once all are in (settled)
	PeakRSS                   int64         // KiB, VmHWM at the end
	IdleWindow                time.Duration
	IdleNodeCPU, IdleRedisCPU time.Duration
	IdleOtherCPU              time.Duration
	IdlePings                 float64 // keep-alive pings the nodes sent in the idle window (-1: not exposed)
	RefusalN, SetupFailN      int64
	DisconnectN, ErrFrameN    int64
	Refusals, SetupFails      string
	Disconnects, ErrFrames    string
	NodeDied                  bool
	Logs                      []logKind
}

// Storm kinds: what runStorm does once the target runs.
const (
	kindJoinStorm    = "joinstorm"
	kindConnectStorm = "connectstorm"
	kindIdle         = "idle"
)

// quietFor is how long no frame may arrive before a join storm's
// broadcasts count as delivered.
const quietFor = 300 * time.Millisecond

// tailLimit bounds that wait.
const tailLimit = 30 * time.Second

// runStorm starts the target, connects sc.clients clients spread over its
// nodes as fast as sc.dialConcurrency allows (joining one room for
// joinstorm), measures, and stops everything it started.
func runStorm(ctx context.Context, kind string, sc scenario, e env) (stormResult, error) {
	res := stormResult{Clients: sc.clients}
	if sc.Relay {
		e.redis, e.redisURL, e.redisShared = nil, "", false
	}
	nodes, err := startNodes(ctx, sc, e)
	if err != nil {
		return res, err
	}
	defer stopNodes(nodes)
	f := newFleet(loadPlan{Clients: sc.clients, Rooms: 1, DialConcurrency: sc.dialConcurrency, NoJoin: kind != kindJoinStorm})
	cctx, stopClients := context.WithCancel(ctx)
	defer func() {
		stopClients() // closes every connection, which ends its reader
		f.readers.Wait()
	}()

	if err := wait.Sleep(cctx, 2*settle); err != nil {
		return res, err
	}
	before, err := snapshot(cctx, nodes, e.redis)
	if err != nil {
		return res, err
	}
	res.RSSBefore, res.HaveRedis = before.rss, e.redis != nil
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.WS()
	}
	progress("%s on %s: %d clients to %d process(es), %d dialling at once…", kind, targetName(sc.Relay), sc.clients, len(nodes), sc.dialConcurrency)
	start := time.Now()
	res.Admitted = f.connect(cctx, urls)
	res.Time = time.Since(start)
	if err := cctx.Err(); err != nil {
		return res, err
	}
	if kind == kindJoinStorm {
		res.Tail = f.quiet(cctx, quietFor, tailLimit)
	}
	after, err := snapshot(cctx, nodes, e.redis)
	if err != nil {
		return res, err
	}
	res.Window = after.at.Sub(before.at)
	res.NodeCPU = after.nodeCPU - before.nodeCPU
	res.RedisCPU = redisCPU(before, after)
	res.OtherCPU = otherCPU(before, after, e.redisShared)
	res.StealCPU = after.steal - before.steal
	res.FramesIn = f.frames.Load()
	res.FramesOut = -1
	if !sc.Relay {
		res.FramesOut = after.metrics["switchboard_frames_sent_total"] - before.metrics["switchboard_frames_sent_total"]
	}
	res.AdmitP50, res.AdmitP99 = f.admit.quantile(0.50), f.admit.quantile(0.99)
	res.AdmitP999, res.AdmitMax = f.admit.quantile(0.999), f.admit.maximum()
	res.JoinP50, res.JoinP99 = f.joinLat.quantile(0.50), f.joinLat.quantile(0.99)

	if kind == kindIdle {
		if err := res.measureIdle(cctx, sc, nodes, e); err != nil {
			return res, err
		}
	} else if res.RSSAfter, err = nodesRSS(nodes); err != nil {
		return res, err
	}
	if res.PeakRSS, err = nodesPeakRSS(nodes); err != nil {
		return res, err
	}
	res.RefusalN, res.Refusals = f.refusals.total(), f.refusals.String()
	res.SetupFailN, res.SetupFails = f.setupFails.total(), f.setupFails.String()
	res.DisconnectN, res.Disconnects = f.disconnects.total(), f.disconnects.String()
	res.ErrFrameN, res.ErrFrames = f.errFrames.total(), f.errFrames.String()
	for _, n := range nodes {
		res.NodeDied = res.NodeDied || !n.Alive()
	}
	res.Logs = mergeLogs(nodes)
	return res, nil
}

// pingsMetric counts a node's keep-alive pings.
const pingsMetric = "switchboard_keepalive_pings_total"

// measureIdle lets the target settle (the Go runtime returns freed memory
// to the system lazily), reads its RSS, then its CPU over sc.idleWindow
// with every client connected and silent.
func (res *stormResult) measureIdle(ctx context.Context, sc scenario, nodes []*node, e env) (err error) {
	if err := wait.Sleep(ctx, 3*settle); err != nil {
		return err
	}
	idle0, err := snapshot(ctx, nodes, e.redis)
	if err != nil {
		return err
	}
	res.RSSAfter = idle0.rss
	progress("idle on %s: %d connected; measuring %s of idle CPU…", targetName(sc.Relay), res.Admitted, sc.idleWindow)
	if err := wait.Sleep(ctx, sc.idleWindow); err != nil {
		return err
	}
	idle1, err := snapshot(ctx, nodes, e.redis)
	if err != nil {
		return err
	}
	res.IdleWindow = idle1.at.Sub(idle0.at)
	res.IdleNodeCPU = idle1.nodeCPU - idle0.nodeCPU
	res.IdleRedisCPU = redisCPU(idle0, idle1)
	res.IdleOtherCPU = otherCPU(idle0, idle1, e.redisShared)
	res.IdlePings = -1
	if !sc.Relay {
		res.IdlePings = idle1.metrics[pingsMetric] - idle0.metrics[pingsMetric]
	}
	return nil
}

// otherCPU is the CPU every other process of the machine used between
// two samples: the machine's less the nodes', the bench's and (when the
// bench started it) Redis's.
func otherCPU(a, b sample, redisShared bool) time.Duration {
	other := (b.busy - a.busy) - (b.nodeCPU - a.nodeCPU) - (b.selfCPU - a.selfCPU)
	if !redisShared {
		other -= redisCPU(a, b)
	}
	return max(other, 0)
}

// quiet waits until no frame has arrived for idle, or limit passes, and
// returns when the last frame arrived, from the start of the wait.
func (f *fleet) quiet(ctx context.Context, idle, limit time.Duration) time.Duration {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	last, lastChange := f.frames.Load(), time.Now()
	// The error only says the limit (or ctx) ended the wait.
	_ = wait.Until(ctx, 20*time.Millisecond, func() error {
		if n := f.frames.Load(); n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) >= idle {
			return nil
		}
		return errDraining
	})
	return max(lastChange.Sub(start), 0)
}

// targetName names what a run measures.
func targetName(relay bool) string {
	if relay {
		return "the relay"
	}
	return "switchboard"
}
