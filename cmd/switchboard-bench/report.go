package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// row is one line of the report table: a label, how to show a run's
// value, and optionally its number, for the history on/off ratio.
type row struct {
	label string
	text  func(r result) string
	num   func(r result) (float64, bool) // nil: no ratio
}

// section starts a group of rows.
func section(title string) row { return row{label: title} }

// report prints the results as a table, one column per run, with the
// ratio of the first run to the second when there are two.
func report(w io.Writer, o options, m machine, results []result) {
	fmt.Fprintf(w, "\nSwitchboard bench: %d node(s), %s broker, %d clients, %d rooms, %d publishers × %g msg/s, %d-byte messages\n",
		o.nodes, o.broker, o.clients, o.rooms, o.publishers, o.rate, o.size)
	redisNote := ""
	if m.RedisVersion != "" {
		redisNote = ", redis " + m.RedisVersion
		if m.RedisShared {
			redisNote += " (shared: -redis-url)"
		}
	}
	fmt.Fprintf(w, "machine: %d CPUs, load average %s before the run, open-file limit %d%s\n",
		m.CPUs, m.LoadAvg, m.FDLimit, redisNote)
	fmt.Fprintf(w, "measured %s of publishing after a %s warm-up; latency is send → receive of NewMessage, same clock\n\n",
		o.duration, o.warmup)

	head := []string{""}
	for _, r := range results {
		head = append(head, "history "+onOff(r.History))
	}
	ratio := len(results) == 2 && results[0].History && !results[1].History
	if ratio {
		head = append(head, "on/off")
	}
	table := [][]string{head}
	for _, rw := range rows() {
		cells := []string{rw.label}
		if rw.text != nil {
			cells[0] = "  " + rw.label
			for _, r := range results {
				cells = append(cells, rw.text(r))
			}
			if ratio {
				cells = append(cells, ratioCell(rw, results[0], results[1]))
			}
		}
		table = append(table, cells)
	}
	printTable(w, table)

	for _, r := range results {
		problems(w, r)
	}
	if ratio {
		historyCost(w, results[0], results[1])
	}
}

// rows is the table's layout.
func rows() []row {
	return []row{
		section("setup"),
		{label: "clients joined", text: func(r result) string {
			return fmt.Sprintf("%d in %s", r.Joined, r.ConnectTime.Round(10*time.Millisecond))
		}},
		{label: "publishers", text: func(r result) string { return fmt.Sprint(r.Publishers) }},
		section("throughput"),
		perSec("published msg/s", func(r result) float64 { return float64(r.Tally.Published) }),
		perSec("delivered msg/s (client deliveries)", func(r result) float64 { return float64(r.Tally.Delivered) }),
		perSec("frames written by nodes /s", func(r result) float64 { return r.FramesOut }),
		perSec("  of which sent at once, without a writer /s", func(r result) float64 { return r.FramesNow }),
		{label: "deliveries expected", text: func(r result) string { return count(r.Tally.Expected) }},
		{label: "deliveries received", text: func(r result) string { return count(r.Tally.Delivered) }},
		{label: "lost (messages affected)", text: func(r result) string {
			return fmt.Sprintf("%s (%s)", count(r.Tally.Missing), count(r.Tally.LossyMsg))
		}},
		{label: "duplicates", text: func(r result) string { return count(r.Tally.Duplicates) }},
		{label: "waited for late deliveries", text: func(r result) string { return r.Drain.Round(10 * time.Millisecond).String() }},
		section("end-to-end latency"),
		{label: "samples", text: func(r result) string { return count(int64(r.Samples)) }},
		latency("p50", func(r result) time.Duration { return r.P50 }),
		latency("p90", func(r result) time.Duration { return r.P90 }),
		latency("p99", func(r result) time.Duration { return r.P99 }),
		latency("p99.9", func(r result) time.Duration { return r.P999 }),
		latency("max", func(r result) time.Duration { return r.Max }),
		section("CPU over the measured window"),
		cores("nodes (cores)", func(r result) time.Duration { return r.NodeCPU }),
		{label: "nodes idle, clients connected (cores)", text: func(r result) string {
			return fmt.Sprintf("%.3f", r.IdleNodeCPU.Seconds()/max(r.IdleWindow.Seconds(), 1e-9))
		}},
		perUnit("nodes µs per delivery", func(r result) (time.Duration, int64) { return r.NodeCPU, r.Tally.Delivered }),
		perUnit("nodes µs per published msg", func(r result) (time.Duration, int64) { return r.NodeCPU, r.Tally.Published }),
		{label: "server publish to broker, mean", text: func(r result) string { return dur(r.PublishMean) },
			num: func(r result) (float64, bool) { return float64(r.PublishMean), r.PublishMean > 0 }},
		redisOnly(cores("redis (cores)", func(r result) time.Duration { return r.RedisCPU })),
		redisOnly(row{label: "redis idle, clients connected (cores)", text: func(r result) string {
			return fmt.Sprintf("%.3f", r.IdleRedisCPU.Seconds()/max(r.IdleWindow.Seconds(), 1e-9))
		}}),
		redisOnly(perUnit("redis µs per published msg", func(r result) (time.Duration, int64) { return r.RedisCPU, r.Tally.Published })),
		redisOnly(perUnit("  same, above idle", func(r result) (time.Duration, int64) {
			return aboveIdle(r.RedisCPU, r.IdleRedisCPU, r), r.Tally.Published
		})),
		cores("bench itself (cores)", func(r result) time.Duration { return r.BenchCPU }),
		cores("whole machine (cores)", func(r result) time.Duration { return r.MachineCPU }),
		noRatio(cores("other processes (cores): noise", func(r result) time.Duration { return r.OtherCPU })),
		noRatio(cores("stolen by the hypervisor (cores)", func(r result) time.Duration { return r.StealCPU })),
		section("memory"),
		{label: "node RSS before clients", text: func(r result) string { return mib(r.RSSBefore * 1024) }},
		{label: "node RSS after join", text: func(r result) string { return mib(r.RSSAfter * 1024) }},
		{label: "node KiB per connection", text: func(r result) string {
			return fmt.Sprintf("%.1f", float64(r.RSSAfter-r.RSSBefore)/float64(max(r.Joined, 1)))
		}},
		{label: "node RSS after publishing", text: func(r result) string { return mib(r.RSSEnd * 1024) }},
		redisOnly(row{label: "redis used_memory growth", text: func(r result) string { return mib(r.RedisMemEnd - r.RedisMemBefore) }}),
		section("problems"),
		{label: "client setup failures", text: func(r result) string { return count(r.SetupFailN) }},
		{label: "publisher write errors", text: func(r result) string { return count(r.Tally.PubErrors) }},
		{label: "unexpected disconnects", text: func(r result) string { return count(r.DisconnectN) }},
		{label: "Error frames received", text: func(r result) string { return count(r.ErrFrameN) }},
		{label: "node exited", text: func(r result) string { return map[bool]string{true: "YES", false: "no"}[r.NodeDied] }},
	}
}

