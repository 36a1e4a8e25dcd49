package testnode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the switchboard binary into dir and returns its path.
// Tests that need a node in its own process (to SIGKILL it) call it once
// from TestMain.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "switchboard")
	cmd := exec.Command("go", "build", "-race", "-o", bin, "github.com/switchboard/switchboard/cmd/switchboard")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a node running as a child process.
type Process struct {
	URL string
	cmd *exec.Cmd

	mu     sync.Mutex
	output bytes.Buffer
	exited chan struct{}
}

// WS is the node's WebSocket URL.
func (p *Process) WS() string { return "ws" + p.URL[len("http"):] + "/websockets" }

// StartProcess runs bin on 127.0.0.1 with a free port and env added to the
// environment, waits until it listens, and kills it when the test ends.
func StartProcess(t testing.TB, bin string, env map[string]string) *Process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT=0", "LOG_FORMAT=json", "LOG_LEVEL=debug")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.output.Write(line)
			p.output.WriteByte('\n')
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("node process output:\n%s", p.Output())
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
		t.Fatalf("node exited before listening:\n%s", p.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("node not listening within 30s:\n%s", p.Output())
	}
	return p
}

// Kill ends the process with SIGKILL, as a crash, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Terminate sends SIGTERM and waits for a graceful exit, returning its
// exit code.
func (p *Process) Terminate(t testing.TB) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("node did not exit within 30s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// Output is what the process logged so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}
