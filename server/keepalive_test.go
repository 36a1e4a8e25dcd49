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

// TestUnanswered: a ping is settled by a pong after it, or by the reader
// having left Read since before it; it proves nothing yet otherwise.
func TestUnanswered(t *testing.T) {
	const sent = int64(time.Hour)
	for _, tc := range []struct {
		name        string
		since, pong int64
		want        bool
	}{
		{"in Read since before the ping, no pong", sent - 1, 0, true},
		{"in Read since before the ping, an older pong", sent - 1, sent - 2, true},
		{"a pong after the ping", sent - 1, sent + 1, false},
		{"out of Read now", notReading, 0, false},
		{"back in Read after the ping: a frame was read", sent + 1, 0, false},
	} {
		m := &readMark{start: time.Now().Add(-2 * time.Hour)}
		m.since.Store(tc.since)
		m.pong.Store(tc.pong)
		if got := m.unanswered(sent); got != tc.want {
			t.Errorf("%s: unanswered = %v, want %v", tc.name, got, tc.want)
		}
	}
}
