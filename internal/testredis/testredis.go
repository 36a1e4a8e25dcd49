// Package testredis starts throwaway real redis-server processes, single
// servers and small clusters, on free loopback ports for Go tests.
package testredis

import (
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
	"testing"
	"time"
)

// SkipEnv is the environment variable that, when set to "1", makes tests
// skip instead of fail if redis-server is not installed. CI leaves it unset
// so that a missing Redis fails the build.
const SkipEnv = "SWITCHBOARD_SKIP_REDIS"

const installHint = "install it with `apt-get install redis-server` (make test does this)"

const (
	startTimeout   = 10 * time.Second // until a new server answers PING
	restartTimeout = 10 * time.Second // retrying to bind the old port
	stopGrace      = 5 * time.Second  // between SIGTERM and SIGKILL
	portAttempts   = 5                // fresh ports tried by Start
)

// Binary returns the path of the redis-server executable: $REDIS_SERVER_BIN
// if set, else redis-server from $PATH, else the usual Debian locations.
func Binary() (string, error) {
	return findBinary("redis-server", "REDIS_SERVER_BIN")
}

// cliBinary returns the path of redis-cli: $REDIS_CLI_BIN if set, else the
// redis-cli next to redis-server, else $PATH and the usual locations.
func cliBinary() (string, error) {
	if os.Getenv("REDIS_CLI_BIN") == "" {
		if server, err := Binary(); err == nil {
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
			return "", fmt.Errorf("%s not found: %s=%q is not an executable file; %s", name, envVar, p, installHint)
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
	return "", fmt.Errorf("%s not found: %s", name, installHint)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Require returns the path of redis-server. If it is missing, Require skips
// the test when $SWITCHBOARD_SKIP_REDIS is "1" and fails it otherwise, with
// a message saying how to install Redis.
func Require(t testing.TB) string {
	t.Helper()
	return requireBinary(t, Binary)
}

func requireBinary(t testing.TB, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	if err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("skipping (%s=1): %v", SkipEnv, err)
		}
		t.Fatalf("%v (or set %s=1 to skip tests that need Redis)", err, SkipEnv)
	}
	return path
}

// Server is one redis-server process listening on 127.0.0.1. It keeps its
// port across Stop and Restart. Its methods are safe for concurrent use.
type Server struct {
	bin  string
	dir  string
	args []string // extra redis-server arguments
	port int
	out  *syncBuffer // stdout and stderr of every run

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // result of cmd.Wait, set before done is closed
}

// Start starts a redis-server on a free 127.0.0.1 port without persistence,
// with a fresh t.TempDir() as its working directory, and waits until it
// answers commands (up to 10 s). Extra redis-server arguments, such as "--requirepass",
// "secret", are appended to the defaults. The server is stopped when the
// test and its subtests finish.
func Start(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	return start(t, t.TempDir(), extraArgs, false)
}

// start is Start with a given working directory; clusterBus also reserves
// port+10000 for the cluster bus.
func start(t testing.TB, dir string, extraArgs []string, clusterBus bool) *Server {
	t.Helper()
	s := &Server{
		bin:  Require(t),
		dir:  dir,
		args: extraArgs,
		out:  &syncBuffer{},
	}
	// Registered before the first launch so a failed start still cleans up.
	t.Cleanup(func() {
		if err := s.stop(syscall.SIGTERM); err != nil {
			t.Errorf("testredis: stopping %s: %v", s.Addr(), err)
		}
		if t.Failed() {
			t.Logf("redis-server %s output:\n%s", s.Addr(), s.out.String())
		}
	})

	var errs []error
	for range portAttempts {
		port, err := freePort(clusterBus)
		if err != nil {
			t.Fatalf("testredis: finding a free port: %v", err)
		}
		s.port = port
		err = s.launch()
		if err == nil {
			return s
		}
		errs = append(errs, err)
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("testredis: starting redis-server: %v\noutput:\n%s", errors.Join(errs...), s.out.String())
	return nil
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns a redis:// URL for database 0 of the server.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop terminates the server with SIGTERM, then SIGKILL if it has not exited
// after a grace period, and waits until its port refuses connections. It
// does nothing if the server is already stopped.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("testredis: stopping %s: %v", s.Addr(), err)
	}
}

// Kill stops the server abruptly with SIGKILL, as in a crash, and waits
// until its port refuses connections. It does nothing if the server is
// already stopped.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGKILL); err != nil {
		t.Fatalf("testredis: killing %s: %v", s.Addr(), err)
	}
}

// Restart starts the server again on the same port, stopping it first if it
// is running, and waits until it answers commands; it keeps retrying the
// port for up to 10 s while it is still in use. Data does not survive, since
// persistence is off; a cluster node rejoins its cluster from its nodes file.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("testredis: stopping %s: %v", s.Addr(), err)
	}
	deadline := time.Now().Add(restartTimeout)
	for {
		fmt.Fprintf(s.out, "--- testredis: restarting on port %d ---\n", s.port)
		err := s.launch()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || time.Now().After(deadline) {
			t.Fatalf("testredis: restarting redis-server on %s: %v\noutput:\n%s", s.Addr(), err, s.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pid returns the process id of the running server, or 0 if it is stopped.
func (s *Server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// errPortTaken means the port could not be used, so another try may work.
var errPortTaken = errors.New("port already in use")

// launch runs redis-server on s.port and waits until it answers INFO with
// its own process id, so a server of someone else that took the port in the
// meantime is not mistaken for it.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}

	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "no",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "",
	}
	cmd := exec.Command(s.bin, append(args, s.args...)...)
	cmd.Dir = s.dir
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	cmd.SysProcAttr = sysProcAttr()
	// Do not hang in Wait if something inherited the output pipe.
	cmd.WaitDelay = time.Second

	outStart := s.out.Len()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.done:
			if strings.Contains(s.out.From(outStart), "Address already in use") {
				return fmt.Errorf("%w: port %d: redis-server exited: %v", errPortTaken, s.port, p.err)
			}
			return fmt.Errorf("redis-server exited during startup: %v", p.err)
		default:
		}
		if pid, err := serverPID(s.Addr()); err == nil {
			if pid == cmd.Process.Pid {
				s.proc = p
				return nil
			}
			// Another redis-server won the race for this port.
			p.signal(syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("%w: port %d is served by pid %d", errPortTaken, s.port, pid)
		}
		if time.Now().After(deadline) {
			p.signal(syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("redis-server on %s did not answer within %v", s.Addr(), startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig to the server (SIGKILL after stopGrace), waits for it to
// exit and for its port to close. It is a no-op if the server is stopped.
func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	p.signal(sig)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.signal(syscall.SIGKILL)
		<-p.done
	}
	return waitPortClosed(s.Addr(), 5*time.Second)
}

// signal sends sig to the process group of p unless p has already exited.
func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		// Setpgid made the group id equal to the pid; a negative pid
		// signals the whole group, including anything redis forked.
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago. For a
// cluster node it also checks the cluster bus port, port+10000.
func freePort(withBus bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !withBus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair found")
}

// waitPortClosed waits until connecting to addr is refused.
func waitPortClosed(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still accepts connections after the server exited", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is an append-only output buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Len returns the number of bytes written so far.
func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

// From returns what was written from offset i on.
func (b *syncBuffer) From(i int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf[i:])
}

func (b *syncBuffer) String() string { return b.From(0) }
