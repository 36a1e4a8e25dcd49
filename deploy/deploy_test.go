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
	cmd.Env = composeEnv(composeSecrets)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	cmd = exec.Command(compose, "-f", "../docker-compose.yml", "config", "--services")
	cmd.Env = composeEnv(composeSecrets)
	out, err := cmd.Output()
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

// composeSecrets are the variables the compose file refuses to start
// without.
var composeSecrets = map[string]string{
	"REDIS_PASSWORD": "0123456789abcdef", "JWT_SECRET": "0123456789abcdef0123456789abcdef", "SERVER_API_KEY": "api-key",
}

// composeEnv is the environment with exactly vars set among the secrets.
func composeEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if _, secret := composeSecrets[strings.SplitN(kv, "=", 2)[0]]; !secret {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// TestComposeIsSecureByDefault: the shipped deployment is authenticated,
// refuses to start without its secrets, keeps Redis unpublished behind a
// password with bounded memory, and keeps /metrics off the public port.
func TestComposeIsSecureByDefault(t *testing.T) {
	compose := tool(t, "docker-compose")
	for missing := range composeSecrets {
		vars := map[string]string{}
		for k, v := range composeSecrets {
			if k != missing {
				vars[k] = v
			}
		}
		cmd := exec.Command(compose, "-f", "../docker-compose.yml", "config", "-q")
		cmd.Env = composeEnv(vars)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), missing) {
			t.Errorf("compose without %s: err %v, output %q; want a refusal naming it", missing, err, out)
		}
	}
	cmd := exec.Command(compose, "-f", "../docker-compose.yml", "config")
	cmd.Env = composeEnv(composeSecrets)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	resolved := string(out)
	redis := resolved[strings.Index(resolved, "\n  redis:"):]
	for _, want := range []string{"--requirepass", "--maxmemory", "noeviction", "--client-output-buffer-limit", "pubsub 256mb 128mb 60"} {
		if !strings.Contains(redis, want) {
			t.Errorf("compose Redis lacks %q", want)
		}
	}
	if strings.Contains(redis, "ports:") {
		t.Error("compose Redis publishes a port")
	}
	for _, want := range []string{"JWT_SECRET: " + composeSecrets["JWT_SECRET"], "SERVER_API_KEY: api-key", "METRICS_ADDR: 0.0.0.0:9090",
		"REDIS_URL: redis://:" + composeSecrets["REDIS_PASSWORD"] + "@redis:6379/0"} {
		if strings.Count(resolved, want) != 2 {
			t.Errorf("both nodes should have %q", want)
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
	dir := t.TempDir()
	accessLog := filepath.Join(dir, "access.log")
	local = strings.Replace(local, "/var/log/nginx/access.log", accessLog, 1)
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

	// Tickets in the query string stay out of the access log.
	c := wstest.Open(t, wstest.WSURL(lb)+"?token=secret-ticket-value")
	c.Close()
	var logged []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		logged, _ = os.ReadFile(accessLog)
		if strings.Count(string(logged), "/websockets") >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(string(logged), "GET /websockets HTTP/1.1") {
		t.Fatalf("access log does not show the WebSocket requests:\n%s", logged)
	}
	if strings.Contains(string(logged), "secret-ticket-value") {
		t.Errorf("access log records the ticket:\n%s", logged)
	}
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
