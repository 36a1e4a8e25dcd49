package server

import (
	"context"
	"sync"
)

// sendQueue holds the frames waiting for one connection's writer, bounded
// by their total size: a burst of many small frames fits, a client that
// stops reading does not pin unbounded memory. Frames count against the
// bound until they are written.
//
// The writer runs on demand: the push that finds no writer running calls
// startWriter, and the writer ends once it finds the queue empty (next),
// so an idle connection has no writer goroutine. kick starts one without
// a frame, to carry out a close request.
//
// A send (trySend, push) that finds the queue empty and no writer running
// first offers the frame to writeNow, which sends it from the pushing goroutine if the
// socket takes it at once: most frames of a connection that keeps up then
// leave with one system call and no goroutine at all. Only what the
// socket does not take goes through the queue and a writer, so a slow
// client still never holds the pusher up.
type sendQueue struct {
	maxBytes    int
	space       chan struct{}        // a frame was written (capacity 1)
	startWriter func()               // starts a writer goroutine
	writeNow    func([]byte) trySend // sends a frame without blocking; nil: never

	mu      sync.Mutex
	frames  [][]byte
	bytes   int
	writing bool // a writer runs, was started, or a frame is being sent now; cleared only by next and sendNow
	// wanted is set when a writer was asked for (a kick, a queued frame)
	// while a frame was being sent now: the sender starts one after.
	wanted bool
}

func newSendQueue(maxBytes int, startWriter func(), writeNow func([]byte) trySend) *sendQueue {
	return &sendQueue{maxBytes: maxBytes, space: make(chan struct{}, 1), startWriter: startWriter, writeNow: writeNow}
}

// wakeLocked marks the writer running and reports whether the caller must
// start it. Caller holds mu.
func (q *sendQueue) wakeLocked() bool {
	if q.writing {
		q.wanted = true
		return false
	}
	q.writing = true
	return true
}

// kick starts a writer if none runs, so that it sees a close request.
func (q *sendQueue) kick() {
	q.mu.Lock()
	start := q.wakeLocked()
	q.mu.Unlock()
	if start {
		q.startWriter()
	}
}

// next is the writer's request for work: every queued frame, oldest
// first (left counted until done is called for each); else closing=true
// when stop is closed (the writer goes on to carry out the close, and no
// other writer starts); else nothing, and the writer must end: the next
// push starts another.
func (q *sendQueue) next(stop <-chan struct{}) (frames [][]byte, closing bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) > 0 {
		frames = q.frames
		q.frames = nil
		return frames, false
	}
	select {
	case <-stop:
		return nil, true
	default:
	}
	q.writing, q.wanted = false, false
	return nil, false
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
	start := q.wakeLocked()
	q.mu.Unlock()
	if start {
		q.startWriter()
	}
	return true
}

// trySend sends frame at once if no writer runs and the socket takes it
// (sendNow); else it queues it as tryPush does.
func (q *sendQueue) trySend(frame []byte) bool {
	q.mu.Lock()
	if !q.writing && q.writeNow != nil {
		return q.sendNow(frame) // unlocks mu
	}
	q.mu.Unlock()
	return q.tryPush(frame)
}

// sendNow offers frame to writeNow while the writer is idle, and queues
// it if the socket did not take it; a writer is started if anything is
// left to do afterwards. Called with mu held (the queue is empty, no
// writer runs); it unlocks mu.
func (q *sendQueue) sendNow(frame []byte) bool {
	q.writing = true // no writer starts, and nobody else sends now, meanwhile
	q.mu.Unlock()
	res := q.writeNow(frame)
	q.mu.Lock()
	if res == tryRefused {
		// Queued first: frames pushed meanwhile came after this one.
		q.frames = append([][]byte{frame}, q.frames...)
		q.bytes += len(frame)
	}
	q.settle(res != tryPartial)
	return true
}

// sendControl has send write a frame the queue does not hold (a ping) at
// once, if no writer runs; it reports whether the frame left (in whole,
// or in part with the rest left to a writer).
func (q *sendQueue) sendControl(send func() trySend) bool {
	q.mu.Lock()
	if q.writing {
		q.mu.Unlock()
		return false
	}
	q.writing = true
	q.mu.Unlock()
	res := send()
	q.mu.Lock()
	q.settle(res != tryPartial)
	return res != tryRefused
}

// settle ends a send made with writing set: the writer stays idle if
// nothing is left pending (done) and nothing was queued or asked for
// meanwhile; else a writer starts. Called with mu held; it unlocks mu.
func (q *sendQueue) settle(done bool) {
	if done && len(q.frames) == 0 && !q.wanted {
		q.writing = false
		q.mu.Unlock()
		return
	}
	q.wanted = false
	q.mu.Unlock()
	q.startWriter()
}

// pushAll queues frames whatever the bound; the caller bounds them (the
// greeting and what arrived before it, once).
func (q *sendQueue) pushAll(frames [][]byte) {
	q.mu.Lock()
	for _, f := range frames {
		q.frames = append(q.frames, f)
		q.bytes += len(f)
	}
	start := q.wakeLocked()
	q.mu.Unlock()
	if start {
		q.startWriter()
	}
}

// push queues a frame, waiting for room until ctx or stop ends. Only one
// goroutine may wait in push at a time (the connection's worker, the only
// caller of Send): space wakes one waiter.
func (q *sendQueue) push(ctx context.Context, stop <-chan struct{}, frame []byte) error {
	for !q.trySend(frame) {
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
