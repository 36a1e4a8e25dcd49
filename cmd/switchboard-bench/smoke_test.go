package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestScenariosSmoke runs every scenario at a tiny scale against real
// nodes, a real redis-server and the relay (this test binary as a child,
// see TestMain), and checks that each table has its rows, with figures
// for both targets where both have them.
func TestScenariosSmoke(t *testing.T) {
	old := settle
	settle = 200 * time.Millisecond
	t.Cleanup(func() { settle = old })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fd, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"-scenario", "all", "-scale", "0.004", "-duration", "1s", "-warmup", "500ms",
		"-drain", "2s", "-idle-window", "1s", "-run-timeout", "1m"}
	if err := benchScenarios(ctx, &out, args, fd); err != nil {
		t.Fatalf("%v; printed:\n%s", err, out.String())
	}
	report := out.String()
	t.Log(report)
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	lines := strings.Split(report, "\n")
	row := func(label string) string {
		for _, l := range lines {
			if strings.HasPrefix(squeeze(l), label+" ") {
				return squeeze(l)
			}
		}
		return ""
	}
	// Each scenario's table starts with its title; its rows follow. A
	// "wantRatio" row must show a ratio, so figures for both targets (CPU
	// rows are not among them: /proc counts CPU in 10 ms ticks, and a
	// tiny run of the relay may use less than one).
	tests := []struct {
		scenario  string
		rows      []string
		wantRatio []string
		zero      []string // counts that must be zero for both
	}{
		{scenario: "fanout", rows: []string{"clients joined 20 20", "deliveries received", "CPU per delivery, nodes + Redis", "latency p99.9", "  Redis only"},
			wantRatio: []string{"latency p50", "latency p99"}, zero: []string{"clients never joined"}},
		{scenario: "rooms", rows: []string{"deliveries lost", "duplicates", "CPU per delivery, nodes + Redis", "noise: other processes (cores)"},
			wantRatio: []string{"latency p50", "latency p99"}},
		{scenario: "joinstorm", rows: []string{"clients joined 20 20", "frames written by nodes", "dropped after joining"},
			wantRatio: []string{"time to all joined", "frames received by clients", "node peak RSS"}},
		{scenario: "connectstorm", rows: []string{"clients admitted 60 60", "refused attempts (1013/503)", "admission p99.9"},
			wantRatio: []string{"admission p99", "node peak RSS"}, zero: []string{"clients never admitted"}},
		{scenario: "idle", rows: []string{"connections 60 60", "idle CPU, nodes (% of a core)", "dropped while idle"},
			wantRatio: []string{"node RSS per connection", "node RSS, all connected, settled"}},
	}
	for _, tt := range tests {
		title := "== " + tt.scenario + ":"
		start := strings.Index(report, title)
		if start < 0 {
			t.Errorf("no %s table", tt.scenario)
			continue
		}
		section := report[start:]
		if end := strings.Index(section[len(title):], "\n== "); end >= 0 {
			section = section[:len(title)+end]
		}
		lines = strings.Split(section, "\n")
		for _, r := range tt.rows {
			if row(r) == "" && !strings.Contains(squeeze(section), squeeze(r)) {
				t.Errorf("%s: no row %q", tt.scenario, r)
			}
		}
		for _, r := range tt.wantRatio {
			if got := row(squeeze(r)); !strings.Contains(got, "×") {
				t.Errorf("%s: row %q has no ratio: %q", tt.scenario, r, got)
			}
		}
		for _, r := range tt.zero {
			if got := row(r); got != r+" 0 0" {
				t.Errorf("%s: %q, want zero for both", tt.scenario, got)
			}
		}
	}
}
