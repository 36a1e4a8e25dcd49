package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
)

// child is one run of a process started by the harness. Its process is
// the leader of its own process group (see sysProcAttr), so signals reach
// anything it forked too.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // result of cmd.Wait, set before done is closed
}

// startChild starts cmd in its own process group and reaps it in the
// background; before, if set, runs in that goroutine ahead of cmd.Wait
// (to finish reading a pipe, which Wait would otherwise close).
func startChild(cmd *exec.Cmd, before func()) (*child, error) {
	cmd.SysProcAttr = sysProcAttr()
	// Do not hang in Wait if something inherited the output pipe.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		if before != nil {
			before()
		}
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process group of c unless it has already exited.
func (c *child) signal(sig syscall.Signal) {
	if c.exited() {
		return
	}
	// Setpgid made the group id equal to the pid; a negative pid signals
	// the whole group.
	_ = syscall.Kill(-c.cmd.Process.Pid, sig)
}

// stop sends sig and waits for the exit; if the process is still running
// after grace it is sent SIGKILL. It reports whether grace ran out.
func (c *child) stop(sig syscall.Signal, grace time.Duration) (killed bool) {
	c.signal(sig)
	if sig == syscall.SIGKILL {
		<-c.done
		return false
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return false
	case <-t.C:
		c.signal(syscall.SIGKILL)
		<-c.done
		return true
	}
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago. With
// withBus it also checks port+10000, which a Redis Cluster node uses for
// its cluster bus.
func FreePort(withBus bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !withBus {
			_ = l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			_ = l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair found")
}

// waitPortClosed waits until connecting to addr is refused.
func waitPortClosed(addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return wait.Until(ctx, 20*time.Millisecond, func() error {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		_ = conn.Close()
		return fmt.Errorf("%s still accepts connections after the server exited", addr)
	})
}

// outputBuffer keeps the last max bytes written to it (all of it when max
// is 0); it is safe for concurrent use.
type outputBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int // bytes discarded from the front
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if b.max > 0 && len(b.buf) > b.max {
		cut := len(b.buf) - b.max
		b.buf = append(b.buf[:0], b.buf[cut:]...)
		b.dropped += cut
	}
	return len(p), nil
}

// Len returns the number of bytes written so far.
func (b *outputBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped + len(b.buf)
}

// From returns what was written from offset i on (what is still kept of it).
func (b *outputBuffer) From(i int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	i = min(max(i-b.dropped, 0), len(b.buf))
	return string(b.buf[i:])
}

func (b *outputBuffer) String() string { return b.From(0) }
