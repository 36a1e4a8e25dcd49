package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

func TestMetricsCountWhatHappened(t *testing.T) {
	n := startNode(t, map[string]string{"MAX_FRAME_BYTES": "1024"})
	a := wstest.Open(t, n.WS())
	a.Send("chat", "SubmitMessage", "counted")
	a.Expect("chat", "NewMessageReceived")
	a.SendRaw(`{"channel":"nope","message":{"type":"X"}}`)
	a.ExpectError("error", protocol.CodeUnknownChannel)
	big := wstest.Open(t, n.WS())
	big.SendRaw(`{"channel":"chat","message":{"type":"SubmitMessage","contents":"` + strings.Repeat("x", 2000) + `"}}`)
	big.ExpectClose()

	wants := []string{
		"switchboard_connections 1",
		"switchboard_connections_opened_total 2",
		`switchboard_connections_closed_total{reason="too_big"} 1`,
		`switchboard_frames_received_total{channel="chat"} 1`,
		`switchboard_frames_received_total{channel="unknown"} 1`,
		`switchboard_client_errors_total{code="unknown_channel"} 1`,
		"switchboard_frames_sent_total 4", // two greetings, the chat message, the error
		`switchboard_broker_operation_seconds_count{op="publish_history",result="ok"} 1`,
		"switchboard_subscriptions 4", // chat, ping, the node's control topic and the connection's inbox
	}
	// The closed connection is counted once its goroutine has finished,
	// which may be just after the client saw the close frame.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := wait.Until(ctx, wait.Interval, func() error {
		status, body := n.Do(t, http.MethodGet, "/metrics", "", nil)
		if status != http.StatusOK {
			t.Fatalf("GET /metrics = %d", status)
		}
		var missing []string
		for _, want := range wants {
			if !strings.Contains(body, want+"\n") {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("metrics lack %q", missing)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMetricsNeedTheAPIKeyWhenSet(t *testing.T) {
	n := startNode(t, map[string]string{"SERVER_API_KEY": "k"})
	if status, _ := n.Do(t, http.MethodGet, "/metrics", "", nil); status != http.StatusUnauthorized {
		t.Errorf("GET /metrics without key = %d, want 401", status)
	}
	if status, _ := n.Do(t, http.MethodGet, "/metrics", "", http.Header{"Authorization": {"Bearer k"}}); status != http.StatusOK {
		t.Errorf("GET /metrics with key = %d, want 200", status)
	}
}

// metricValue reads one unlabelled metric from a /metrics body.
func metricValue(t *testing.T, body, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("metrics lack %s", name)
	return 0
}

// TestFramesAreSentAtOnce: a client that reads gets its frames written by
// whoever produced them (the broadcast, the reply), not by a writer
// goroutine, and the metrics say so. Some may still go through the
// writer (one that is just ending, say), so the test asks for most, not
// all.
func TestFramesAreSentAtOnce(t *testing.T) {
	n := startNode(t, nil)
	a := wstest.Open(t, n.WS())
	const rounds = 10
	for i := range rounds {
		chatRoundTrip(t, a, fmt.Sprint("round ", i))
	}
	status, body := n.Do(t, http.MethodGet, "/metrics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", status)
	}
	sent := metricValue(t, body, "switchboard_frames_sent_total")
	atOnce := metricValue(t, body, "switchboard_frames_sent_at_once_total")
	t.Logf("%v of %v frames sent at once", atOnce, sent)
	if atOnce < rounds/2 || atOnce > sent {
		t.Errorf("%v of %v frames sent at once, want at least %d of the %d chat messages", atOnce, sent, rounds/2, rounds)
	}
}
