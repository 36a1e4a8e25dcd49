package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var fastRetry = RetryPolicy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}

// undeliveredLog collects the events passed to OnUndelivered.
type undeliveredLog struct {
	mu  sync.Mutex
	evs []DisconnectEvent
}

func (u *undeliveredLog) add(ev DisconnectEvent, _ error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.evs = append(u.evs, ev)
}

func (u *undeliveredLog) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.evs)
}

func TestDisconnectRetriedUntilBackendRecovers(t *testing.T) {
	var calls atomic.Int32
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, body string) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	var lost undeliveredLog
	c, reg := newClient(t, b.URL, Options{Retry: fastRetry, OnUndelivered: lost.add})
	ev := DisconnectEvent{Connection: "c42", User: "alice", Code: 1000, Reason: "bye", Node: "n1"}
	if err := c.Disconnect(context.Background(), ev); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	want, _ := json.Marshal(ev)
	for i := range 4 {
		req := b.next(t)
		if req.Method != http.MethodDelete || req.SigErr != nil {
			t.Errorf("attempt %d: method %s, signature %v", i, req.Method, req.SigErr)
		}
		if got := req.Header.Get(IdempotencyHeader); got != "c42" {
			t.Errorf("attempt %d: Idempotency-Key %q, want c42", i, got)
		}
		if req.Body != string(want) {
			t.Errorf("attempt %d: body %s, want %s", i, req.Body, want)
		}
	}
	if n := calls.Load(); n != 4 {
		t.Errorf("%d attempts, want 4", n)
	}
	if got := metricValue(t, reg, "switchboard_webhook_retries_total", "event", "disconnect"); got != 3 {
		t.Errorf("retries metric %v, want 3", got)
	}
	if got := metricValue(t, reg, "switchboard_webhook_failures_total", "event", "disconnect", "reason", ReasonStatus); got != 3 {
		t.Errorf("failures metric %v, want 3", got)
	}
	if got := metricValue(t, reg, "switchboard_webhook_seconds", "event", "disconnect", "outcome", "ok"); got != 1 {
		t.Errorf("latency samples ok %v, want 1", got)
	}
	if got := metricValue(t, reg, "switchboard_webhook_seconds", "event", "disconnect", "outcome", ReasonStatus); got != 3 {
		t.Errorf("latency samples status %v, want 3", got)
	}
	if lost.count() != 0 {
		t.Errorf("%d undelivered, want 0", lost.count())
	}
}

func TestDisconnectGivesUp(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		wantCalls int32
	}{
		{"permanent error is not retried", http.StatusBadRequest, 1},
		{"retry bound", http.StatusInternalServerError, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			b := newBackend(t, func(w http.ResponseWriter, _ *http.Request, _ string) {
				calls.Add(1)
				w.WriteHeader(tc.status)
			})
			var lost undeliveredLog
			retry := fastRetry
			retry.MaxAttempts = 4
			c, reg := newClient(t, b.URL, Options{Retry: retry, OnUndelivered: lost.add})
			err := c.Disconnect(context.Background(), DisconnectEvent{Connection: "c1"})
			var werr *Error
			if !errors.As(err, &werr) || werr.Reason != ReasonStatus || werr.Status != tc.status {
				t.Fatalf("Disconnect = %v, want status %d", err, tc.status)
			}
			if n := calls.Load(); n != tc.wantCalls {
				t.Errorf("%d attempts, want %d", n, tc.wantCalls)
			}
			if m := metricValue(t, reg, "switchboard_webhook_disconnect_undelivered_total"); lost.count() != 1 || m != 1 {
				t.Errorf("undelivered %d / metric %v, want 1", lost.count(), m)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := RetryPolicy{Initial: 100 * time.Millisecond, Max: time.Second}.withDefaults()
	cases := []struct {
		n      int
		lo, hi time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second},
		{30, 500 * time.Millisecond, time.Second},
	}
	for _, tc := range cases {
		for range 50 {
			if d := p.backoff(tc.n); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.n, d, tc.lo, tc.hi)
			}
		}
	}
}
