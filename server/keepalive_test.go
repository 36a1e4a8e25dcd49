package server

import (
	"context"
	"testing"
	"time"
)

func TestKeepAliveTiming(t *testing.T) {
	for _, tc := range []struct {
		wsTimeout, pingAfter, pongWait time.Duration
	}{
		{2 * time.Second, time.Second, time.Second},
		{20 * time.Second, 10 * time.Second, 10 * time.Second},
		{30 * time.Second, 20 * time.Second, 10 * time.Second},
		{60 * time.Second, 50 * time.Second, 10 * time.Second},
		{10 * time.Minute, 590 * time.Second, 10 * time.Second},
	} {
		pingAfter, pongWait := keepAliveTiming(tc.wsTimeout)
		if pingAfter != tc.pingAfter || pongWait != tc.pongWait {
			t.Errorf("WS_TIMEOUT %s: ping after %s, pong wait %s; want %s and %s",
				tc.wsTimeout, pingAfter, pongWait, tc.pingAfter, tc.pongWait)
		}
	}
}

// TestReadMarkSilence: silence runs from the later of entering Read and
// the last pong, and is not measured while the reader is out of Read.
func TestReadMarkSilence(t *testing.T) {
	m := &readMark{start: time.Now().Add(-time.Hour)} // a connection an hour old
	if _, reading := m.silentFor(); reading {
		t.Fatal("a reader that never entered Read counts as reading")
	}
	m.since.Store(m.now() - int64(time.Minute))
	if quiet, reading := m.silentFor(); !reading || quiet < time.Minute {
		t.Fatalf("silent for %s (reading %v), want at least a minute", quiet, reading)
	}
	m.heard(context.Background(), nil)
	if quiet, _ := m.silentFor(); quiet >= time.Minute {
		t.Fatalf("a pong left the peer silent for %s", quiet)
	}
	m.leave()
	if _, reading := m.silentFor(); reading {
		t.Fatal("a reader out of Read counts as reading")
	}
}
