package server

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"
)

// admission paces how many connections are being admitted at once
// (authenticated and subscribed: the part of a connection's life that
// costs broker round trips). In a connect storm — every client of a
// drained neighbour arriving together — a connection that finds no slot
// within the wait is closed with 1013 and told when to come back, with
// jitter, rather than queueing without bound.
type admission struct {
	slots chan struct{}
	wait  time.Duration
}

func newAdmission(concurrency int, wait time.Duration) *admission {
	return &admission{slots: make(chan struct{}, concurrency), wait: wait}
}

// enter takes a slot, waiting at most the admission wait; it reports false
// when none came free.
func (a *admission) enter(ctx context.Context) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// leave gives the slot back.
func (a *admission) leave() { <-a.slots }

// inUse reports how many connections are being admitted now.
func (a *admission) inUse() int { return len(a.slots) }

// busy is the close request for a connection refused admission: 1013,
// with a retry hint spread over one to four admission waits so that the
// refused do not all come back at the same moment.
func (a *admission) busy() closeRequest {
	after := a.wait + time.Duration(rand.Int64N(int64(3*a.wait)+1))
	req := closeFor(causeBusy)
	req.reason = "server busy; retryAfterMs=" + strconv.FormatInt(after.Milliseconds(), 10)
	return req
}
