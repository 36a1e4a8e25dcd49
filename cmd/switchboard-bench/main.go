// Command switchboard-bench is a load generator for Switchboard. It builds
// the switchboard binary, starts its own nodes (and redis-server) on
// loopback ports, connects many WebSocket clients spread over the nodes,
// and prints what it measured. It prints figures; it never asserts.
//
// Each named scenario (-scenario fanout, rooms, joinstorm, connectstorm,
// idle, or all) runs twice with the same generator: on Switchboard's nodes
// and Redis, then on the reference relay (package relay, run as a child
// process of this same binary), and prints every figure beside its ratio
// to the relay. -scenario custom is the free-form load run driven by the
// flags alone, with -compare-history. See README.md beside this file.
//
// Usage:
//
//	go run ./cmd/switchboard-bench -scenario fanout
//	go run ./cmd/switchboard-bench -scenario joinstorm -clients 2000
//	make bench                       # every scenario
//	make bench BENCHFLAGS='-scenario custom -compare-history'
//
// Everything it starts is stopped when it exits, Ctrl-C included.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/harness"
)

// options are the command-line flags.
type options struct {
	scenario        string
	scale           float64
	idleWindow      time.Duration
	runTimeout      time.Duration
	rounds          int
	bin             string
	broker          string
	redisURL        string
	nodes           int
	clients         int
	rooms           int
	publishers      int
	rate            float64
	size            int
	duration        time.Duration
	warmup          time.Duration
	drain           time.Duration
	history         bool
	compareHistory  bool
	dialConcurrency int
	nodeEnv         []string
}

// parseFlags reads the command line with no preset applied.
func parseFlags(args []string) (options, error) {
	var o options
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.scenario == "custom" {
		return o, o.check()
	}
	_, err := scenarioNames(o.scenario)
	return o, err
}

// newFlagSet defines every flag over o, with its default.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("switchboard-bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchboard-bench [flags]\n\nLoad generator for Switchboard: starts nodes (and redis-server) and the reference relay, connects clients, measures, prints figures beside their ratio to the relay.\n\nScenarios (-scenario), each setting flags that the command line overrides:\n")
		for _, p := range presets {
			var set []string
			for _, kv := range p.flags {
				set = append(set, "-"+kv[0]+" "+kv[1])
			}
			fmt.Fprintf(fs.Output(), "  %-13s %s\n", p.name, strings.Join(set, " "))
		}
		fmt.Fprintf(fs.Output(), "  %-13s the flags alone, Switchboard only (with -compare-history)\n\n", "custom")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.scenario, "scenario", "all", "all, custom, or a comma-separated list of "+strings.Join(presetNames(), ", "))
	fs.Float64Var(&o.scale, "scale", 1, "multiply each scenario's clients, rooms and publishers by this (e.g. 0.1 for a quick look)")
	fs.DurationVar(&o.idleWindow, "idle-window", 100*time.Second, "idle: how long idle CPU is measured (the default spans two keep-alive rounds at the default WS_TIMEOUT)")
	fs.DurationVar(&o.runTimeout, "run-timeout", 5*time.Minute, "longest one scenario may take on one target")
	fs.IntVar(&o.rounds, "rounds", 1, "measure each scenario this many times on each target, alternating, and print medians with every round's ratio")
	fs.StringVar(&o.bin, "bin", "", "switchboard binary to run (default: go build ./cmd/switchboard into a temporary directory)")
	fs.StringVar(&o.broker, "broker", "redis", "broker: redis or memory (memory forces -nodes 1)")
	fs.StringVar(&o.redisURL, "redis-url", "", "use this Redis instead of starting a redis-server (its CPU then includes any other load)")
	fs.IntVar(&o.nodes, "nodes", 2, "switchboard nodes to start")
	fs.IntVar(&o.clients, "clients", 2000, "WebSocket clients, spread round-robin over the nodes")
	fs.IntVar(&o.rooms, "rooms", 20, "rooms; client i joins room i mod rooms")
	fs.IntVar(&o.publishers, "publishers", 20, "clients that publish (the first ones: one per room while publishers <= rooms)")
	fs.Float64Var(&o.rate, "rate", 20, "messages per second per publisher")
	fs.IntVar(&o.size, "size", 100, "bytes of message text (at least the send stamp)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured publishing time")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "publishing time before measuring")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "longest wait for late deliveries after publishing stops")
	fs.BoolVar(&o.history, "history", true, "keep history on the nodes (HISTORY_SIZE 1000, else 0)")
	fs.BoolVar(&o.compareHistory, "compare-history", false, "run twice, history on then off, and print both with their ratios")
	fs.IntVar(&o.dialConcurrency, "dial-concurrency", 50, "clients connecting at once")
	fs.Func("node-env", "extra node setting KEY=VALUE, e.g. SEND_QUEUE_BYTES=262144 (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=VALUE")
		}
		o.nodeEnv = append(o.nodeEnv, v)
		return nil
	})
	return fs
}

