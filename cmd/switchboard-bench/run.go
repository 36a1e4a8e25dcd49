package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/wait"
)

// settle is how long the bench lets nodes quiet down before sampling RSS
// (a variable only so that the smoke test can run faster).
var settle = time.Second

// scenario is what one run does; options hold the flags.
type scenario struct {
	options
	History bool
	Run     int  // ordinal, for the Redis key prefix
	Relay   bool // measure the reference relay instead of nodes (no Redis)
}

// env is what runs share: the node binary and the broker.
type env struct {
	bin      string
	redisURL string        // empty: memory broker
	redis    *redis.Client // for INFO; nil with the memory broker
	// redisShared is set when Redis was not started by the bench: its CPU
	// is then not part of the machine's load the bench accounts for.
	redisShared bool
	apiKey      string
}

// result is everything one run measured.
type result struct {
	History     bool
	Joined      int
	ConnectTime time.Duration
	Publishers  int
	Window      time.Duration // the measured publishing time
	Drain       time.Duration // waited after it for deliveries
	Tally       tally
	Samples     uint64
	P50, P90    time.Duration
	P99, P999   time.Duration
	Max         time.Duration

	NodeCPU, BenchCPU time.Duration // over Window
	MachineCPU        time.Duration // every process, over Window
	OtherCPU          time.Duration // MachineCPU less what the bench started
	StealCPU          time.Duration // taken by the hypervisor
	RSSBefore         int64         // KiB, all nodes, before any client
	RSSAfter          int64         // KiB, once every client joined
	RSSEnd            int64         // KiB, after the run

	// Idle: every client connected, nobody publishing.
	IdleWindow                time.Duration
	IdleNodeCPU, IdleRedisCPU time.Duration

	HaveRedis      bool
	RedisCPU       time.Duration // over Window
	RedisMemBefore int64         // bytes, before any client
	RedisMemEnd    int64         // bytes, after the run

	FramesOut   float64       // frames the nodes wrote during Window
	FramesNow   float64       // of FramesOut, those sent at once, without a writer
	PublishMean time.Duration // server-side SendMessage broker publish, mean over Window
	Closed      map[string]float64
	ServerErrs  map[string]float64

	SetupFails, Disconnects, ErrFrames string // by cause
	SetupFailN, DisconnectN, ErrFrameN int64
	Refusals                           string // refused attempts (1013, 503), by kind
	RefusalN                           int64
	Logs                               []logKind
	NodeDied                           bool
}

// runScenario starts fresh nodes, connects the clients, publishes for the
// warm-up and the measured window, drains, and stops everything it
// started.
func runScenario(ctx context.Context, sc scenario, e env) (result, error) {
	if sc.Relay {
		e.redis, e.redisURL, e.redisShared = nil, "", false
	}
	r := &runner{sc: sc, e: e, res: result{History: sc.History}}
	var err error
	if r.nodes, err = startNodes(ctx, sc, e); err != nil {
		return r.res, err
	}
	defer stopNodes(r.nodes)
	r.fleet = newFleet(loadPlan{
		Clients: sc.clients, Rooms: sc.rooms, Publishers: sc.publishers, Rate: sc.rate, Size: sc.size,
		Span: sc.warmup + sc.duration, DialConcurrency: sc.dialConcurrency,
	})
	cctx, stopClients := context.WithCancel(ctx)
	defer func() {
		stopClients() // closes every connection, which ends its reader
		r.fleet.pubs.Wait()
		r.fleet.readers.Wait()
	}()
	for _, step := range []func(context.Context) error{r.baseline, r.connect, r.idle, r.load, r.collect} {
		if err := step(cctx); err != nil {
			return r.res, err
		}
	}
	return r.res, nil
}

// runner carries one run through its steps, filling res.
type runner struct {
	sc    scenario
	e     env
	nodes []*node
	fleet *fleet
	res   result
}

// baseline samples the idle nodes and Redis before any client.
func (r *runner) baseline(ctx context.Context) (err error) {
	if err := wait.Sleep(ctx, settle); err != nil {
		return err
	}
	if r.res.RSSBefore, err = nodesRSS(r.nodes); err != nil {
		return err
	}
	if r.e.redis != nil {
		rs, err := readRedisStats(ctx, r.e.redis)
		if err != nil {
			return err
		}
		r.res.HaveRedis, r.res.RedisMemBefore = true, rs.UsedMemory
	}
	return nil
}

