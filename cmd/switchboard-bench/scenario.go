package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Scenario kinds: a load run (connect, join, publish, measure deliveries)
// or one of the storm kinds of runStorm.
const kindLoad = "load"

// preset is a named scenario: what it measures and the flag values it
// implies, which flags given on the command line override.
type preset struct {
	name, about, kind string
	flags             [][2]string // flag name, value
}

// presets are the scenarios of -scenario, in the order "all" runs them.
var presets = []preset{
	{name: "fanout", kind: kindLoad,
		about: "1 room × %[1]d members over %[2]d node(s) + Redis, one publisher at %[3]g msg/s, history %[4]s; the relay: one process, same members, same rate",
		flags: [][2]string{{"nodes", "2"}, {"clients", "5000"}, {"rooms", "1"}, {"publishers", "1"}, {"rate", "5"}, {"dial-concurrency", "100"}}},
	{name: "rooms", kind: kindLoad,
		about: "%[5]d rooms × %[6]d members over %[2]d node(s) + Redis, %[7]g msg/s in all (%[8]d publishers), history %[4]s; the relay: one process, same rooms, same rate",
		flags: [][2]string{{"nodes", "2"}, {"clients", "5000"}, {"rooms", "1000"}, {"publishers", "1000"}, {"rate", "1"}, {"history", "true"}, {"dial-concurrency", "100"}}},
	{name: kindJoinStorm, kind: kindJoinStorm,
		about: "%[1]d clients over %[2]d node(s) + Redis join one room as fast as they can (%[9]d dialling at once); the relay: the same clients join its one room",
		flags: [][2]string{{"nodes", "2"}, {"clients", "5000"}, {"dial-concurrency", "500"}}},
	{name: kindConnectStorm, kind: kindConnectStorm,
		about: "%[1]d clients connect to %[2]d node(s) at once (%[9]d dialling at once), as when a neighbour is drained; refusals are retried after their hint",
		flags: [][2]string{{"nodes", "1"}, {"clients", "15000"}, {"dial-concurrency", "2000"}}},
	{name: kindIdle, kind: kindIdle,
		about: "%[1]d idle connections on %[2]d node(s) + Redis: memory per connection, and CPU over %[10]s with nothing happening",
		flags: [][2]string{{"nodes", "1"}, {"clients", "15000"}, {"dial-concurrency", "200"}}},
}

// findPreset returns the preset named name.
func findPreset(name string) (preset, bool) {
	for _, p := range presets {
		if p.name == name {
			return p, true
		}
	}
	return preset{}, false
}

// scenarioNames expands -scenario: "all", or a comma-separated list.
func scenarioNames(arg string) ([]string, error) {
	if arg == "all" {
		names := make([]string, len(presets))
		for i, p := range presets {
			names[i] = p.name
		}
		return names, nil
	}
	var names []string
	for n := range strings.SplitSeq(arg, ",") {
		n = strings.TrimSpace(n)
		if _, ok := findPreset(n); !ok {
			return nil, fmt.Errorf("-scenario %q: want all, custom, or some of %s", n, strings.Join(presetNames(), ","))
		}
		names = append(names, n)
	}
	return names, nil
}

func presetNames() []string {
	var names []string
	for _, p := range presets {
		names = append(names, p.name)
	}
	return names
}

// scaled are the preset flags -scale multiplies.
var scaled = map[string]bool{"clients": true, "rooms": true, "publishers": true}

