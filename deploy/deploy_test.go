package deploy

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// tool finds a command the tests need, failing (not skipping) when it is
// missing unless SWITCHBOARD_SKIP_DEPLOY=1: a green CI must have run them.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isFile(p) {
			return p
		}
	}
	if os.Getenv("SWITCHBOARD_SKIP_DEPLOY") == "1" {
		t.Skipf("%s not installed (SWITCHBOARD_SKIP_DEPLOY=1)", name)
	}
	t.Fatalf("%s not found: install it with apt-get (make test does this)", name)
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// TestComposeFileIsValid validates docker-compose.yml with docker-compose
// itself (no Docker engine is needed to parse it).
func TestComposeFileIsValid(t *testing.T) {
	compose := tool(t, "docker-compose")
	cmd := exec.Command(compose, "-f", "../docker-compose.yml", "config", "-q")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	out, err := exec.Command(compose, "-f", "../docker-compose.yml", "config", "--services").Output()
	if err != nil {
		t.Fatal(err)
	}
	services := strings.Fields(string(out))
	for _, want := range []string{"redis", "node1", "node2", "lb"} {
		if !strings.Contains(" "+strings.Join(services, " ")+" ", " "+want+" ") {
			t.Errorf("service %q missing from docker-compose.yml (have %v)", want, services)
		}
	}
}

// TestLoadBalancerProxiesWebSockets runs the compose file's nginx.conf for
// real in front of two nodes sharing a Redis, with the upstream addresses
// rewritten to loopback ports, and drives it with WebSocket clients.
func TestLoadBalancerProxiesWebSockets(t *testing.T) {
	nginx := tool(t, "nginx")
	srv := testredis.Start(t)
	cfg := testnode.Config(t, map[string]string{"REDIS_URL": srv.URL(), "REDIS_PREFIX": "lb:"})
	n1, n2 := testnode.StartRedis(t, cfg), testnode.StartRedis(t, cfg)

	conf, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	lbAddr := freeAddr(t)
	local := string(conf)
	for name, url := range map[string]string{"node1:8080": n1.URL, "node2:8080": n2.URL} {
		if !strings.Contains(local, name) {
			t.Fatalf("nginx.conf has no upstream %s", name)
		}
		local = strings.ReplaceAll(local, name, strings.TrimPrefix(url, "http://"))
	}
	local = regexp.MustCompile(`listen\s+8080;`).ReplaceAllString(local, "listen "+lbAddr+";")
	local = strings.Replace(local, "http {", "http {\n  access_log off;", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"logs", "tmp"} {
		_ = os.MkdirAll(filepath.Join(dir, sub), 0o777)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr warn;")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// nginx forks workers: run it in its own process group and kill the
	// whole group, or orphaned workers would keep running (and keep the
	// stderr pipe open).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	lb := "http://" + lbAddr
	waitHTTP(t, lb+"/healthz", &stderr)

	a := wstest.Open(t, wstest.WSURL(lb))
	b := wstest.Open(t, wstest.WSURL(lb))
	if n1.Server.Connections() != 1 || n2.Server.Connections() != 1 {
		t.Fatalf("connections per node: %d and %d, want one each", n1.Server.Connections(), n2.Server.Connections())
	}
	a.Send("chat", "SubmitMessage", "through nginx")
	for _, c := range []*wstest.Client{a, b} {
		var m protocol.ChatMessage
		c.Expect("chat", "NewMessageReceived").Decode(t, &m)
		if m.Content != "through nginx" {
			t.Errorf("got %+v", m)
		}
	}
	resp, err := http.Get(lb + "/ping1")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ping1 through nginx: %v %v", resp, err)
	}
	resp.Body.Close()
	a.Expect("ping", "Ping")
	b.Expect("ping", "Ping")
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitHTTP(t *testing.T, url string, log *strings.Builder) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answering: %v\nnginx: %s", url, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
