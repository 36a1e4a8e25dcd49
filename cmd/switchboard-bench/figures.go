package main

import (
	"fmt"
	"math"
	"time"
)

// figure is one measured value of one target, shown in one row of a
// scenario's table.
type figure struct {
	label string
	v     float64
	ok    bool                 // measured for this target; else "n/a"
	show  func(float64) string // how v reads
	ratio bool                 // the row shows switchboard ÷ relay
}

// text is how the figure reads in its cell.
func (f figure) text() string {
	if !f.ok || f.show == nil {
		return "n/a"
	}
	return f.show(f.v)
}

// ratioText is a ÷ b as "×1.23", or "-" when either is missing or b is
// zero (a ratio to nothing means nothing).
func ratioText(a, b figure) string {
	if !a.ok || !b.ok || b.v == 0 || math.IsNaN(a.v) || math.IsNaN(b.v) {
		return "-"
	}
	return fmt.Sprintf("×%.2f", a.v/b.v)
}

// Ways a figure reads.
func showCount(v float64) string  { return count(int64(math.Round(v))) }
func showDur(v float64) string    { return dur(time.Duration(v)) }
func showMicros(v float64) string { return fmt.Sprintf("%.2f µs", v) }
func showPct(v float64) string    { return fmt.Sprintf("%.1f %%", v) }
func showKiB(v float64) string    { return fmt.Sprintf("%.1f KiB", v) }
func showMiB(v float64) string    { return mib(int64(v * 1024)) }
func showCores(v float64) string  { return fmt.Sprintf("%.2f", v) }
func showRate(v float64) string   { return count(int64(math.Round(v))) + "/s" }

// Constructors: compared figures carry a ratio, facts do not.
func compared(label string, v float64, show func(float64) string) figure {
	return figure{label: label, v: v, ok: true, show: show, ratio: true}
}
func fact(label string, v float64, show func(float64) string) figure {
	return figure{label: label, v: v, ok: true, show: show}
}

// onlyIf marks f as not measured unless ok.
func onlyIf(ok bool, f figure) figure { f.ok = f.ok && ok; return f }

// micros is cpu ÷ n in µs; NaN when n is zero.
func micros(cpu time.Duration, n int64) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return cpu.Seconds() * 1e6 / float64(n)
}

// share is cpu over window as a fraction of one core.
func share(cpu, window time.Duration) float64 {
	if window <= 0 {
		return math.NaN()
	}
	return cpu.Seconds() / window.Seconds()
}

// kibPer is the RSS growth from before to after per connection, in KiB.
func kibPer(before, after int64, n int) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return float64(after-before) / float64(n)
}

// nanOK is a figure that is missing when v is NaN (nothing to divide by).
func nanOK(f figure) figure { f.ok = f.ok && !math.IsNaN(f.v); return f }

