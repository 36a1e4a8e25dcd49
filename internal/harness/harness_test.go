package harness

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// script writes an executable shell script into a temporary directory
// and returns its path: a real process standing in for a node.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const listening = `echo '{"level":"INFO","msg":"listening","addr":"127.0.0.1:4242"}' >&2`

func TestStartNode(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		timeout  time.Duration
		wantErr  string // "" when it starts
		wantExit bool   // the process ends by itself after listening
	}{
		{name: "listens", body: "echo 'not json' >&2\n" + listening + "\nexec sleep 60"},
		{name: "listens then exits", body: listening + "\nexit 3", wantExit: true},
		{name: "exits before listening", body: "echo boom >&2; exit 1", wantErr: "exited before listening"},
		{name: "never listens", body: "exec sleep 60", timeout: 200 * time.Millisecond, wantErr: "not listening within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var lines []string
			n, err := StartNode(context.Background(), script(t, tt.body), NodeOptions{
				StartTimeout: tt.timeout,
				OnLine: func(b []byte) {
					mu.Lock()
					lines = append(lines, string(b))
					mu.Unlock()
				},
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("StartNode error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("StartNode: %v", err)
			}
			defer n.Kill()
			if n.Addr != "127.0.0.1:4242" || n.WS() != "ws://127.0.0.1:4242/websockets" {
				t.Errorf("Addr %q, WS %q: want the address of the listening record", n.Addr, n.WS())
			}
			if tt.wantExit {
				<-n.Exited()
				if n.ExitCode() != 3 || n.Alive() {
					t.Errorf("ExitCode %d, Alive %v; want 3, false", n.ExitCode(), n.Alive())
				}
				return
			}
			if !n.Alive() || n.ExitStatus() != "" {
				t.Fatalf("Alive %v, ExitStatus %q; want a running process", n.Alive(), n.ExitStatus())
			}
			if !strings.Contains(n.Output(), "not json\n") {
				t.Errorf("Output %q lacks the line that is not JSON", n.Output())
			}
			mu.Lock()
			got := slices.Clone(lines)
			mu.Unlock()
			if len(got) < 2 || got[0] != "not json" {
				t.Errorf("OnLine saw %q, want every line in order", got)
			}
		})
	}
}

func TestNodeStop(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		stop    func(*Node) error
		wantErr bool
		code    int
	}{
		{name: "terminate, graceful", body: "trap 'exit 0' TERM\n" + listening + "\nwhile :; do sleep 0.05; done",
			stop: func(n *Node) error { return n.Terminate(10 * time.Second) }},
		{name: "terminate, ignored: killed", body: "trap '' TERM\n" + listening + "\nwhile :; do sleep 0.05; done",
			stop: func(n *Node) error { return n.Terminate(200 * time.Millisecond) }, wantErr: true, code: -1},
		{name: "kill", body: listening + "\nexec sleep 60",
			stop: func(n *Node) error { n.Kill(); n.Kill(); return nil }, code: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := StartNode(context.Background(), script(t, tt.body), NodeOptions{})
			if err != nil {
				t.Fatalf("StartNode: %v", err)
			}
			defer n.Kill()
			if err := tt.stop(n); (err != nil) != tt.wantErr {
				t.Fatalf("stop = %v, want error %v", err, tt.wantErr)
			}
			if n.Alive() {
				t.Fatal("process still alive after stop returned")
			}
			if n.ExitCode() != tt.code {
				t.Errorf("ExitCode = %d, want %d (%s)", n.ExitCode(), tt.code, n.ExitStatus())
			}
		})
	}
}

func TestWaitReadyNodeExited(t *testing.T) {
	n, err := StartNode(context.Background(), script(t, listening+"\nexit 0"), NodeOptions{})
	if err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	<-n.Exited()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitReady = %v, want an error saying the node exited", err)
	}
}

func TestOutputBuffer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		from   int
		want   string
		len    int
	}{
		{name: "unbounded", writes: []string{"ab", "cd"}, want: "abcd", len: 4},
		{name: "from an offset", writes: []string{"ab", "cd"}, from: 3, want: "d", len: 4},
		{name: "keeps the last bytes", max: 3, writes: []string{"ab", "cd", "e"}, want: "cde", len: 5},
		{name: "offset before what is kept", max: 3, writes: []string{"abcdef"}, from: 1, want: "def", len: 6},
		{name: "offset past the end", writes: []string{"ab"}, from: 9, want: "", len: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &outputBuffer{max: tt.max}
			for _, w := range tt.writes {
				_, _ = b.Write([]byte(w))
			}
			if got := b.From(tt.from); got != tt.want {
				t.Errorf("From(%d) = %q, want %q", tt.from, got, tt.want)
			}
			if b.Len() != tt.len {
				t.Errorf("Len = %d, want %d", b.Len(), tt.len)
			}
		})
	}
}

func TestParseInfo(t *testing.T) {
	info := "# Server\r\nredis_version:7.2.4\r\nprocess_id:42\r\n\r\n# CPU\r\nused_cpu_sys:1.5\r\nodd line\r\n"
	got := ParseInfo(info)
	want := map[string]string{"redis_version": "7.2.4", "process_id": "42", "used_cpu_sys": "1.5"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ParseInfo[%q] = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ParseInfo = %v, want only %v", got, want)
	}
}

func TestRedisStartStop(t *testing.T) {
	if _, err := RedisBinary(); err != nil {
		t.Skip(err) // internal/testredis fails (or skips) on a missing Redis with advice
	}
	ctx := context.Background()
	r, err := StartRedis(ctx, RedisOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Stop() }()
	pid := r.Pid()
	if got, err := serverPID(r.Addr()); err != nil || got != pid {
		t.Fatalf("INFO process_id = %d, %v; want %d", got, err, pid)
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Pid() == pid || r.Pid() == 0 {
		t.Errorf("Pid after Restart = %d, want a new process (was %d)", r.Pid(), pid)
	}
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if r.Pid() != 0 {
		t.Errorf("Pid after Kill = %d, want 0", r.Pid())
	}
	if _, err := serverPID(r.Addr()); err == nil {
		t.Error("the port still answers after Kill")
	}
	if _, err := StartRedis(ctx, RedisOptions{}); err == nil {
		t.Error("StartRedis without Dir succeeded")
	}
}
