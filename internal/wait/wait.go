// Package wait polls a condition until it holds, for tests and for the
// harness that starts processes. It does not import testing: For takes
// the small TB interface, which *testing.T satisfies.
package wait

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Interval is how often For polls.
const Interval = 20 * time.Millisecond

// abort marks an error that ends Until at once.
type abort struct{ err error }

func (a abort) Error() string { return a.err.Error() }
func (a abort) Unwrap() error { return a.err }

// Abort wraps err so that Until returns it at once instead of polling
// again: for a condition that can no longer come true (the process being
// waited for has exited).
func Abort(err error) error { return abort{err} }

// Until calls cond at once and then every interval until it returns nil,
// returns an error made with Abort, or ctx ends. It returns nil, the
// aborting error (unwrapped), or ctx's error joined with the last error
// cond returned.
func Until(ctx context.Context, interval time.Duration, cond func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if a, ok := err.(abort); ok {
			return a.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Sleep waits for d or until ctx ends, returning ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TB is the part of testing.TB that For uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// errNotYet is what a false condition of For reports to Until.
var errNotYet = errors.New("condition not met")

// For polls cond every Interval until it reports true, and fails t with
// "<what>: not within <timeout>" if it has not after timeout.
func For(t TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := Until(ctx, Interval, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