// optionsFor is args parsed over p's flag values, the counts among them
// multiplied by scale (at least 1): a flag given in args wins over the
// preset.
func optionsFor(p preset, args []string, scale float64) (options, error) {
	var o options
	fs := newFlagSet(&o)
	for _, kv := range p.flags {
		v := kv[1]
		if n, err := strconv.Atoi(v); err == nil && scaled[kv[0]] {
			v = strconv.Itoa(max(int(math.Round(float64(n)*scale)), 1))
		}
		if err := fs.Set(kv[0], v); err != nil {
			return o, fmt.Errorf("preset %s: %w", p.name, err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.check()
}

// describe fills p.about with o's figures.
func (p preset) describe(o options) string {
	perRoom := o.clients / max(o.rooms, 1)
	return fmt.Sprintf(p.about, o.clients, o.nodes, o.rate, onOff(o.history), o.rooms, perRoom,
		o.rate*float64(o.publishers), o.publishers, o.dialConcurrency, o.idleWindow)
}

// comparison is one scenario measured on Switchboard and on the relay,
// in one or more rounds.
type comparison struct {
	name, about string
	sb, relay   []figure // the same rows, in the same order (medians over rounds)
	// roundRatios holds, per row, each round's switchboard ÷ relay; empty
	// after a single round.
	roundRatios [][]string
	details     []string // what went wrong, per target
}

// runComparison runs scenario p on Switchboard, then on the relay, each
// bounded by o.runTimeout, o.rounds times (the order alternating, so that
// a drift of the machine favours neither), and keeps every figure's
// median (see mergeRounds). run numbers the runs (Redis key prefixes).
func runComparison(ctx context.Context, p preset, o options, e env, run *int) (comparison, error) {
	c := comparison{name: p.name, about: p.describe(o)}
	var sbRounds, relayRounds [][]figure
	for round := range o.rounds {
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, relay := range order {
			*run++
			if o.rounds > 1 {
				progress("%s: round %d of %d on %s", p.name, round+1, o.rounds, targetName(relay))
			}
			sc := scenario{options: o, History: o.history, Run: *run, Relay: relay}
			rctx, cancel := context.WithTimeout(ctx, o.runTimeout)
			figs, details, err := measureTarget(rctx, p.kind, sc, e)
			cancel()
			if err != nil {
				if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
					err = fmt.Errorf("not done within -run-timeout %s: %w", o.runTimeout, err)
				}
				return c, fmt.Errorf("%s on %s: %w", p.name, targetName(relay), err)
			}
			if relay {
				relayRounds = append(relayRounds, figs)
			} else {
				sbRounds = append(sbRounds, figs)
			}
			c.details = append(c.details, details...)
		}
	}
	c.sb, c.relay = mergeRounds(sbRounds), mergeRounds(relayRounds)
	if o.rounds > 1 {
		for i := range c.sb {
			var ratios []string
			for r := range sbRounds {
				if f := sbRounds[r][i]; f.ratio && i < len(relayRounds[r]) {
					ratios = append(ratios, ratioText(f, relayRounds[r][i]))
				}
			}
			c.roundRatios = append(c.roundRatios, ratios)
		}
	}
	return c, nil
}

// mergeRounds folds one target's rounds into one row each: the median of
// a compared figure (the rounds where it was measured), and the worst
// (largest) of a fact (losses, refusals, noise: counts where the worst
// round is what matters).
func mergeRounds(rounds [][]figure) []figure {
	if len(rounds) == 0 {
		return nil
	}
	out := slices.Clone(rounds[0])
	for i := range out {
		var vs []float64
		for _, figs := range rounds {
			if f := figs[i]; f.ok && !math.IsNaN(f.v) {
				vs = append(vs, f.v)
			}
		}
		if len(vs) == 0 {
			continue
		}
		slices.Sort(vs)
		out[i].ok = true
		if out[i].ratio {
			out[i].v = median(vs)
		} else {
			out[i].v = vs[len(vs)-1]
		}
	}
	return out
}

// median of sorted values (the mean of the middle two for an even count).
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// measureTarget runs one scenario kind on one target and returns its
// figures and details.
func measureTarget(ctx context.Context, kind string, sc scenario, e env) ([]figure, []string, error) {
	name := targetName(sc.Relay)
	if kind == kindLoad {
		r, err := runScenario(ctx, sc, e)
		if err != nil {
			return nil, nil, err
		}
		return loadFigures(r), loadDetails(name, r), nil
	}
	r, err := runStorm(ctx, kind, sc, e)
	if err != nil {
		return nil, nil, err
	}
	return stormFigures(kind, r), stormDetails(name, r), nil
}

// printComparison writes one scenario's table: each figure for
// Switchboard, for the relay, and their ratio; then the details.
func printComparison(w io.Writer, c comparison) {
	fmt.Fprintf(w, "\n== %s: %s\n", c.name, c.about)
	head := []string{"", "switchboard", "relay", "ratio"}
	if len(c.roundRatios) > 0 {
		head[1], head[2], head[3] = "switchboard (median)", "relay (median)", "ratio of medians"
		head = append(head, "ratio per round")
	}
	table := [][]string{head}
	for i, f := range c.sb {
		var r figure
		if i < len(c.relay) {
			r = c.relay[i]
		}
		ratio := ""
		if f.ratio {
			ratio = ratioText(f, r)
		}
		row := []string{"  " + f.label, f.text(), r.text(), ratio}
		if i < len(c.roundRatios) {
			row = append(row, strings.Join(c.roundRatios[i], " "))
		}
		table = append(table, row)
	}
	printTable(w, table)
	for _, d := range c.details {
		fmt.Fprintln(w, d)
	}
}
