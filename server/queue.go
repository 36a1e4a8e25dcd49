package server

import (
	"context"
	"sync"
)

// sendQueue holds the frames waiting for one connection's writer, bounded
// by their total size: a burst of many small frames fits, a client that
// stops reading does not pin unbounded memory. Frames count against the
// bound until they are written.
type sendQueue struct {
	maxBytes int
	ready    chan struct{} // a frame was queued (capacity 1)
	space    chan struct{} // a frame was written (capacity 1)

	mu     sync.Mutex
	frames [][]byte
	bytes  int
}

func newSendQueue(maxBytes int) *sendQueue {
	return &sendQueue{maxBytes: maxBytes, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// tryPush queues a frame unless that would pass the bound. An empty queue
// always takes one frame, however large, so no frame is refused for its
// size alone.
func (q *sendQueue) tryPush(frame []byte) bool {
	q.mu.Lock()
	if len(q.frames) > 0 && q.bytes+len(frame) > q.maxBytes {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, frame)
	q.bytes += len(frame)
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// pushAll queues frames whatever the bound; the caller bounds them (the
// greeting and what arrived before it, once).
func (q *sendQueue) pushAll(frames [][]byte) {
	q.mu.Lock()
	for _, f := range frames {
		q.frames = append(q.frames, f)
		q.bytes += len(f)
	}
	q.mu.Unlock()
	signal(q.ready)
}

// push queues a frame, waiting for room until ctx or stop ends. Only one
// goroutine may wait in push at a time (the connection's worker, the only
// caller of Send): space wakes one waiter.
func (q *sendQueue) push(ctx context.Context, stop <-chan struct{}, frame []byte) error {
	for !q.tryPush(frame) {
		select {
		case <-q.space:
		case <-stop:
			return errConnClosing
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// take returns every queued frame, oldest first, leaving them counted
// until done is called for each.
func (q *sendQueue) take() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	frames := q.frames
	q.frames = nil
	return frames
}

// done releases a written frame's share of the bound.
func (q *sendQueue) done(frame []byte) {
	q.mu.Lock()
	q.bytes -= len(frame)
	q.mu.Unlock()
	signal(q.space)
}

// drop discards every frame not yet taken by the writer, releasing their
// share of the bound; frames already taken are released by done as usual.
func (q *sendQueue) drop() {
	q.mu.Lock()
	for _, f := range q.frames {
		q.bytes -= len(f)
	}
	q.frames = nil
	q.mu.Unlock()
}

// size reports the queued bytes.
func (q *sendQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
