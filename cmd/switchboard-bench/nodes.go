package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/internal/harness"
)

// Timings of child processes.
const (
	startTimeout = 30 * time.Second // until a node logs "listening" and is ready
	stopGrace    = 10 * time.Second // between SIGTERM and SIGKILL
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit. Calling
// Setrlimit explicitly (rather than relying on the Go runtime's own raise)
// makes child processes inherit the new limit too.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

// nodeEnv is the environment of a node: the bench's own environment
// without any Switchboard setting (so that, say, a JWT_SECRET exported in
// the shell cannot change what is measured), then settings.
func nodeEnv(settings []string) []string {
	ours := make(map[string]bool, len(config.Settings))
	for _, s := range config.Settings {
		ours[s.Env] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !ours[k] {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// node is one switchboard process.
type node struct {
	*harness.Node
	apiKey string
	logs   *logTally
	relay  bool // the reference relay: no /metrics
}

// startNode runs bin with env (see nodeEnv), waits for its "listening"
// log record and for /readyz, and returns the running node. The node's
// stderr is parsed as JSON log records into its logTally.
func startNode(ctx context.Context, bin string, env []string, apiKey string) (*node, error) {
	n := &node{apiKey: apiKey, logs: newLogTally()}
	var err error
	n.Node, err = harness.StartNode(ctx, bin, harness.NodeOptions{
		Env: env, OnLine: n.logs.line, StartTimeout: startTimeout, KeepOutput: 64 << 10,
	})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.WaitReady(rctx); err != nil {
		n.stop()
		return nil, fmt.Errorf("%w:\n%s", err, n.logs.tail())
	}
	return n, nil
}

// stop ends the node with SIGTERM (a graceful shutdown), then SIGKILL if
// it has not exited after stopGrace, and waits for it.
func (n *node) stop() {
	if err := n.Terminate(stopGrace); err != nil {
		progress("%v", err)
	}
}

// scrapeMetrics fetches the node's Prometheus text exposition.
func (n *node) scrapeMetrics(ctx context.Context) (promSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+n.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseProm(resp.Body)
}

// routineLogs are the records every run produces; they are not reported.
var routineLogs = map[string]bool{
	"listening": true, "connected": true, "shutting down": true, "shut down": true,
	"using Redis": true, "using the embedded in-memory broker: this node runs alone (set REDIS_URL to scale out)": true,
}

// logTally counts a node's log records that are not routine, by level and
// message, keeping the first full record of each kind as an example.
type logTally struct {
	mu      sync.Mutex
	counts  map[string]int
	example map[string]string
	last    []string // the last few records that are not routine
	raw     []string // the first lines that are not JSON (a panic)
}

func newLogTally() *logTally {
	return &logTally{counts: make(map[string]int), example: make(map[string]string)}
}

// line accounts for one line the node logged: a JSON record, or RAW text
// (a panic).
func (t *logTally) line(b []byte) {
	var rec struct{ Level, Msg, Reason string }
	if err := json.Unmarshal(b, &rec); err != nil {
		rec.Level, rec.Msg = "RAW", string(b)
	}
	t.add(rec.Level, rec.Msg, rec.Reason, string(b))
}

func (t *logTally) add(level, msg, reason, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if level == "RAW" && len(t.raw) < 40 {
		t.raw = append(t.raw, line)
	}
	// A disconnect the server did not choose has no reason: routine.
	if (routineLogs[msg] && msg != "listening") || (msg == "disconnected" && reason == "") {
		return
	}
	t.last = append(t.last, line)
	if len(t.last) > 20 {
		t.last = t.last[1:]
	}
	if msg == "listening" {
		return
	}
	key := level + " " + msg
	if reason != "" {
		key += ": " + reason
	}
	if t.counts[key] == 0 {
		if len(line) > 400 {
			line = line[:400] + "…"
		}
		t.example[key] = line
	}
	t.counts[key]++
}

// tail is what the node logged that may explain a failure: the last
// records that are not routine and the first lines that are not JSON.
func (t *logTally) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append(slices.Clone(t.last), t.raw...)
	if len(lines) == 0 {
		return "(nothing logged beyond connections)"
	}
	return strings.Join(lines, "\n")
}

// logKind is one kind of notable log record and how often it was seen.
type logKind struct {
	Key, Example string
	Count        int
}

// notable returns the counted kinds, most frequent first.
func (t *logTally) notable() []logKind {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]logKind, 0, len(t.counts))
	for k, n := range t.counts {
		out = append(out, logKind{Key: k, Example: t.example[k], Count: n})
	}
	slices.SortFunc(out, func(a, b logKind) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// mergeLogs sums the notable records of several nodes.
func mergeLogs(nodes []*node) []logKind {
	sum := map[string]*logKind{}
	var order []string
	for _, n := range nodes {
		for _, k := range n.logs.notable() {
			if s, ok := sum[k.Key]; ok {
				s.Count += k.Count
				continue
			}
			kk := k
			sum[k.Key] = &kk
			order = append(order, k.Key)
		}
	}
	out := make([]logKind, 0, len(order))
	for _, k := range order {
		out = append(out, *sum[k])
	}
	slices.SortStableFunc(out, func(a, b logKind) int { return b.Count - a.Count })
	return out
}

// errNodeDied is reported when a node exits in the middle of a run.
var errNodeDied = errors.New("a node exited during the run")