// connect connects every client and has it join its room.
func (r *runner) connect(ctx context.Context) error {
	urls := make([]string, len(r.nodes))
	for i, n := range r.nodes {
		urls[i] = n.WS()
	}
	progress("run %d (%s, history %s): connecting %d clients to %d process(es)…", r.sc.Run, targetName(r.sc.Relay), onOff(r.sc.History), r.sc.clients, len(r.nodes))
	start := time.Now()
	r.res.Joined = r.fleet.connect(ctx, urls)
	r.res.ConnectTime = time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.res.Joined == 0 {
		return fmt.Errorf("no client could connect: %s", r.fleet.setupFails.String())
	}
	return nil
}

// idle lets the joins' broadcasts drain, then measures the cost of the
// connected clients alone (pings, presence heartbeats) and the nodes' RSS.
func (r *runner) idle(ctx context.Context) error {
	if err := wait.Sleep(ctx, settle); err != nil {
		return err
	}
	idle0, err := snapshot(ctx, r.nodes, r.e.redis)
	if err != nil {
		return err
	}
	if err := wait.Sleep(ctx, settle); err != nil {
		return err
	}
	idle1, err := snapshot(ctx, r.nodes, r.e.redis)
	if err != nil {
		return err
	}
	r.res.RSSAfter = idle1.rss
	r.res.IdleWindow = idle1.at.Sub(idle0.at)
	r.res.IdleNodeCPU = idle1.nodeCPU - idle0.nodeCPU
	r.res.IdleRedisCPU = redisCPU(idle0, idle1)
	return nil
}

// load publishes through the warm-up and the measured window, waits for
// late deliveries, and computes the window's figures.
func (r *runner) load(ctx context.Context) error {
	f, res := r.fleet, &r.res
	res.Publishers = f.startPublishers(ctx)
	progress("run %d: %d joined in %s; warming up %s, then measuring %s…",
		r.sc.Run, res.Joined, res.ConnectTime.Round(time.Millisecond), r.sc.warmup, r.sc.duration)
	if err := wait.Sleep(ctx, r.sc.warmup); err != nil {
		return err
	}
	before, err := snapshot(ctx, r.nodes, r.e.redis)
	if err != nil {
		return err
	}
	f.phase.Store(phaseMeasure)
	if err := wait.Sleep(ctx, r.sc.duration); err != nil {
		return err
	}
	f.phase.Store(phaseStop)
	after, err := snapshot(ctx, r.nodes, r.e.redis)
	if err != nil {
		return err
	}
	f.pubs.Wait()
	res.Drain = f.drain(ctx, 500*time.Millisecond, r.sc.drain)

	res.Window = after.at.Sub(before.at)
	res.NodeCPU = after.nodeCPU - before.nodeCPU
	res.BenchCPU = after.selfCPU - before.selfCPU
	res.RedisCPU = redisCPU(before, after)
	res.MachineCPU = after.busy - before.busy
	res.StealCPU = after.steal - before.steal
	res.OtherCPU = max(res.MachineCPU-res.NodeCPU-res.BenchCPU, 0)
	if !r.e.redisShared {
		res.OtherCPU = max(res.OtherCPU-res.RedisCPU, 0)
	}
	res.FramesOut = after.metrics["switchboard_frames_sent_total"] - before.metrics["switchboard_frames_sent_total"]
	res.FramesNow = after.metrics["switchboard_frames_sent_at_once_total"] - before.metrics["switchboard_frames_sent_at_once_total"]
	res.PublishMean = meanOp(before.metrics, after.metrics, "publish_history")

	res.Tally = f.tally()
	res.Samples = f.lat.count()
	res.P50, res.P90 = f.lat.quantile(0.50), f.lat.quantile(0.90)
	res.P99, res.P999 = f.lat.quantile(0.99), f.lat.quantile(0.999)
	res.Max = f.lat.maximum()
	return nil
}

// collect reads what went wrong, before the clients leave: closes and
// errors counted so far happened under load.
func (r *runner) collect(ctx context.Context) error {
	f, res := r.fleet, &r.res
	end, err := snapshot(ctx, r.nodes, r.e.redis)
	if err != nil {
		return err
	}
	res.RSSEnd = end.rss
	res.RedisMemEnd = end.redis.UsedMemory
	res.Closed = end.metrics.withPrefix("switchboard_connections_closed_total")
	res.ServerErrs = end.metrics.withPrefix("switchboard_client_errors_total")
	res.SetupFails, res.SetupFailN = f.setupFails.String(), f.setupFails.total()
	res.Disconnects, res.DisconnectN = f.disconnects.String(), f.disconnects.total()
	res.ErrFrames, res.ErrFrameN = f.errFrames.String(), f.errFrames.total()
	res.Refusals, res.RefusalN = f.refusals.String(), f.refusals.total()
	for _, n := range r.nodes {
		res.NodeDied = res.NodeDied || !n.Alive()
	}
	res.Logs = mergeLogs(r.nodes)
	return nil
}