// check validates the flags and applies -broker memory's single node.
func (o *options) check() error {
	var errs []error
	switch o.broker {
	case "memory":
		if o.nodes != 1 {
			progress("-broker memory runs one node alone: using -nodes 1 (was %d)", o.nodes)
			o.nodes = 1
		}
		if o.redisURL != "" {
			errs = append(errs, errors.New("-redis-url needs -broker redis"))
		}
	case "redis":
	default:
		errs = append(errs, fmt.Errorf("-broker %q: want redis or memory", o.broker))
	}
	if o.nodes < 1 {
		errs = append(errs, errors.New("-nodes must be at least 1"))
	}
	if o.clients < 1 || o.rooms < 1 || o.rooms > o.clients {
		errs = append(errs, errors.New("want 1 <= -rooms <= -clients"))
	}
	if o.publishers < 1 || o.publishers > o.clients {
		errs = append(errs, errors.New("want 1 <= -publishers <= -clients"))
	}
	if o.rate <= 0 || o.rate > 10000 {
		errs = append(errs, errors.New("want 0 < -rate <= 10000"))
	}
	if o.duration <= 0 || o.warmup < 0 || o.drain < 0 {
		errs = append(errs, errors.New("-duration must be positive, -warmup and -drain not negative"))
	}
	if o.rounds < 1 {
		errs = append(errs, errors.New("-rounds must be at least 1"))
	}
	if o.idleWindow <= 0 || o.runTimeout <= 0 || o.scale <= 0 {
		errs = append(errs, errors.New("-idle-window, -run-timeout and -scale must be positive"))
	}
	return errors.Join(errs...)
}

func main() {
	if os.Getenv(roleEnv) == roleRelay {
		os.Exit(serveRelay())
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchboard-bench: %v\n", err)
		return 2
	}
	fdLimit, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintf(os.Stderr, "switchboard-bench: raising the open-file limit: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.scenario == "custom" {
		var results []result
		var m machine
		results, m, err = bench(ctx, o, fdLimit)
		if len(results) > 0 {
			report(os.Stdout, o, m, results)
		}
	} else {
		err = benchScenarios(ctx, os.Stdout, args, fdLimit)
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "switchboard-bench: interrupted; everything it started is stopped")
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "switchboard-bench: %v\n", err)
		return 1
	}
	return 0
}

// machine describes where the bench ran.
type machine struct {
	CPUs         int
	CPUModel     string
	GoVersion    string
	LoadAvg      string
	FDLimit      uint64
	RedisVersion string
	RedisShared  bool // -redis-url: other clients may use it
}

// bench prepares the binary and the broker, then runs the custom load
// (twice with -compare-history). It returns the results of the runs that
// completed.
func bench(ctx context.Context, o options, fdLimit uint64) ([]result, machine, error) {
	e, m, cleanup, err := prepare(ctx, o, fdLimit)
	defer cleanup()
	if err != nil {
		return nil, m, err
	}
	histories := []bool{o.history}
	if o.compareHistory {
		histories = []bool{true, false}
	}
	var results []result
	for i, h := range histories {
		res, err := runScenario(ctx, scenario{options: o, History: h, Run: i + 1}, e)
		if err != nil {
			return results, m, err
		}
		results = append(results, res)
	}
	return results, m, nil
}

