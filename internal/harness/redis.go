package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
)

// InstallHint says how to get redis-server; errors about a missing
// binary end with it.
const InstallHint = "install it with `apt-get install redis-server` (make test does this)"

const (
	redisStartTimeout   = 10 * time.Second // until a new server answers INFO
	redisRestartTimeout = 10 * time.Second // retrying to bind the old port
	redisStopGrace      = 5 * time.Second  // between SIGTERM and SIGKILL
	redisPortAttempts   = 5                // fresh ports tried by StartRedis
)

// ErrNotInstalled is wrapped by the errors of RedisBinary and
// RedisCLIBinary when the executable cannot be found.
var ErrNotInstalled = errors.New("not installed")

// RedisBinary returns the path of the redis-server executable:
// $REDIS_SERVER_BIN if set, else redis-server from $PATH, else the usual
// Debian locations.
func RedisBinary() (string, error) {
	return findBinary("redis-server", "REDIS_SERVER_BIN")
}

// RedisCLIBinary returns the path of redis-cli: $REDIS_CLI_BIN if set,
// else the redis-cli next to redis-server, else $PATH and the usual
// locations.
func RedisCLIBinary() (string, error) {
	if os.Getenv("REDIS_CLI_BIN") == "" {
		if server, err := RedisBinary(); err == nil {
			sibling := filepath.Join(filepath.Dir(server), "redis-cli")
			if isExecutable(sibling) {
				return sibling, nil
			}
		}
	}
	return findBinary("redis-cli", "REDIS_CLI_BIN")
}

func findBinary(name, envVar string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s %w: %s=%q is not an executable file; %s", name, ErrNotInstalled, envVar, p, InstallHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s %w: %s", name, ErrNotInstalled, InstallHint)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// RedisOptions says how to run a redis-server.
type RedisOptions struct {
	// Dir is the server's working directory (required); the caller creates
	// and removes it.
	Dir string
	// Args are extra redis-server arguments, such as "--requirepass",
	// "secret", appended to the defaults (no persistence, loopback only).
	Args []string
	// ClusterBus also reserves port+10000, for a cluster-enabled node.
	ClusterBus bool
}

// Redis is one redis-server process listening on 127.0.0.1. It keeps its
// port across Stop and Restart. Its methods are safe for concurrent use.
type Redis struct {
	bin  string
	opts RedisOptions
	port int
	out  *outputBuffer // stdout and stderr of every run

	mu   sync.Mutex
	proc *child // nil while stopped
}

// StartRedis starts a redis-server on a free 127.0.0.1 port without
// persistence and waits until it answers commands (up to 10 s), trying a
// few ports if another process takes one first. The caller stops it.
func StartRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	if opts.Dir == "" {
		return nil, errors.New("harness: RedisOptions.Dir is required")
	}
	bin, err := RedisBinary()
	if err != nil {
		return nil, err
	}
	r := &Redis{bin: bin, opts: opts, out: &outputBuffer{max: 1 << 20}}
	var errs []error
	for range redisPortAttempts {
		if r.port, err = FreePort(opts.ClusterBus); err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		err = r.launch(ctx)
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, fmt.Errorf("starting redis-server: %w\noutput:\n%s", errors.Join(errs...), r.out.String())
}

// Addr returns the server's address, "127.0.0.1:port".
func (r *Redis) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// URL returns a redis:// URL for database 0 of the server.
func (r *Redis) URL() string {
	return "redis://" + r.Addr() + "/0"
}

// Output returns what the server printed, over every run (the last MiB).
func (r *Redis) Output() string { return r.out.String() }

// Pid returns the process id of the running server, or 0 if it is stopped.
func (r *Redis) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.cmd.Process.Pid
}

// Stop terminates the server with SIGTERM, then SIGKILL if it has not
// exited after a grace period, and waits until its port refuses
// connections. It does nothing if the server is already stopped.
func (r *Redis) Stop() error { return r.stop(syscall.SIGTERM) }

// Kill stops the server abruptly with SIGKILL, as in a crash, and waits
// until its port refuses connections. It does nothing if the server is
// already stopped.
func (r *Redis) Kill() error { return r.stop(syscall.SIGKILL) }

// Restart starts the server again on the same port, stopping it first if
// it is running, and waits until it answers commands; it keeps retrying
// the port for up to 10 s while it is still in use. Data does not
// survive, since persistence is off; a cluster node rejoins its cluster
// from its nodes file.
func (r *Redis) Restart(ctx context.Context) error {
	if err := r.Stop(); err != nil {
		return err
	}
	deadline := time.Now().Add(redisRestartTimeout)
	for {
		fmt.Fprintf(r.out, "--- harness: restarting on port %d ---\n", r.port)
		err := r.launch(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			return fmt.Errorf("restarting redis-server on %s: %w\noutput:\n%s", r.Addr(), err, r.out.String())
		}
		if err := wait.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// errPortTaken means the port could not be used, so another try may work.
var errPortTaken = errors.New("port already in use")

// launch runs redis-server on r.port and waits until it answers INFO with
// its own process id, so a server of someone else that took the port in
// the meantime is not mistaken for it.
func (r *Redis) launch(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		return errors.New("already running")
	}

	args := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.opts.Dir,
		"--logfile", "",
	}
	cmd := exec.Command(r.bin, append(args, r.opts.Args...)...)
	cmd.Dir = r.opts.Dir
	cmd.Stdout = r.out
	cmd.Stderr = r.out

	outStart := r.out.Len()
	p, err := startChild(cmd, nil)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, redisStartTimeout)
	defer cancel()
	err = wait.Until(wctx, 20*time.Millisecond, func() error {
		if p.exited() {
			if strings.Contains(r.out.From(outStart), "Address already in use") {
				return wait.Abort(fmt.Errorf("%w: port %d: redis-server exited: %v", errPortTaken, r.port, p.err))
			}
			return wait.Abort(fmt.Errorf("redis-server exited during startup: %v", p.err))
		}
		pid, err := serverPID(r.Addr())
		switch {
		case err != nil:
			return err
		case pid != cmd.Process.Pid:
			// Another redis-server won the race for this port.
			return wait.Abort(fmt.Errorf("%w: port %d is served by pid %d", errPortTaken, r.port, pid))
		}
		return nil
	})
	if err != nil {
		p.stop(syscall.SIGKILL, 0)
		return fmt.Errorf("redis-server on %s: %w", r.Addr(), err)
	}
	r.proc = p
	return nil
}

// stop sends sig to the server (SIGKILL after the grace period), waits
// for it to exit and for its port to close. It is a no-op if the server
// is stopped.
func (r *Redis) stop(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.proc
	if p == nil {
		return nil
	}
	r.proc = nil
	p.stop(sig, redisStopGrace)
	return waitPortClosed(r.Addr(), 5*time.Second)
}
