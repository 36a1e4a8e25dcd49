package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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

// comparison is one scenario measured on Switchboard and on the relay.
type comparison struct {
	name, about string
	sb, relay   []figure // the same rows, in the same order
	details     []string // what went wrong, per target
}

// runComparison runs scenario p on Switchboard, then on the relay, each
// bounded by o.runTimeout. run numbers the runs (Redis key prefixes).
func runComparison(ctx context.Context, p preset, o options, e env, run *int) (comparison, error) {
	c := comparison{name: p.name, about: p.describe(o)}
	for _, relay := range []bool{false, true} {
		*run++
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
			c.relay = figs
		} else {
			c.sb = figs
		}
		c.details = append(c.details, details...)
	}
	return c, nil
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
	table := [][]string{{"", "switchboard", "relay", "ratio"}}
	for i, f := range c.sb {
		var r figure
		if i < len(c.relay) {
			r = c.relay[i]
		}
		ratio := ""
		if f.ratio {
			ratio = ratioText(f, r)
		}
		table = append(table, []string{"  " + f.label, f.text(), r.text(), ratio})
	}
	printTable(w, table)
	for _, d := range c.details {
		fmt.Fprintln(w, d)
	}
}
