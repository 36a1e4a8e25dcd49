package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ is
// 100 on every architecture Go supports on Linux.
const userHZ = 100

// procCPU returns the CPU time (user + system) a process has used, read
// from /proc/<pid>/stat. Its resolution is 1/userHZ.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: fields are counted
	// after its closing parenthesis, from field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(f[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable times in /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// procRSS returns a process's resident set size in KiB (VmRSS).
func procRSS(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

// procPeakRSS returns a process's peak resident set size in KiB (VmHWM).
func procPeakRSS(pid int) (int64, error) { return procStatus(pid, "VmHWM:") }

// procStatus reads one "<field> <n> kB" line of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", strings.TrimSuffix(field, ":"), pid)
}

// selfCPU returns the CPU time (user + system) the bench process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the CPU time every process of the machine has used
// since boot (user, nice, system, irq, softirq: not idle, iowait or
// steal), and the time the hypervisor stole, from /proc/stat.
func machineCPU() (busy, steal time.Duration, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, errors.New("empty /proc/stat")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, errors.New("unreadable /proc/stat")
	}
	var t [8]int64 // user nice system idle iowait irq softirq steal
	for i := range t {
		if t[i], err = strconv.ParseInt(fields[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("unreadable /proc/stat: %w", err)
		}
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }
	return tick(t[0] + t[1] + t[2] + t[5] + t[6]), tick(t[7]), nil
}

// nodesCPU sums procCPU over nodes.
func nodesCPU(nodes []*node) (time.Duration, error) {
	var sum time.Duration
	for _, n := range nodes {
		d, err := procCPU(n.Pid())
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// nodesRSS sums procRSS over nodes, in KiB.
func nodesRSS(nodes []*node) (int64, error) { return sumNodes(nodes, procRSS) }

// nodesPeakRSS sums procPeakRSS over nodes, in KiB.
func nodesPeakRSS(nodes []*node) (int64, error) { return sumNodes(nodes, procPeakRSS) }

// sumNodes sums read over nodes' processes.
func sumNodes(nodes []*node, read func(pid int) (int64, error)) (int64, error) {
	var sum int64
	for _, n := range nodes {
		kib, err := read(n.Pid())
		if err != nil {
			return 0, err
		}
		sum += kib
	}
	return sum, nil
}

// promSample is one scrape of Prometheus text exposition: value by series
// ("name" or `name{label="v",...}` exactly as exposed).
type promSample map[string]float64

// parseProm reads the Prometheus text format, skipping comments.
func parseProm(r io.Reader) (promSample, error) {
	s := promSample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		s[line[:i]] += v
	}
	return s, sc.Err()
}

// add sums another scrape into s (to total several nodes).
func (s promSample) add(o promSample) {
	for k, v := range o {
		s[k] += v
	}
}

// withPrefix returns the series of one metric, keyed by their labels.
func (s promSample) withPrefix(name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range s {
		if rest, ok := strings.CutPrefix(k, name); ok && (rest == "" || rest[0] == '{') {
			out[rest] = v
		}
	}
	return out
}
