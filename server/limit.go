package server

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is one connection's budget: frames and bytes per second (two
// token buckets) charged when a frame arrives, pings included; a surcharge
// on broadcasts to everyone (the chat), charged once the frame is decoded
// and its channel known; and a count of consecutive refusals after which
// the connection is closed. The connection's goroutine and the library's
// ping callback both charge it, so it is safe for concurrent use.
type limiter struct {
	frames, bytes *rate.Limiter
	frameRate     float64 // frames per second, for credit
	byteRate      float64 // bytes per second, for credit
	maxStrikes    int
	now           func() time.Time

	mu      sync.Mutex
	strikes int
	// Credit is budget given back for time the reader was blocked by the
	// server (a slow broker): a client that stayed under its rate while
	// its frames queued in TCP is not charged for them as one burst. It
	// lasts creditWindow after the block ends, long enough to read the
	// backlog, and never longer.
	creditFrames, creditBytes float64
	creditUntil               time.Time
	// onAbuse closes the connection when control frames, which get no
	// rate_limited answer, exhaust the strikes.
	onAbuse func()
}

// creditWindow is how long credit for a blocked reader lasts.
const creditWindow = time.Second

// limits are the budget settings of a connection.
type limits struct {
	frameRate  float64
	frameBurst int
	byteRate   float64
	byteBurst  int
	maxStrikes int
}

func newLimiter(l limits) *limiter {
	return &limiter{
		frames:     rate.NewLimiter(rate.Limit(l.frameRate), l.frameBurst),
		bytes:      rate.NewLimiter(rate.Limit(l.byteRate), l.byteBurst),
		frameRate:  l.frameRate,
		byteRate:   l.byteRate,
		maxStrikes: l.maxStrikes,
		now:        time.Now,
	}
}

// charge charges one frame of n bytes, as it arrives. It reports whether
// the frame may be processed, and whether the client has been refused so
// often in a row that it must be disconnected.
func (l *limiter) charge(n int) (ok, abusive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.creditUntil) && l.creditFrames >= 1 && l.creditBytes >= float64(n) {
		l.creditFrames--
		l.creditBytes -= float64(n)
		l.strikes = 0
		return true, false
	}
	// Both buckets or neither: a refused frame costs nothing.
	fr := l.frames.ReserveN(now, 1)
	br := l.bytes.ReserveN(now, n)
	if fr.OK() && br.OK() && fr.DelayFrom(now) == 0 && br.DelayFrom(now) == 0 {
		l.strikes = 0
		return true, false
	}
	fr.CancelAt(now)
	br.CancelAt(now)
	return false, l.strike()
}

// surcharge charges extra bytes for a frame already charged (a broadcast
// to every connection costs more than a room message). It reports false,
// charging nothing, when the budget does not have them.
func (l *limiter) surcharge(n int) (ok, abusive bool) {
	if n <= 0 {
		return true, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bytes.AllowN(l.now(), n) {
		return true, false
	}
	return false, l.strike()
}

// strike counts a refusal. Caller holds mu.
func (l *limiter) strike() bool {
	l.strikes++
	return l.strikes >= l.maxStrikes
}

// credit gives back the budget of d during which the reader was blocked
// by the server.
func (l *limiter) credit(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.After(l.creditUntil) {
		l.creditFrames, l.creditBytes = 0, 0
	}
	l.creditFrames += l.frameRate * d.Seconds()
	l.creditBytes += l.byteRate * d.Seconds()
	l.creditUntil = now.Add(creditWindow)
}

// ping charges a ping frame (the library answers it itself): a client
// cannot spend the server's CPU on pongs past its budget. A refused ping
// gets no pong; when pings exhaust the strikes the connection is closed.
func (l *limiter) ping(_ context.Context, payload []byte) bool {
	ok, abusive := l.charge(len(payload) + 2)
	if abusive && l.onAbuse != nil {
		l.onAbuse()
	}
	return ok
}
