package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStuckBackendDoesNotBlockOthers: one connection's webhook stuck on a
// slow backend path leaves another connection's webhook unaffected, and
// with every slot taken a second call fails at its own timeout.
func TestStuckBackendDoesNotBlockOthers(t *testing.T) {
	t.Run("a free slot serves others", func(t *testing.T) {
		b, release := stuckBackend(t)
		c, _ := newClient(t, b.URL, Options{MaxInFlight: 2, Timeout: 5 * time.Second})
		t.Cleanup(func() { close(release) }) // before c is closed
		stuck := make(chan error, 1)
		go func() {
			_, err := c.Connect(context.Background(), ConnectEvent{Connection: "stuck-1"})
			stuck <- err
		}()
		waitInFlight(t, c, 1)
		start := time.Now()
		if _, err := c.Connect(context.Background(), ConnectEvent{Connection: "fast-1"}); err != nil {
			t.Fatalf("fast Connect: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("fast Connect took %v behind a stuck one", d)
		}
		select {
		case err := <-stuck:
			t.Fatalf("stuck Connect returned early: %v", err)
		default:
		}
	})

	t.Run("no slot: timeout at own deadline", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		b, release := stuckBackend(t)
		c, reg := newClient(t, b.URL, Options{MaxInFlight: 1, Timeout: 5 * time.Second})
		t.Cleanup(func() { close(release) })
		stuckCtx, cancelStuck := context.WithCancel(context.Background())
		stuck := make(chan error, 1)
		go func() {
			_, err := c.Connect(stuckCtx, ConnectEvent{Connection: "stuck-2"})
			stuck <- err
		}()
		waitInFlight(t, c, 1)
		b.next(t)

		// The caller's deadline is shorter than Timeout here, so that the
		// stuck call certainly still holds the only slot when it passes.
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		_, err := c.Connect(ctx, ConnectEvent{Connection: "fast-2"})
		d := time.Since(start)
		var werr *Error
		if !errors.As(err, &werr) || werr.Reason != ReasonTimeout {
			t.Fatalf("second Connect = %v, want a timeout", err)
		}
		if d < timeout-50*time.Millisecond || d > timeout+time.Second {
			t.Fatalf("second Connect returned after %v, want about %v", d, timeout)
		}
		select {
		case r := <-b.got:
			t.Fatalf("backend received %s without a free slot", r.Body)
		default:
		}
		cancelStuck()
		if err := <-stuck; !errors.As(err, &werr) || werr.Reason != ReasonCanceled {
			t.Fatalf("stuck Connect = %v, want canceled", err)
		}
		if got := metricValue(t, reg, "switchboard_webhook_failures_total", "event", "connect", "reason", ReasonTimeout); got != 1 {
			t.Fatalf("timeouts metric %v, want 1", got)
		}
	})
}

// stuckBackend returns a backend that hangs on connection ids starting
// with "stuck" until release is closed, and accepts the others at once.
func stuckBackend(t *testing.T) (*backend, chan struct{}) {
	release := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, body string) {
		if strings.HasPrefix(body, `{"connection":"stuck`) {
			hang(release)(w, r, body)
			return
		}
		_, _ = io.WriteString(w, `{"code":"OK"}`)
	})
	return b, release
}

// waitInFlight waits until n requests hold a slot.
func waitInFlight(t *testing.T, c *Client, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(c.slots) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in flight, want %d", len(c.slots), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseDeadBackend: Close is bounded by its context on a backend that
// never answers, stops retries of undelivered DELETEs, reports them, and
// refuses calls made afterwards.
func TestCloseDeadBackend(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := newBackend(t, hang(release))
	failing := newBackend(t, reply(503, ""))

	cases := []struct {
		name    string
		url     string
		wantErr error // from Close
	}{
		// A request in flight on a hung backend: Close gives up at its
		// deadline and aborts it.
		{"request in flight", hung.URL, context.DeadlineExceeded},
		// A DELETE waiting to retry: Close stops the wait at once.
		{"retry waiting", failing.URL, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lost undeliveredLog
			c, err := New(Options{URL: tc.url, Secret: testSecret, Timeout: time.Minute,
				Retry: RetryPolicy{Initial: time.Minute}, OnUndelivered: lost.add})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			c.DisconnectAsync(DisconnectEvent{Connection: "c1"}, func(err error) { done <- err })
			waitRequests(t, tc.url, hung, failing)

			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = c.Close(ctx)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("Close took %v", d)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Close = %v, want %v", err, tc.wantErr)
			}
			var werr *Error
			if err := <-done; !errors.As(err, &werr) || werr.Reason != ReasonClosed {
				t.Fatalf("DELETE = %v, want reason closed", err)
			}
			if lost.count() != 1 {
				t.Fatalf("%d undelivered reported, want 1", lost.count())
			}
			if _, err := c.Connect(context.Background(), ConnectEvent{Connection: "c2"}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Connect after Close = %v, want ErrClosed", err)
			}
			if err := c.Disconnect(context.Background(), DisconnectEvent{Connection: "c3"}); !errors.Is(err, ErrClosed) || lost.count() != 2 {
				t.Fatalf("Disconnect after Close = %v (%d undelivered), want ErrClosed reported", err, lost.count())
			}
		})
	}
}

// waitRequests waits until the backend at url has received a request.
func waitRequests(t *testing.T, url string, backends ...*backend) {
	t.Helper()
	for _, b := range backends {
		if b.URL == url {
			b.next(t)
			return
		}
	}
	t.Fatalf("no backend at %s", url)
}
