package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server process the bench started.
type redisServer struct {
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *bytes.Buffer // written only by the process until it exits
}

// startRedis runs redis-server on a free 127.0.0.1 port without
// persistence, in dir, and waits until it answers PING.
func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	bin := os.Getenv("REDIS_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, fmt.Errorf("redis-server not found (install it, set REDIS_SERVER_BIN, pass -redis-url or use -broker memory): %w", err)
		}
	}
	var errs []error
	for range 5 { // a free port may be taken before redis-server binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launchRedis(ctx, bin, dir, port)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func launchRedis(ctx context.Context, bin, dir string, port int) (*redisServer, error) {
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "")
	s := &redisServer{
		URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port),
		cmd: cmd, exited: make(chan struct{}), out: &bytes.Buffer{},
	}
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(s.exited) }()

	opts, _ := redis.ParseURL(s.URL)
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := c.Info(pctx, "server").Result()
		cancel()
		if err == nil && infoField(info, "process_id") == strconv.Itoa(cmd.Process.Pid) {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("redis-server exited on port %d:\n%s", port, s.out.String())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on port %d not answering within 10s", port)
		}
	}
}

// stop ends redis-server with SIGTERM, then SIGKILL, and waits for it.
func (s *redisServer) stop() { terminate(s.cmd, s.exited) }

// freePort asks the kernel for a free 127.0.0.1 TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// redisStats are the figures read from INFO.
type redisStats struct {
	CPU        float64 // used_cpu_sys + used_cpu_user, seconds
	UsedMemory int64   // used_memory, bytes
	Version    string
}

// readRedisStats runs INFO on c.
func readRedisStats(ctx context.Context, c *redis.Client) (redisStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server", "cpu", "memory").Result()
	if err != nil {
		return redisStats{}, err
	}
	sys, err1 := strconv.ParseFloat(infoField(info, "used_cpu_sys"), 64)
	user, err2 := strconv.ParseFloat(infoField(info, "used_cpu_user"), 64)
	mem, err3 := strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return redisStats{}, fmt.Errorf("unreadable INFO: %w", err)
	}
	return redisStats{CPU: sys + user, UsedMemory: mem, Version: infoField(info, "redis_version")}, nil
}

// infoField returns the value of one "name:value" line of INFO output.
func infoField(info, name string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