// loadFigures are the rows of fanout and rooms.
func loadFigures(r result) []figure {
	t := r.Tally
	return []figure{
		fact("clients joined", float64(r.Joined), showCount),
		compared("connect and join time", float64(r.ConnectTime), showDur),
		fact("published msg/s", float64(t.Published)/max(r.Window.Seconds(), 1e-9), showRate),
		fact("deliveries received", float64(t.Delivered), showCount),
		fact("deliveries lost", float64(t.Missing), showCount),
		fact("duplicates", float64(t.Duplicates), showCount),
		nanOK(compared("CPU per delivery, nodes + Redis", micros(r.NodeCPU+r.RedisCPU, t.Delivered), showMicros)),
		nanOK(compared("  nodes only", micros(r.NodeCPU, t.Delivered), showMicros)),
		onlyIf(r.HaveRedis, nanOK(compared("  Redis only", micros(r.RedisCPU, t.Delivered), showMicros))),
		onlyIf(r.P50 > 0, compared("latency p50", float64(r.P50), showDur)),
		onlyIf(r.P99 > 0, compared("latency p99", float64(r.P99), showDur)),
		onlyIf(r.P999 > 0, compared("latency p99.9", float64(r.P999), showDur)),
		onlyIf(r.Max > 0, compared("latency max", float64(r.Max), showDur)),
		nanOK(compared("nodes CPU (cores)", share(r.NodeCPU, r.Window), showCores)),
		onlyIf(r.HaveRedis, nanOK(compared("Redis CPU (cores)", share(r.RedisCPU, r.Window), showCores))),
		nanOK(compared("node RSS per connection", kibPer(r.RSSBefore, r.RSSAfter, r.Joined), showKiB)),
		onlyIf(r.FramesOut > 0, fact("frames sent at once, without a writer", 100*r.FramesNow/r.FramesOut, showPct)),
		fact("refused attempts (1013/503)", float64(r.RefusalN), showCount),
		fact("clients never joined", float64(r.SetupFailN), showCount),
		fact("unexpected disconnects", float64(r.DisconnectN), showCount),
		fact("Error frames received", float64(r.ErrFrameN), showCount),
		nanOK(fact("noise: other processes (cores)", share(r.OtherCPU, r.Window), showCores)),
		nanOK(fact("noise: stolen by the hypervisor (cores)", share(r.StealCPU, r.Window), showCores)),
	}
}

// loadDetails lists what went wrong in a load run, if anything.
func loadDetails(name string, r result) []string {
	var out []string
	add := func(what, s string) {
		if s != "" && s != "none" {
			out = append(out, fmt.Sprintf("  %s, %s: %s", name, what, s))
		}
	}
	add("refusals", r.Refusals)
	add("setup failures", r.SetupFails)
	add("disconnects", r.Disconnects)
	add("Error frames", r.ErrFrames)
	add("server closes", labelsOrNone(r.Closed))
	add("node exited", map[bool]string{true: "YES"}[r.NodeDied])
	return append(out, logDetails(name, r.Logs)...)
}