func perSec(label string, n func(result) float64) row {
	f := func(r result) (float64, bool) { return n(r) / r.Window.Seconds(), r.Window > 0 }
	return row{label: label, num: f, text: func(r result) string { v, _ := f(r); return count(int64(math.Round(v))) }}
}

func latency(label string, d func(result) time.Duration) row {
	return row{label: label, text: func(r result) string { return dur(d(r)) },
		num: func(r result) (float64, bool) { return float64(d(r)), d(r) > 0 }}
}

func cores(label string, d func(result) time.Duration) row {
	f := func(r result) (float64, bool) { return d(r).Seconds() / r.Window.Seconds(), r.Window > 0 }
	return row{label: label, num: f, text: func(r result) string { v, _ := f(r); return fmt.Sprintf("%.2f", v) }}
}

func perUnit(label string, d func(result) (time.Duration, int64)) row {
	f := func(r result) (float64, bool) {
		cpu, n := d(r)
		return float64(cpu.Microseconds()) / float64(n), n > 0
	}
	return row{label: label, num: f, text: func(r result) string {
		if v, ok := f(r); ok {
			return fmt.Sprintf("%.1f", v)
		}
		return "-"
	}}
}

// noRatio drops a row's ratio: it describes the machine, not the run.
func noRatio(rw row) row { rw.num = nil; return rw }

// redisOnly shows "n/a" for runs without Redis.
func redisOnly(rw row) row {
	text, num := rw.text, rw.num
	rw.text = func(r result) string {
		if !r.HaveRedis {
			return "n/a"
		}
		return text(r)
	}
	if num != nil {
		rw.num = func(r result) (float64, bool) {
			v, ok := num(r)
			return v, ok && r.HaveRedis
		}
	}
	return rw
}

func ratioCell(rw row, on, off result) string {
	if rw.num == nil {
		return ""
	}
	a, ok1 := rw.num(on)
	b, ok2 := rw.num(off)
	if !ok1 || !ok2 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("×%.2f", a/b)
}