// benchScenarios runs each scenario named by -scenario on Switchboard and
// on the relay, printing each table to w as soon as it is measured.
func benchScenarios(ctx context.Context, w io.Writer, args []string, fdLimit uint64) error {
	top, err := parseFlags(args)
	if err != nil {
		return err
	}
	names, err := scenarioNames(top.scenario)
	if err != nil {
		return err
	}
	var opts []options
	for _, name := range names {
		p, _ := findPreset(name)
		o, err := optionsFor(p, args, top.scale)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		opts = append(opts, o)
	}
	e, m, cleanup, err := prepare(ctx, opts[0], fdLimit)
	defer cleanup()
	if err != nil {
		return err
	}
	printMachine(w, m)
	run := 0
	for i, name := range names {
		p, _ := findPreset(name)
		c, err := runComparison(ctx, p, opts[i], e, &run)
		if err != nil {
			return err
		}
		printComparison(w, c)
	}
	return nil
}

// printMachine writes where the bench runs.
func printMachine(w io.Writer, m machine) {
	redisNote := ""
	if m.RedisVersion != "" {
		redisNote = ", redis " + m.RedisVersion
		if m.RedisShared {
			redisNote += " (shared: -redis-url)"
		}
	}
	fmt.Fprintf(w, "Switchboard bench: every figure beside its ratio to the reference relay measured in the same run (switchboard ÷ relay)\n")
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, load average %s before the run, open-file limit %d%s\n",
		m.CPUs, m.CPUModel, m.GoVersion, m.LoadAvg, m.FDLimit, redisNote)
	fmt.Fprintf(w, "CPU is user + system from /proc (nodes, relay) and INFO (Redis); noise is every other process of the machine over the same window\n")
	if v := os.Getenv("GODEBUG"); v != "" {
		// Runtime settings change what is measured; both targets inherit them.
		fmt.Fprintf(w, "GODEBUG=%s (the nodes and the relay inherit it)\n", v)
	}
}

// prepare builds (or finds) the node binary and starts (or connects to)
// Redis. cleanup stops what it started; call it even on error.
func prepare(ctx context.Context, o options, fdLimit uint64) (e env, m machine, cleanup func(), err error) {
	m = machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), LoadAvg: loadAvg(), FDLimit: fdLimit}
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	tmp, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return e, m, cleanup, err
	}
	undo = append(undo, func() { _ = os.RemoveAll(tmp) })

	e = env{bin: o.bin, apiKey: randomKey()}
	if e.bin == "" {
		progress("building switchboard…")
		if e.bin, err = harness.BuildNode(ctx, tmp, false); err != nil {
			return e, m, cleanup, err
		}
	}
	if o.broker != "redis" {
		return e, m, cleanup, nil
	}
	e.redisURL = o.redisURL
	if e.redisURL == "" {
		progress("starting redis-server…")
		rs, err := harness.StartRedis(ctx, harness.RedisOptions{Dir: tmp})
		if err != nil {
			return e, m, cleanup, fmt.Errorf("%w (or pass -redis-url, or use -broker memory)", err)
		}
		undo = append(undo, func() {
			if err := rs.Stop(); err != nil {
				progress("stopping redis-server: %v", err)
			}
		})
		e.redisURL = rs.URL()
	} else {
		m.RedisShared, e.redisShared = true, true
	}
	opts, err := redis.ParseURL(e.redisURL)
	if err != nil {
		return e, m, cleanup, fmt.Errorf("-redis-url: %w", err)
	}
	e.redis = redis.NewClient(opts)
	undo = append(undo, func() { _ = e.redis.Close() })
	st, err := readRedisStats(ctx, e.redis)
	if err != nil {
		return e, m, cleanup, fmt.Errorf("redis INFO: %w", err)
	}
	m.RedisVersion = st.Version
	return e, m, cleanup, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// randomKey is the SERVER_API_KEY of the nodes, for /metrics.
func randomKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
