package testnode

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/harness"
)

// Build compiles the switchboard binary, with the race detector, into dir
// and returns its path. Tests that need a node in its own process (to
// SIGKILL it) call it once from TestMain.
func Build(dir string) (string, error) {
	return harness.BuildNode(context.Background(), dir, true)
}

// Process is a node running as a child process.
type Process struct {
	*harness.Node
	// URL is the node's base URL, http://127.0.0.1:port.
	URL string
}

// StartProcess runs bin on 127.0.0.1 with a free port and env added to the
// environment, waits until it listens, and kills it when the test ends.
func StartProcess(t testing.TB, bin string, env map[string]string) *Process {
	t.Helper()
	environ := append(os.Environ(), "HOST=127.0.0.1", "PORT=0", "LOG_FORMAT=json", "LOG_LEVEL=debug")
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	n, err := harness.StartNode(context.Background(), bin, harness.NodeOptions{Env: environ})
	if err != nil {
		t.Fatalf("testnode: %v", err)
	}
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("node process output:\n%s", n.Output())
		}
	})
	return &Process{Node: n, URL: n.URL()}
}

// Terminate sends SIGTERM and waits for a graceful exit (up to 30 s),
// returning its exit code.
func (p *Process) Terminate(t testing.TB) int {
	t.Helper()
	if err := p.Node.Terminate(30 * time.Second); err != nil {
		t.Fatalf("testnode: %v", err)
	}
	return p.ExitCode()
}
