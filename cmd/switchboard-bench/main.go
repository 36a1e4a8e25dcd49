// Command switchboard-bench is a load generator for Switchboard. It builds
// the switchboard binary, starts its own nodes (and redis-server) on
// loopback ports, connects many WebSocket clients spread over the nodes,
// has some of them publish to their rooms at a fixed rate, and prints what
// it measured: throughput, losses, end-to-end latency percentiles, CPU of
// the nodes, of Redis and of itself, and memory per connection. It prints
// figures; it never asserts.
//
// Usage:
//
//	go run ./cmd/switchboard-bench [flags]
//	make bench BENCHFLAGS='-compare-history'
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

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("switchboard-bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: switchboard-bench [flags]\n\nLoad generator for Switchboard: starts nodes (and redis-server), connects clients, publishes, prints figures.\n\n")
		fs.PrintDefaults()
	}
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
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o, o.check()
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
	return errors.Join(errs...)
}

func main() { os.Exit(run()) }

func run() int {
	o, err := parseFlags(os.Args[1:])
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

	results, m, err := bench(ctx, o, fdLimit)
	if len(results) > 0 {
		report(os.Stdout, o, m, results)
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
	LoadAvg      string
	FDLimit      uint64
	RedisVersion string
	RedisShared  bool // -redis-url: other clients may use it
}

// bench prepares the binary and the broker, then runs each scenario. It
// returns the results of the runs that completed.
func bench(ctx context.Context, o options, fdLimit uint64) ([]result, machine, error) {
	m := machine{CPUs: runtime.NumCPU(), LoadAvg: loadAvg(), FDLimit: fdLimit}
	tmp, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, m, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	e := env{bin: o.bin, apiKey: randomKey()}
	if e.bin == "" {
		progress("building switchboard…")
		if e.bin, err = harness.BuildNode(ctx, tmp, false); err != nil {
			return nil, m, err
		}
	}
	if o.broker == "redis" {
		e.redisURL = o.redisURL
		if e.redisURL == "" {
			progress("starting redis-server…")
			rs, err := harness.StartRedis(ctx, harness.RedisOptions{Dir: tmp})
			if err != nil {
				return nil, m, fmt.Errorf("%w (or pass -redis-url, or use -broker memory)", err)
			}
			defer func() {
				if err := rs.Stop(); err != nil {
					progress("stopping redis-server: %v", err)
				}
			}()
			e.redisURL = rs.URL()
		} else {
			m.RedisShared, e.redisShared = true, true
		}
		opts, err := redis.ParseURL(e.redisURL)
		if err != nil {
			return nil, m, fmt.Errorf("-redis-url: %w", err)
		}
		e.redis = redis.NewClient(opts)
		defer func() { _ = e.redis.Close() }()
		st, err := readRedisStats(ctx, e.redis)
		if err != nil {
			return nil, m, fmt.Errorf("redis INFO: %w", err)
		}
		m.RedisVersion = st.Version
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