// stormFigures are the rows of joinstorm, connectstorm and idle.
func stormFigures(kind string, r stormResult) []figure {
	cpu := r.NodeCPU + r.RedisCPU
	n := int64(r.Admitted)
	noise := []figure{
		nanOK(fact("noise: other processes (cores)", share(r.OtherCPU, r.Window), showCores)),
		nanOK(fact("noise: stolen by the hypervisor (cores)", share(r.StealCPU, r.Window), showCores)),
	}
	switch kind {
	case kindJoinStorm:
		return append([]figure{
			fact("clients joined", float64(r.Admitted), showCount),
			compared("time to all joined", float64(r.Time), showDur),
			nanOK(compared("joins/s", float64(n)/r.Time.Seconds(), showRate)),
			fact("last frame, after all joined", float64(r.Tail), showDur),
			nanOK(compared("CPU per join, nodes + Redis", micros(cpu, n), showMicros)),
			nanOK(compared("  nodes only", micros(r.NodeCPU, n), showMicros)),
			onlyIf(r.HaveRedis, nanOK(compared("  Redis only", micros(r.RedisCPU, n), showMicros))),
			compared("frames received by clients", float64(r.FramesIn), showCount),
			onlyIf(r.FramesOut >= 0, fact("frames written by nodes", r.FramesOut, showCount)),
			compared("join latency p50 (first dial → own JoinedRoom)", float64(r.JoinP50), showDur),
			compared("join latency p99", float64(r.JoinP99), showDur),
			compared("node peak RSS", float64(r.PeakRSS), showMiB),
			fact("refused attempts (1013/503)", float64(r.RefusalN), showCount),
			fact("clients never joined", float64(r.SetupFailN), showCount),
			fact("dropped after joining", float64(r.DisconnectN), showCount),
		}, noise...)
	case kindConnectStorm:
		return append([]figure{
			fact("clients admitted", float64(r.Admitted), showCount),
			compared("time to all admitted", float64(r.Time), showDur),
			nanOK(compared("admissions/s", float64(n)/r.Time.Seconds(), showRate)),
			compared("admission p50 (first dial → greeting)", float64(r.AdmitP50), showDur),
			compared("admission p99", float64(r.AdmitP99), showDur),
			compared("admission p99.9", float64(r.AdmitP999), showDur),
			compared("admission max", float64(r.AdmitMax), showDur),
			fact("refused attempts (1013/503)", float64(r.RefusalN), showCount),
			fact("clients never admitted", float64(r.SetupFailN), showCount),
			fact("dropped after admission", float64(r.DisconnectN), showCount),
			compared("node peak RSS", float64(r.PeakRSS), showMiB),
			nanOK(compared("node RSS per connection", kibPer(r.RSSBefore, r.RSSAfter, r.Admitted), showKiB)),
			nanOK(compared("CPU per admission, nodes + Redis", micros(cpu, n), showMicros)),
		}, noise...)
	default: // idle
		idleNoise := []figure{
			nanOK(fact("noise: other processes, idle window (cores)", share(r.IdleOtherCPU, r.IdleWindow), showCores)),
		}
		return append([]figure{
			fact("connections", float64(r.Admitted), showCount),
			compared("time to all connected", float64(r.Time), showDur),
			compared("node RSS before clients", float64(r.RSSBefore), showMiB),
			compared("node RSS, all connected, settled", float64(r.RSSAfter), showMiB),
			nanOK(compared("node RSS per connection", kibPer(r.RSSBefore, r.RSSAfter, r.Admitted), showKiB)),
			nanOK(compared("idle CPU, nodes (% of a core)", 100*share(r.IdleNodeCPU, r.IdleWindow), showPct)),
			onlyIf(r.HaveRedis, nanOK(compared("idle CPU, Redis (% of a core)", 100*share(r.IdleRedisCPU, r.IdleWindow), showPct))),
			nanOK(compared("idle CPU, nodes + Redis (% of a core)", 100*share(r.IdleNodeCPU+r.IdleRedisCPU, r.IdleWindow), showPct)),
			fact("idle window", float64(r.IdleWindow), showDur),
			onlyIf(r.IdlePings >= 0, nanOK(fact("keep-alive pings/s in the window", r.IdlePings/r.IdleWindow.Seconds(), showRate))),
			fact("refused attempts (1013/503)", float64(r.RefusalN), showCount),
			fact("clients never connected", float64(r.SetupFailN), showCount),
			fact("dropped while idle", float64(r.DisconnectN), showCount),
		}, idleNoise...)
	}
}

// stormDetails lists what went wrong in a storm or idle run, if anything.
func stormDetails(name string, r stormResult) []string {
	var out []string
	add := func(what, s string) {
		if s != "" && s != "none" {
			out = append(out, fmt.Sprintf("  %s, %s: %s", name, what, s))
		}
	}
	add("refusals", r.Refusals)
	add("setup failures", r.SetupFails)
	add("disconnects", r.Disconnects)
	add("Error frames", r.ErrFrames)
	add("node exited", map[bool]string{true: "YES"}[r.NodeDied])
	return append(out, logDetails(name, r.Logs)...)
}

// logDetails lists a target's notable log records, the most frequent
// first, at most five kinds.
func logDetails(name string, logs []logKind) []string {
	var out []string
	for i, k := range logs {
		if i == 5 {
			out = append(out, fmt.Sprintf("  %s logged %d more kinds of record", name, len(logs)-i))
			break
		}
		out = append(out, fmt.Sprintf("  %s logged %d× %s", name, k.Count, k.Key))
	}
	return out
}

// labelsOrNone is labels, or "" when every series is zero.
func labelsOrNone(m map[string]float64) string {
	s := labels(m)
	if s == "none" {
		return ""
	}
	return s
}
