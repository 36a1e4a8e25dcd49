package channels

import (
	"container/list"
	"context"
	"sync"
)

// ReplayBudget is a node-wide budget of bytes that resumes hold in memory
// while they replay history: each page is read only once its bytes are
// granted and returned once it is queued to the client. Waiters are served
// in arrival order, so a large page is not starved by smaller ones.
type ReplayBudget struct {
	mu      sync.Mutex
	size    int
	used    int
	waiters list.List // of *budgetWaiter, oldest first
}

type budgetWaiter struct {
	n     int
	ready chan struct{} // closed once the bytes are granted
}

// NewReplayBudget returns a budget of size bytes.
func NewReplayBudget(size int) *ReplayBudget { return &ReplayBudget{size: size} }

// Acquire waits until n bytes are free, or ctx ends, and takes them. A
// request larger than the whole budget takes the whole budget. It returns
// how many bytes it took, which the caller gives back with Release.
func (b *ReplayBudget) Acquire(ctx context.Context, n int) (int, error) {
	n = min(max(n, 0), b.size)
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.used+n <= b.size {
		b.used += n
		b.mu.Unlock()
		return n, nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted as we gave up: give it back.
			b.used -= n
		default:
			b.waiters.Remove(elem)
		}
		b.grantLocked()
		b.mu.Unlock()
		return 0, ctx.Err()
	}
}

// Release gives back n bytes taken by Acquire.
func (b *ReplayBudget) Release(n int) {
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("channels: ReplayBudget released more than it granted")
	}
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked wakes the waiters at the head of the queue that now fit.
func (b *ReplayBudget) grantLocked() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.size {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}

// InUse reports how many bytes are taken now.
func (b *ReplayBudget) InUse() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Size reports the whole budget.
func (b *ReplayBudget) Size() int { return b.size }
