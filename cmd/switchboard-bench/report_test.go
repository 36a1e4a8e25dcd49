package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormatting(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"dur µs", dur(640 * time.Microsecond), "640 µs"},
		{"dur ms two decimals", dur(1234567 * time.Nanosecond), "1.23 ms"},
		{"dur ms one decimal", dur(45678 * time.Microsecond), "45.7 ms"},
		{"dur s", dur(2500 * time.Millisecond), "2.50 s"},
		{"dur negative", dur(-3 * time.Millisecond), "-3.00 ms"},
		{"count small", count(999), "999"},
		{"count thousands", count(1234567), "1,234,567"},
		{"count negative", count(-1234), "-1,234"},
		{"count zero", count(0), "0"},
		{"mib", mib(3 << 19), "1.5 MiB"},
		{"labels none", labels(nil), "none"},
		{"labels zero only", labels(map[string]float64{`{reason="slow"}`: 0}), "none"},
		{"labels sorted", labels(map[string]float64{`{reason="slow"}`: 3, `{reason="auth"}`: 1}), `reason="auth"=1, reason="slow"=3`},
		{"onOff", onOff(true) + onOff(false), "onoff"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, [][]string{
		{"", "a", "bb"},
		{"section"},
		{"  µs row", "1", "22"},
		{"  longer label", "333", "4"},
	})
	// Column widths: 14 runes ("  longer label"), 3, 2; columns after
	// the first are right-aligned after three spaces.
	want := "" +
		"              " + "     a" + "   bb\n" +
		"section\n" +
		"  µs row      " + "     1" + "   22\n" +
		"  longer label" + "   333" + "    4\n"
	if b.String() != want {
		t.Errorf("printTable wrote\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRatioCell(t *testing.T) {
	on := result{Window: 2 * time.Second, P50: 4 * time.Millisecond, Tally: tally{Published: 100}}
	off := result{Window: 2 * time.Second, P50: 2 * time.Millisecond, Tally: tally{Published: 100}}
	tests := []struct {
		name string
		row  row
		on   result
		off  result
		want string
	}{
		{"ratio", latency("p50", func(r result) time.Duration { return r.P50 }), on, off, "×2.00"},
		{"no number", row{label: "x", text: func(result) string { return "" }}, on, off, ""},
		{"zero denominator", latency("p50", func(r result) time.Duration { return r.P50 }), on, result{}, "-"},
		{"no ratio", noRatio(cores("c", func(r result) time.Duration { return r.NodeCPU })), on, off, ""},
		{"redis only without redis", redisOnly(cores("c", func(r result) time.Duration { return r.RedisCPU })), on, off, "-"},
	}
	for _, tt := range tests {
		if got := ratioCell(tt.row, tt.on, tt.off); got != tt.want {
			t.Errorf("%s: ratioCell = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := redisOnly(cores("c", func(r result) time.Duration { return r.RedisCPU })).text(on); got != "n/a" {
		t.Errorf("a Redis row of a run without Redis shows %q, want n/a", got)
	}
}

func TestAboveIdle(t *testing.T) {
	r := result{Window: 10 * time.Second, IdleWindow: 2 * time.Second}
	if got := aboveIdle(5*time.Second, time.Second, r); got != 0 {
		t.Errorf("aboveIdle = %v, want 0 (idle 1 s per 2 s over 10 s is 5 s)", got)
	}
	if got := aboveIdle(5*time.Second, time.Second, result{Window: time.Second}); got != 5*time.Second {
		t.Errorf("aboveIdle without an idle window = %v, want the CPU unchanged", got)
	}
}

// sampleResult is a run with round figures.
func sampleResult(history bool, p50 time.Duration) result {
	return result{
		History: history, Joined: 20, ConnectTime: time.Second, Publishers: 4,
		Window: 2 * time.Second, Drain: 100 * time.Millisecond,
		Tally:   tally{Published: 200, Expected: 1000, Delivered: 998, Missing: 2, LossyMsg: 1},
		Samples: 998, P50: p50, P90: 2 * p50, P99: 3 * p50, P999: 4 * p50, Max: 5 * p50,
		NodeCPU: time.Second, BenchCPU: 200 * time.Millisecond, MachineCPU: 2 * time.Second,
		RSSBefore: 10 << 10, RSSAfter: 12 << 10, RSSEnd: 13 << 10,
		HaveRedis: true, RedisCPU: 400 * time.Millisecond, IdleWindow: time.Second,
		SetupFails: "none", Disconnects: "none", ErrFrames: "1× rate-limited", ErrFrameN: 1,
		Closed: map[string]float64{`{reason="slow"}`: 2},
		Logs:   []logKind{{Key: "WARN redis slow", Example: `{"msg":"redis slow"}`, Count: 3}},
	}
}

func TestReport(t *testing.T) {
	o := options{nodes: 2, broker: "redis", clients: 20, rooms: 4, publishers: 4, rate: 50, size: 100,
		duration: 2 * time.Second, warmup: time.Second}
	m := machine{CPUs: 2, LoadAvg: "0.1 0.2 0.3", FDLimit: 1024, RedisVersion: "7.2.4"}
	tests := []struct {
		name    string
		results []result
		want    []string
		notWant []string
	}{
		{
			name:    "one run",
			results: []result{sampleResult(true, time.Millisecond)},
			want: []string{
				"2 node(s), redis broker, 20 clients, 4 rooms, 4 publishers × 50 msg/s, 100-byte messages",
				"machine: 2 CPUs, load average 0.1 0.2 0.3 before the run, open-file limit 1024, redis 7.2.4",
				"history on",
				"  published msg/s                               100",
				"  lost (messages affected)                  2 (1)",
				"  p50                                     1.00 ms",
				"  nodes (cores)                              0.50",
				"  node KiB per connection                   102.4",
				`  server closes by reason: reason="slow"=2`,
				"      3× WARN redis slow",
			},
			notWant: []string{"on/off", "the cost history adds"},
		},
		{
			name:    "history on and off",
			results: []result{sampleResult(true, 2*time.Millisecond), sampleResult(false, time.Millisecond)},
			want: []string{
				"on/off",
				"  p50                                     2.00 ms      1.00 ms    ×2.00",
				"the cost history adds per message",
				"  end-to-end latency p50               2.00 ms vs   1.00 ms  (+1.00 ms, ×2.00)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			report(&b, o, m, tt.results)
			// Column alignment is TestPrintTable's: compare with runs of
			// spaces collapsed.
			squeeze := func(s string) string { return strings.Join(strings.Fields(s), " ") }
			out := b.String()
			for _, w := range tt.want {
				if !strings.Contains(squeeze(out), squeeze(w)) {
					t.Errorf("report lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("report has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestParseProm(t *testing.T) {
	text := `# HELP switchboard_frames_sent_total Frames.
# TYPE switchboard_frames_sent_total counter
switchboard_frames_sent_total 1234
switchboard_connections_closed_total{reason="slow"} 2
switchboard_connections_closed_total{reason="auth"} 1e+00
switchboard_connections_closed_totally 9
broken line
bad_value{a="b"} x
`
	s, err := parseProm(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s["switchboard_frames_sent_total"] != 1234 {
		t.Errorf("frames = %v", s["switchboard_frames_sent_total"])
	}
	closed := s.withPrefix("switchboard_connections_closed_total")
	if len(closed) != 2 || closed[`{reason="slow"}`] != 2 || closed[`{reason="auth"}`] != 1 {
		t.Errorf("withPrefix = %v, want the two reasons only", closed)
	}
	s.add(promSample{"switchboard_frames_sent_total": 6})
	if s["switchboard_frames_sent_total"] != 1240 {
		t.Errorf("after add: %v, want 1240", s["switchboard_frames_sent_total"])
	}
	before := promSample{`switchboard_broker_operation_seconds_sum{op="publish_history",result="ok"}`: 1,
		`switchboard_broker_operation_seconds_count{op="publish_history",result="ok"}`: 10}
	after := promSample{`switchboard_broker_operation_seconds_sum{op="publish_history",result="ok"}`: 1.5,
		`switchboard_broker_operation_seconds_count{op="publish_history",result="ok"}`: 20}
	if got := meanOp(before, after, "publish_history"); got != 50*time.Millisecond {
		t.Errorf("meanOp = %v, want 50ms", got)
	}
	if got := meanOp(before, before, "publish_history"); got != 0 {
		t.Errorf("meanOp without operations = %v, want 0", got)
	}
}

func TestParseRedisStats(t *testing.T) {
	tests := []struct {
		name    string
		info    string
		want    redisStats
		wantErr bool
	}{
		{name: "complete", info: "# Server\r\nredis_version:7.2.4\r\n# CPU\r\nused_cpu_sys:1.25\r\nused_cpu_user:0.75\r\n# Memory\r\nused_memory:1048576\r\n",
			want: redisStats{CPU: 2, UsedMemory: 1 << 20, Version: "7.2.4"}},
		{name: "missing memory", info: "used_cpu_sys:1\r\nused_cpu_user:1\r\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseRedisStats(tt.info)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: parseRedisStats = %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestLogTally(t *testing.T) {
	tl := newLogTally()
	for _, line := range []string{
		`{"level":"INFO","msg":"listening","addr":"127.0.0.1:1"}`,
		`{"level":"INFO","msg":"connected"}`,
		`{"level":"INFO","msg":"disconnected"}`,
		`{"level":"INFO","msg":"disconnected","reason":"slow"}`,
		`{"level":"WARN","msg":"redis slow"}`,
		`{"level":"WARN","msg":"redis slow"}`,
		`panic: boom`,
	} {
		tl.line([]byte(line))
	}
	got := tl.notable()
	want := []logKind{
		{Key: "WARN redis slow", Count: 2},
		{Key: "INFO disconnected: slow", Count: 1},
		{Key: "RAW panic: boom", Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("notable = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Key != want[i].Key || got[i].Count != want[i].Count || got[i].Example == "" {
			t.Errorf("notable[%d] = %+v, want %+v with an example", i, got[i], want[i])
		}
	}
	tail := tl.tail()
	if !strings.Contains(tail, "listening") || !strings.Contains(tail, "panic: boom") || strings.Contains(tail, `"connected"`) {
		t.Errorf("tail = %q, want the listening record and the panic, not routine records", tail)
	}
	merged := mergeLogs([]*node{{logs: tl}, {logs: tl}})
	if len(merged) != 3 || merged[0].Count != 4 {
		t.Errorf("mergeLogs = %+v, want the kinds summed over nodes", merged)
	}
}