// printTable writes rows of cells in columns: the first left-aligned,
// the others right-aligned. A row of one cell is a section title.
func printTable(w io.Writer, table [][]string) {
	var width []int
	for _, cells := range table {
		for i, c := range cells {
			if len(cells) == 1 {
				break
			}
			if i == len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, cells := range table {
		var b strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", max(width[min(i, len(width)-1)]-utf8.RuneCountInString(c), 0))
			switch {
			case len(cells) == 1:
				b.WriteString(c)
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("   " + pad + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
}

// problems lists, for one run, what went wrong in detail.
func problems(w io.Writer, r result) {
	fmt.Fprintf(w, "\nhistory %s: details\n", onOff(r.History))
	fmt.Fprintf(w, "  client setup failures:   %s\n", r.SetupFails)
	fmt.Fprintf(w, "  unexpected disconnects:  %s\n", r.Disconnects)
	fmt.Fprintf(w, "  Error frames received:   %s\n", r.ErrFrames)
	fmt.Fprintf(w, "  server closes by reason: %s\n", labels(r.Closed))
	fmt.Fprintf(w, "  server Error replies:    %s\n", labels(r.ServerErrs))
	if len(r.Logs) == 0 {
		fmt.Fprintf(w, "  node log records beyond connect/disconnect: none\n")
		return
	}
	fmt.Fprintf(w, "  node log records beyond connect/disconnect:\n")
	for i, k := range r.Logs {
		if i == 8 {
			fmt.Fprintf(w, "    … %d more kinds\n", len(r.Logs)-i)
			break
		}
		fmt.Fprintf(w, "    %6d× %s\n           e.g. %s\n", k.Count, k.Key, k.Example)
	}
}

// historyCost prints the closing figure: what history adds per message.
func historyCost(w io.Writer, on, off result) {
	fmt.Fprintf(w, "\nthe cost history adds per message (history on vs off; one run each, on a shared machine: noisy)\n")
	diff := func(name string, a, b time.Duration) {
		sign := ""
		if a >= b {
			sign = "+"
		}
		fmt.Fprintf(w, "  %-34s %9s vs %9s  (%s%s, ×%.2f)\n", name, dur(a), dur(b), sign, dur(a-b), float64(a)/float64(max(b, 1)))
	}
	diff("end-to-end latency p50", on.P50, off.P50)
	diff("end-to-end latency p99", on.P99, off.P99)
	diff("server publish to broker, mean", on.PublishMean, off.PublishMean)
	per := func(name string, cpuA, cpuB time.Duration, nA, nB int64) {
		a := float64(cpuA.Microseconds()) / float64(max(nA, 1))
		b := float64(cpuB.Microseconds()) / float64(max(nB, 1))
		ratio := "-"
		if b > 0 {
			ratio = fmt.Sprintf("×%.2f", a/b)
		}
		fmt.Fprintf(w, "  %-34s %7.1f µs vs %7.1f µs  (%+.1f µs, %s)\n", name, a, b, a-b, ratio)
	}
	if on.HaveRedis && off.HaveRedis {
		per("redis CPU per published message", on.RedisCPU, off.RedisCPU, on.Tally.Published, off.Tally.Published)
		per("  same, above idle", aboveIdle(on.RedisCPU, on.IdleRedisCPU, on), aboveIdle(off.RedisCPU, off.IdleRedisCPU, off),
			on.Tally.Published, off.Tally.Published)
	}
	per("node CPU per published message", on.NodeCPU, off.NodeCPU, on.Tally.Published, off.Tally.Published)
	if on.HaveRedis && off.HaveRedis {
		fmt.Fprintf(w, "  %-34s %9s vs %9s\n", "redis used_memory growth", mib(on.RedisMemEnd-on.RedisMemBefore), mib(off.RedisMemEnd-off.RedisMemBefore))
	}
	fmt.Fprintf(w, "  %-34s %7.2f    vs %7.2f     cores: other processes on the machine during each window\n", "noise",
		on.OtherCPU.Seconds()/on.Window.Seconds(), off.OtherCPU.Seconds()/off.Window.Seconds())
}

// aboveIdle is cpu less what the process used idle (clients connected,
// nobody publishing) over as long a time as the measured window.
func aboveIdle(cpu, idle time.Duration, r result) time.Duration {
	if r.IdleWindow <= 0 {
		return cpu
	}
	return cpu - time.Duration(float64(idle)*r.Window.Seconds()/r.IdleWindow.Seconds())
}

// dur shows a duration with three significant digits.
func dur(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%s%.0f µs", neg, float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%s%.2f ms", neg, float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%s%.1f ms", neg, float64(d)/1e6)
	default:
		return fmt.Sprintf("%s%.2f s", neg, d.Seconds())
	}
}

// count shows an integer with thin thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(bytes int64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }

// labels shows a metric's series as `reason="slow"=3, …`, or "none".
func labels(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", strings.Trim(k, "{}"), m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
