package wait

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	errBroken := errors.New("broken")
	tests := []struct {
		name    string
		results []error // what cond returns on each call; the last repeats
		timeout time.Duration
		wantErr error // nil: success
		calls   int   // exact number of calls, when the result allows it
	}{
		{name: "true at once", results: []error{nil}, timeout: time.Second, calls: 1},
		{name: "true on the third call", results: []error{errNotYet, errNotYet, nil}, timeout: 10 * time.Second, calls: 3},
		{name: "abort stops polling", results: []error{errNotYet, Abort(errBroken)}, timeout: 10 * time.Second, wantErr: errBroken, calls: 2},
		{name: "never true", results: []error{errNotYet}, timeout: 50 * time.Millisecond, wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			calls := 0
			err := Until(ctx, time.Millisecond, func() error {
				r := tt.results[min(calls, len(tt.results)-1)]
				calls++
				return r
			})
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Until = %v, want %v", err, tt.wantErr)
			}
			if tt.calls != 0 && calls != tt.calls {
				t.Errorf("cond called %d times, want %d", calls, tt.calls)
			}
			if errors.Is(tt.wantErr, context.DeadlineExceeded) && !errors.Is(err, errNotYet) {
				t.Errorf("Until = %v, want it to carry the last condition error too", err)
			}
		})
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
}

// fakeTB records Fatalf, ending the goroutine like testing.T does.
type fakeTB struct{ msg string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestFor(t *testing.T) {
	tests := []struct {
		name     string
		trueFrom int // cond is true from this call on; 0: never
		wantFail bool
	}{
		{name: "holds", trueFrom: 1},
		{name: "comes true", trueFrom: 4},
		{name: "never", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{}
			done := make(chan struct{})
			go func() {
				defer close(done)
				calls := 0
				For(f, 100*time.Millisecond, "the thing", func() bool {
					calls++
					return tt.trueFrom > 0 && calls >= tt.trueFrom
				})
			}()
			<-done
			if failed := f.msg != ""; failed != tt.wantFail {
				t.Fatalf("failed = %v (%q), want %v", failed, f.msg, tt.wantFail)
			}
			if tt.wantFail && !strings.Contains(f.msg, "the thing: not within 100ms") {
				t.Errorf("message %q does not say what was awaited and for how long", f.msg)
			}
		})
	}
}
