package e2e

import (
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// TestAdmissionIsPaced: while ADMIT_CONCURRENCY connections are being
// admitted (here one, stuck subscribing while Redis is stopped), a new
// connection waits ADMIT_WAIT at most, then is closed with 1013 and a
// jittered retryAfterMs hint; once admission moves again, it gets in.
func TestAdmissionIsPaced(t *testing.T) {
	d, srv := singleRedis(t)
	n := d.nodes(t, 1, map[string]string{"ADMIT_CONCURRENCY": "1", "ADMIT_WAIT": "200ms", "OP_TIMEOUT": "10s"})[0]
	pid := srv.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)

	first := wstest.Dial(t, n.WS()+"?user=first") // its inbox subscription waits for Redis
	wait.For(t, converge, "the first connection holds the admission slot", func() bool { return n.Server.Admitting() == 1 })
	start := time.Now()
	second := wstest.Dial(t, n.WS()+"?user=second")
	code, reason := second.ExpectClose()
	waited := time.Since(start)
	if code != websocket.StatusTryAgainLater {
		t.Fatalf("second connection closed with %d %q, want 1013", code, reason)
	}
	m := regexp.MustCompile(`^server busy; retryAfterMs=(\d+)$`).FindStringSubmatch(reason)
	if m == nil {
		t.Fatalf("close reason %q has no retry hint", reason)
	}
	if after, _ := strconv.Atoi(m[1]); after < 200 || after > 800 {
		t.Errorf("retry hint %d ms, want between one and four ADMIT_WAITs (200–800)", after)
	}
	if waited > 5*time.Second {
		t.Errorf("refusal took %v: the wait is not bounded", waited)
	}

	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	first.Expect(protocol.ChannelSession, protocol.TypeAuthenticated)
	again := wstest.Open(t, n.WS()+"?user=second")
	again.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "in")
	again.Expect(protocol.ChannelChat, protocol.TypeNewMessageReceived)
}
