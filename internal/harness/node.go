package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
)

// NodePackage is the import path of the switchboard command.
const NodePackage = "github.com/switchboard/switchboard/cmd/switchboard"

// nodeStartTimeout is how long StartNode waits for "listening" by default.
const nodeStartTimeout = 30 * time.Second

// BuildNode compiles the switchboard binary into dir and returns its
// path; race builds it with the race detector.
func BuildNode(ctx context.Context, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "switchboard")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, NodePackage)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// NodeOptions says how to run a node process.
type NodeOptions struct {
	// Env is the whole environment of the process. It must make the node
	// log JSON (LOG_FORMAT=json) at info level or below, since StartNode
	// reads the listening address from its "listening" record.
	Env []string
	// OnLine, if set, is called with every line the node writes to stderr,
	// in order, from the goroutine reading it; the slice is only valid
	// during the call.
	OnLine func(line []byte)
	// StartTimeout bounds the wait for "listening". Default 30 s.
	StartTimeout time.Duration
	// KeepOutput is how many bytes of the node's stderr Output keeps, the
	// most recent ones. Default 1 MiB.
	KeepOutput int
}

// Node is a switchboard node running as a child process.
type Node struct {
	// Addr is the host:port the node listens on.
	Addr  string
	proc  *child
	out   *outputBuffer
	lines chan struct{} // closed once stderr has been read to its end
}

// StartNode runs bin with opts.Env and waits until it logs that it is
// listening. The caller ends it with Terminate or Kill.
func StartNode(ctx context.Context, bin string, opts NodeOptions) (*Node, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = nodeStartTimeout
	}
	if opts.KeepOutput <= 0 {
		opts.KeepOutput = 1 << 20
	}
	cmd := exec.Command(bin)
	cmd.Env = opts.Env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	n := &Node{out: &outputBuffer{max: opts.KeepOutput}, lines: make(chan struct{})}
	addr := make(chan string, 1)
	scan := func() {
		defer close(n.lines)
		n.scan(stderr, addr, opts.OnLine)
	}
	if n.proc, err = startChild(cmd, scan); err != nil {
		return nil, err
	}

	timeout := time.NewTimer(opts.StartTimeout)
	defer timeout.Stop()
	select {
	case n.Addr = <-addr:
		return n, nil
	case <-n.proc.done:
		select {
		case n.Addr = <-addr: // it listened, then exited: the caller sees Exited
			return n, nil
		default:
		}
		return nil, fmt.Errorf("node exited before listening (%v):\n%s", n.proc.err, n.Output())
	case <-timeout.C:
		n.Kill()
		return nil, fmt.Errorf("node not listening within %s:\n%s", opts.StartTimeout, n.Output())
	case <-ctx.Done():
		n.Kill()
		return nil, ctx.Err()
	}
}

// scan reads stderr line by line until it ends, keeping the output,
// calling onLine, and sending the address of the first "listening"
// record to addr.
func (n *Node) scan(r io.Reader, addr chan<- string, onLine func([]byte)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		_, _ = n.out.Write(line)
		_, _ = n.out.Write([]byte{'\n'})
		// Every line is handed on before the listening record releases
		// StartNode, so that its caller has seen all of them by then.
		if onLine != nil {
			onLine(line)
		}
		if !sent {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" && rec.Addr != "" {
				addr <- rec.Addr
				sent = true
			}
		}
	}
	// A line longer than the buffer ends scanning; drain the rest so the
	// node never blocks writing to a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// URL is the node's base URL, http://host:port.
func (n *Node) URL() string { return "http://" + n.Addr }

// WS is the node's WebSocket URL.
func (n *Node) WS() string { return "ws://" + n.Addr + "/websockets" }

// Pid is the node's process id.
func (n *Node) Pid() int { return n.proc.cmd.Process.Pid }

// Exited is closed once the process has exited and been reaped.
func (n *Node) Exited() <-chan struct{} { return n.proc.done }

// Alive reports whether the process is still running.
func (n *Node) Alive() bool { return !n.proc.exited() }

// ExitStatus describes how the process ended, "" while it runs.
func (n *Node) ExitStatus() string {
	if n.Alive() {
		return ""
	}
	return n.proc.cmd.ProcessState.String()
}

// ExitCode is the process's exit code once it has exited (-1 if a signal
// ended it), or -1 while it runs.
func (n *Node) ExitCode() int {
	if n.Alive() {
		return -1
	}
	return n.proc.cmd.ProcessState.ExitCode()
}

// Output is the end of what the node logged so far (see KeepOutput).
func (n *Node) Output() string { return n.out.String() }

// Kill ends the process with SIGKILL, as a crash, and waits for it. It
// does nothing if the process has already exited.
func (n *Node) Kill() { n.proc.stop(syscall.SIGKILL, 0) }

// Terminate sends SIGTERM, a graceful shutdown, and waits for the exit;
// if the node is still running after grace it is killed and Terminate
// returns an error saying so.
func (n *Node) Terminate(grace time.Duration) error {
	if n.proc.stop(syscall.SIGTERM, grace) {
		return fmt.Errorf("node %s did not exit within %s of SIGTERM: killed", n.Addr, grace)
	}
	return nil
}

// WaitReady polls /readyz until it answers 200, the node exits or ctx
// ends.
func (n *Node) WaitReady(ctx context.Context) error {
	return wait.Until(ctx, 50*time.Millisecond, func() error {
		if !n.Alive() {
			return wait.Abort(errors.New("node exited before ready"))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/readyz", nil)
		if err != nil {
			return wait.Abort(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		return nil
	})
}