// redisCPU is the CPU Redis used between two samples.
func redisCPU(a, b sample) time.Duration {
	return time.Duration((b.redis.CPU - a.redis.CPU) * float64(time.Second))
}

// startNodes starts sc.nodes nodes in parallel, or the reference relay
// alone when sc.Relay is set.
func startNodes(ctx context.Context, sc scenario, e env) ([]*node, error) {
	if sc.Relay {
		n, err := startRelay(ctx, e.apiKey)
		if err != nil {
			return nil, err
		}
		return []*node{n}, nil
	}
	history := "0"
	if sc.History {
		history = "1000"
	}
	settings := []string{
		"HOST=127.0.0.1", "PORT=0", "LOG_FORMAT=json",
		// "listening" is an info record: at warn the address could not be
		// read. At info a node logs only connection lifecycle, none of it
		// inside the measured window unless something goes wrong.
		"LOG_LEVEL=info",
		"RATE_LIMIT=1000000", "RATE_BURST=1000000",
		"HISTORY_SIZE=" + history,
		"SERVER_API_KEY=" + e.apiKey,
	}
	if e.redisURL != "" {
		settings = append(settings, "REDIS_URL="+e.redisURL,
			fmt.Sprintf("REDIS_PREFIX=sbbench:%d:%d:", os.Getpid(), sc.Run))
	}
	environ := nodeEnv(append(settings, sc.nodeEnv...))

	nodes := make([]*node, sc.nodes)
	errs := make([]error, sc.nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { nodes[i], errs[i] = startNode(ctx, e.bin, environ, e.apiKey) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			var started []*node
			for _, n := range nodes {
				if n != nil {
					started = append(started, n)
				}
			}
			stopNodes(started)
			return nil, err
		}
	}
	return nodes, nil
}

// stopNodes stops nodes in parallel and waits for them.
func stopNodes(nodes []*node) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(n.stop)
	}
	wg.Wait()
}

// sample is the state of the processes at one instant.
type sample struct {
	at      time.Time
	nodeCPU time.Duration
	selfCPU time.Duration
	busy    time.Duration // every process of the machine
	steal   time.Duration
	rss     int64
	redis   redisStats
	metrics promSample // summed over nodes
}

// snapshot reads CPU and memory of every process and the nodes' metrics.
// CPU is read first, together, so that windows line up.
func snapshot(ctx context.Context, nodes []*node, rc *redis.Client) (s sample, err error) {
	s.at = time.Now()
	for _, n := range nodes {
		if !n.Alive() {
			return s, fmt.Errorf("%w: node %s (%s); it logged:\n%s", errNodeDied, n.Addr, n.ExitStatus(), n.logs.tail())
		}
	}
	if s.nodeCPU, err = nodesCPU(nodes); err != nil {
		return s, err
	}
	s.selfCPU = selfCPU()
	if s.busy, s.steal, err = machineCPU(); err != nil {
		return s, err
	}
	if rc != nil {
		if s.redis, err = readRedisStats(ctx, rc); err != nil {
			return s, err
		}
	}
	if s.rss, err = nodesRSS(nodes); err != nil {
		return s, err
	}
	s.metrics = promSample{}
	for _, n := range nodes {
		if n.relay {
			continue
		}
		m, err := n.scrapeMetrics(ctx)
		if err != nil {
			return s, err
		}
		s.metrics.add(m)
	}
	return s, nil
}

// meanOp is the mean duration of successful broker operations op between
// two scrapes.
func meanOp(before, after promSample, op string) time.Duration {
	series := `{op="` + op + `",result="ok"}`
	sum := after["switchboard_broker_operation_seconds_sum"+series] - before["switchboard_broker_operation_seconds_sum"+series]
	n := after["switchboard_broker_operation_seconds_count"+series] - before["switchboard_broker_operation_seconds_count"+series]
	if n <= 0 {
		return 0
	}
	return time.Duration(sum / n * float64(time.Second))
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// progress reports what the bench is doing on stderr; the report goes to
// stdout.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
