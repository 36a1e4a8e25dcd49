package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestBackoffCeiling(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	cases := []struct {
		n    int
		want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{1000, time.Second},
	}
	for _, tc := range cases {
		if got := b.Ceiling(tc.n); got != tc.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if got := (Backoff{}).Ceiling(100); got != 30*time.Second {
		t.Errorf("default Ceiling(100) = %v, want 30s", got)
	}
}

// TestRetrierDelays drives the delay policy with an injected random
// source and connection lifetimes (the clock): delays are the draw times
// a doubling ceiling, bounded by Max, reset after a stable connection, and
// stretched to a 1013 hint.
func TestRetrierDelays(t *testing.T) {
	busy := websocket.CloseError{Code: websocket.StatusTryAgainLater, Reason: "server busy, retryAfterMs=1500"}
	lost := errors.New("connection reset")
	type step struct {
		draw  float64
		err   error
		lived time.Duration
		want  time.Duration
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"ceiling doubles up to max", []step{
			{0.5, lost, 0, 50 * time.Millisecond},
			{0.5, lost, 0, 100 * time.Millisecond},
			{0.5, lost, 0, 200 * time.Millisecond},
			{0.5, lost, 0, 400 * time.Millisecond},
			{0.5, lost, 0, 500 * time.Millisecond},
			{0.5, lost, 0, 500 * time.Millisecond},
		}},
		{"full jitter reaches zero and stays under the ceiling", []step{
			{0, lost, 0, 0},
			{0.999, lost, 0, 199800 * time.Microsecond},
		}},
		{"a short-lived connection keeps climbing", []step{
			{1, lost, 0, 100 * time.Millisecond},
			{1, lost, 4 * time.Second, 200 * time.Millisecond},
		}},
		{"a stable connection resets", []step{
			{1, lost, 0, 100 * time.Millisecond},
			{1, lost, 0, 200 * time.Millisecond},
			{1, lost, 5 * time.Second, 100 * time.Millisecond},
		}},
		{"1013 hint is a floor", []step{
			{0, busy, 0, 1500 * time.Millisecond},
			{1, fmt.Errorf("client: connection ended: %w", busy), 0, 1500 * time.Millisecond},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRetrier(Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Stable: 5 * time.Second})
			for i, s := range tc.steps {
				r.rand = func() float64 { return s.draw }
				if got := r.next(s.err, s.lived); got != s.want {
					t.Fatalf("step %d: delay %v, want %v", i, got, s.want)
				}
				if s.err == lost && r.b.Max < s.want {
					t.Fatalf("step %d: delay %v above Max", i, s.want)
				}
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		want   time.Duration
		wantOK bool
	}{
		{"hint", websocket.CloseError{Code: 1013, Reason: "retryAfterMs=250"}, 250 * time.Millisecond, true},
		{"hint inside text", websocket.CloseError{Code: 1013, Reason: "overloaded (retryAfterMs=2000), try again"}, 2 * time.Second, true},
		{"wrapped", fmt.Errorf("x: %w", websocket.CloseError{Code: 1013, Reason: "retryAfterMs=7"}), 7 * time.Millisecond, true},
		{"no hint", websocket.CloseError{Code: 1013, Reason: "cannot check ticket now, try again"}, 0, false},
		{"not a number", websocket.CloseError{Code: 1013, Reason: "retryAfterMs=soon"}, 0, false},
		{"negative", websocket.CloseError{Code: 1013, Reason: "retryAfterMs=-5"}, 0, false},
		{"other code", websocket.CloseError{Code: 1012, Reason: "retryAfterMs=250"}, 0, false},
		{"not a close", errors.New("retryAfterMs=250"), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RetryAfter(tc.err)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("RetryAfter = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"closed by us", ErrClosed, true},
		{"ticket refused", fmt.Errorf("x: %w", websocket.CloseError{Code: 1008, Reason: "ticket already used"}), true},
		{"slow", websocket.CloseError{Code: 1008, Reason: "connection too slow to keep up with messages"}, false},
		{"rate limit", websocket.CloseError{Code: 1008, Reason: "rate limit exceeded"}, false},
		{"shutdown", websocket.CloseError{Code: 1001, Reason: "server shutting down"}, false},
		{"resync", websocket.CloseError{Code: 1012, Reason: "messages were missed"}, false},
		{"try later", websocket.CloseError{Code: 1013, Reason: "retryAfterMs=5"}, false},
		{"forbidden origin", &HandshakeError{StatusCode: 403, Err: errors.New("x")}, true},
		{"bad gateway", &HandshakeError{StatusCode: 502, Err: errors.New("x")}, false},
		{"network", errors.New("connection refused"), false},
	}
	for _, tc := range cases {
		if got := terminal(tc.err); got != tc.want {
			t.Errorf("%s: terminal = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCompareIDs(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0},
		{"9-0", "10-0", -1},
		{"10-2", "10-10", -1},
		{"1662747165904-1", "1662747165904-0", 1},
		{"b", "ab", -1},
		{"ab", "ac", -1},
	}
	for _, tc := range cases {
		got := CompareIDs(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("CompareIDs(%q, %q) = %d, want sign of %d", tc.a, tc.b, got, tc.want)
		}
	}
}
