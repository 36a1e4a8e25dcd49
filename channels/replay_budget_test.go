package channels

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReplayBudget(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, b *ReplayBudget)
	}{
		{"grants what fits at once", func(t *testing.T, b *ReplayBudget) {
			if n, err := b.Acquire(ctx, 60); n != 60 || err != nil {
				t.Fatalf("Acquire(60) = %d, %v", n, err)
			}
			if n, err := b.Acquire(ctx, 40); n != 40 || err != nil {
				t.Fatalf("Acquire(40) = %d, %v", n, err)
			}
			if b.InUse() != 100 {
				t.Fatalf("in use %d, want 100", b.InUse())
			}
		}},
		{"caps a request at the whole budget", func(t *testing.T, b *ReplayBudget) {
			if n, err := b.Acquire(ctx, 500); n != 100 || err != nil {
				t.Fatalf("Acquire(500) = %d, %v, want the whole 100", n, err)
			}
			b.Release(100)
			if b.InUse() != 0 {
				t.Fatalf("in use %d after release", b.InUse())
			}
		}},
		{"waits for release, first come first served", func(t *testing.T, b *ReplayBudget) {
			_, _ = b.Acquire(ctx, 90)
			big, small := make(chan int, 1), make(chan int, 1)
			go func() { n, _ := b.Acquire(ctx, 50); big <- n }()
			waitFor(t, func() bool { return waiting(b) == 1 })
			go func() { n, _ := b.Acquire(ctx, 5); small <- n }()
			waitFor(t, func() bool { return waiting(b) == 2 })
			// 5 would fit now, but the 50 asked first.
			select {
			case <-small:
				t.Fatal("a later small request overtook a waiting larger one")
			case <-time.After(50 * time.Millisecond):
			}
			b.Release(90)
			if <-big != 50 || <-small != 5 || b.InUse() != 55 {
				t.Fatalf("in use %d after both were granted, want 55", b.InUse())
			}
		}},
		{"a cancelled wait takes nothing and unblocks the queue", func(t *testing.T, b *ReplayBudget) {
			_, _ = b.Acquire(ctx, 90)
			cctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { _, err := b.Acquire(cctx, 50); errc <- err }()
			waitFor(t, func() bool { return waiting(b) == 1 })
			next := make(chan int, 1)
			go func() { n, _ := b.Acquire(ctx, 10); next <- n }()
			waitFor(t, func() bool { return waiting(b) == 2 })
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Acquire: %v", err)
			}
			if <-next != 10 || b.InUse() != 100 {
				t.Fatalf("in use %d, want 100", b.InUse())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, NewReplayBudget(100)) })
	}
}

func waiting(b *ReplayBudget) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.Len()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
