package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestMain lets the test binary serve as the relay child the smoke test
// starts (see roleEnv), as the bench binary itself does.
func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == roleRelay {
		os.Exit(serveRelay())
	}
	os.Exit(m.Run())
}

func TestParseRetryAfterMs(t *testing.T) {
	tests := []struct {
		reason string
		want   time.Duration
		ok     bool
	}{
		{reason: "retryAfterMs=250", want: 250 * time.Millisecond, ok: true},
		{reason: "server busy, retryAfterMs=1200; try again", want: 1200 * time.Millisecond, ok: true},
		{reason: "retryAfterMs=0", want: 0, ok: true},
		{reason: "retryAfterMs=99999999", want: maxRetryWait, ok: true}, // capped
		{reason: "retryAfterMs=", ok: false},
		{reason: "retryAfterMs=-5", ok: false},
		{reason: "retryAfterMs=abc", ok: false},
		{reason: "server cannot subscribe you now, try again", ok: false},
		{reason: "", ok: false},
		{reason: "retryAfterMs=99999999999999999999999", ok: false}, // overflows
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			got, ok := parseRetryAfterMs(tt.reason)
			if ok != tt.ok || got != tt.want {
				t.Errorf("= %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRefusedClose(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		refused   bool
		wait      time.Duration
		causeHint string
	}{
		{name: "hinted", err: websocket.CloseError{Code: websocket.StatusTryAgainLater, Reason: "busy retryAfterMs=40"},
			refused: true, wait: 40 * time.Millisecond, causeHint: "1013 with retryAfterMs="},
		{name: "no hint", err: websocket.CloseError{Code: websocket.StatusTryAgainLater, Reason: "try again"},
			refused: true, wait: defaultRetry, causeHint: `1013 without a hint ("try again")`},
		{name: "other close", err: websocket.CloseError{Code: websocket.StatusPolicyViolation, Reason: "retryAfterMs=5"}},
		{name: "not a close", err: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := refusedClose(tt.err)
			if ok != tt.refused {
				t.Fatalf("refused = %v, want %v", ok, tt.refused)
			}
			if !ok {
				return
			}
			if r.wait() != tt.wait || r.cause() != tt.causeHint {
				t.Errorf("wait %v cause %q; want %v %q", r.wait(), r.cause(), tt.wait, tt.causeHint)
			}
		})
	}
}

func TestRatioText(t *testing.T) {
	tests := []struct {
		name string
		a, b figure
		want string
	}{
		{name: "plain", a: compared("x", 3, showCount), b: compared("x", 2, showCount), want: "×1.50"},
		{name: "cheaper", a: compared("x", 0.9, showCount), b: compared("x", 1, showCount), want: "×0.90"},
		{name: "relay zero", a: compared("x", 5, showCount), b: compared("x", 0, showCount), want: "-"},
		{name: "relay n/a", a: compared("x", 5, showCount), b: onlyIf(false, compared("x", 1, showCount)), want: "-"},
		{name: "missing figure", a: figure{}, b: compared("x", 1, showCount), want: "-"},
		{name: "NaN", a: compared("x", math.NaN(), showCount), b: compared("x", 1, showCount), want: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratioText(tt.a, tt.b); got != tt.want {
				t.Errorf("= %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFigureText(t *testing.T) {
	tests := []struct {
		f    figure
		want string
	}{
		{f: compared("a", 12345, showCount), want: "12,345"},
		{f: compared("a", float64(1500*time.Microsecond), showDur), want: "1.50 ms"},
		{f: compared("a", 3.14159, showMicros), want: "3.14 µs"},
		{f: compared("a", 23.456, showPct), want: "23.5 %"},
		{f: compared("a", 52.04, showKiB), want: "52.0 KiB"},
		{f: compared("a", 2048, showMiB), want: "2.0 MiB"},
		{f: nanOK(compared("a", micros(time.Second, 0), showMicros)), want: "n/a"},
		{f: onlyIf(false, compared("a", 1, showCount)), want: "n/a"},
	}
	for _, tt := range tests {
		if got := tt.f.text(); got != tt.want {
			t.Errorf("%v: text = %q, want %q", tt.f.v, got, tt.want)
		}
	}
}

// TestAggregation: the figures divide what was measured as the rows say.
func TestAggregation(t *testing.T) {
	load := loadFigures(result{
		Joined: 100, Window: 2 * time.Second, NodeCPU: 300 * time.Millisecond, RedisCPU: 100 * time.Millisecond,
		HaveRedis: true, Tally: tally{Delivered: 1000, Published: 10}, RSSBefore: 1000, RSSAfter: 6000,
	})
	storm := stormFigures(kindIdle, stormResult{
		Admitted: 1000, RSSBefore: 10 << 10, RSSAfter: 10<<10 + 40000,
		IdleWindow: 10 * time.Second, IdleNodeCPU: 500 * time.Millisecond, IdleRedisCPU: 100 * time.Millisecond, HaveRedis: true,
	})
	join := stormFigures(kindJoinStorm, stormResult{Admitted: 500, Time: 2 * time.Second, NodeCPU: time.Second, FramesOut: -1})
	tests := []struct {
		figs  []figure
		label string
		want  float64
		ok    bool
	}{
		{load, "CPU per delivery, nodes + Redis", 400, true},
		{load, "  nodes only", 300, true},
		{load, "  Redis only", 100, true},
		{load, "published msg/s", 5, true},
		{load, "node RSS per connection", 50, true},
		{load, "nodes CPU (cores)", 0.15, true},
		{storm, "node RSS per connection", 40, true},
		{storm, "idle CPU, nodes (% of a core)", 5, true},
		{storm, "idle CPU, nodes + Redis (% of a core)", 6, true},
		{join, "joins/s", 250, true},
		{join, "CPU per join, nodes + Redis", 2000, true},
		{join, "  Redis only", 0, false}, // no Redis: n/a
		{join, "frames written by nodes", -1, false},
	}
	for _, tt := range tests {
		i := slices.IndexFunc(tt.figs, func(f figure) bool { return f.label == tt.label })
		if i < 0 {
			t.Errorf("no row %q", tt.label)
			continue
		}
		f := tt.figs[i]
		if f.ok != tt.ok || tt.ok && math.Abs(f.v-tt.want) > 1e-9 {
			t.Errorf("%q = %v (ok %v), want %v (ok %v)", tt.label, f.v, f.ok, tt.want, tt.ok)
		}
	}
}

func TestScenarioOptions(t *testing.T) {
	tests := []struct {
		name                        string
		args                        []string
		scale                       float64
		clients, rooms, pubs, nodes int
	}{
		{name: "rooms", scale: 1, clients: 5000, rooms: 1000, pubs: 1000, nodes: 2},
		{name: "rooms", scale: 0.01, clients: 50, rooms: 10, pubs: 10, nodes: 2},
		{name: "fanout", scale: 0.001, clients: 5, rooms: 1, pubs: 1, nodes: 2},
		{name: "fanout", args: []string{"-clients", "1500", "-nodes", "3"}, scale: 1, clients: 1500, rooms: 1, pubs: 1, nodes: 3},
		{name: "connectstorm", scale: 1, clients: 15000, rooms: 20, pubs: 20, nodes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name+strings.Join(tt.args, " "), func(t *testing.T) {
			p, ok := findPreset(tt.name)
			if !ok {
				t.Fatalf("no preset %s", tt.name)
			}
			o, err := optionsFor(p, tt.args, tt.scale)
			if err != nil {
				t.Fatal(err)
			}
			if o.clients != tt.clients || o.rooms != tt.rooms || o.publishers != tt.pubs || o.nodes != tt.nodes {
				t.Errorf("clients %d rooms %d publishers %d nodes %d; want %d %d %d %d",
					o.clients, o.rooms, o.publishers, o.nodes, tt.clients, tt.rooms, tt.pubs, tt.nodes)
			}
		})
	}
	if names, err := scenarioNames("all"); err != nil || len(names) != len(presets) {
		t.Errorf("all = %v, %v", names, err)
	}
	if names, err := scenarioNames("idle, fanout"); err != nil || !slices.Equal(names, []string{"idle", "fanout"}) {
		t.Errorf("idle, fanout = %v, %v", names, err)
	}
	if _, err := scenarioNames("fanout,bogus"); err == nil {
		t.Error("an unknown scenario is accepted")
	}
}

// TestPrintComparison: one row per figure, the relay's beside it, the
// ratio only where the row has one.
func TestPrintComparison(t *testing.T) {
	c := comparison{name: "fanout", about: "about it",
		sb:      []figure{compared("CPU per delivery", 3, showMicros), fact("lost", 0, showCount), onlyIf(true, compared("Redis", 1, showMicros))},
		relay:   []figure{compared("CPU per delivery", 2, showMicros), fact("lost", 0, showCount), onlyIf(false, compared("Redis", 0, showMicros))},
		details: []string{"  relay, disconnects: 1× closed 1008"},
	}
	var b bytes.Buffer
	printComparison(&b, c)
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, w := range []string{"== fanout: about it", "switchboard relay ratio", "CPU per delivery 3.00 µs 2.00 µs ×1.50",
		"lost 0 0\n", "Redis 1.00 µs n/a -", "relay, disconnects: 1× closed 1008"} {
		if !strings.Contains(squeeze(b.String())+"\n", squeeze(w)) && !strings.Contains(b.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
}

// TestMergeRounds: compared figures keep their median over the rounds
// where they were measured, facts their worst round.
func TestMergeRounds(t *testing.T) {
	rounds := [][]figure{
		{compared("cpu", 3, showMicros), fact("lost", 0, showCount), onlyIf(false, compared("redis", 9, showMicros))},
		{compared("cpu", 1, showMicros), fact("lost", 2, showCount), compared("redis", 4, showMicros)},
		{compared("cpu", 2, showMicros), fact("lost", 1, showCount), compared("redis", 6, showMicros)},
	}
	got := mergeRounds(rounds)
	for i, want := range []float64{2, 2, 5} {
		if !got[i].ok || got[i].v != want {
			t.Errorf("%s: %v (ok %v), want %v", got[i].label, got[i].v, got[i].ok, want)
		}
	}
}

// TestPrintComparisonRounds: with several rounds, the table says the
// figures are medians and lists every round's ratio.
func TestPrintComparisonRounds(t *testing.T) {
	c := comparison{name: "rooms", about: "about it",
		sb:          []figure{compared("CPU per delivery", 4, showMicros), fact("lost", 0, showCount)},
		relay:       []figure{compared("CPU per delivery", 2, showMicros), fact("lost", 0, showCount)},
		roundRatios: [][]string{{"×2.10", "×1.90", "×2.00"}, nil},
	}
	var b bytes.Buffer
	printComparison(&b, c)
	squeeze := strings.Join(strings.Fields(b.String()), " ")
	for _, w := range []string{"ratio of medians ratio per round", "CPU per delivery 4.00 µs 2.00 µs ×2.00 ×2.10 ×1.90 ×2.00"} {
		if !strings.Contains(squeeze, w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
}
