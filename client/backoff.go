package client

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Backoff is a Reconnecting client's delay policy between attempts: full
// jitter exponential backoff, each delay drawn uniformly from zero to a
// ceiling that doubles per failed attempt up to Max.
type Backoff struct {
	// Initial is the ceiling of the first delay. Default 500 ms.
	Initial time.Duration
	// Max bounds every ceiling. Default 30 s.
	Max time.Duration
	// Stable is how long a connection must have stayed up for the next
	// reconnect to start again from Initial. Default 10 s.
	Stable time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Stable <= 0 {
		b.Stable = 10 * time.Second
	}
	return b
}

// Ceiling is the largest delay before attempt n (0 for the first retry):
// Initial·2ⁿ, at most Max.
func (b Backoff) Ceiling(n int) time.Duration {
	b = b.withDefaults()
	c := b.Initial
	for range n {
		if c >= b.Max/2 {
			return b.Max
		}
		c *= 2
	}
	return min(c, b.Max)
}

// retrier tracks consecutive failed attempts and draws the delays.
type retrier struct {
	b       Backoff
	attempt int
	// rand returns a number in [0, 1); rand.Float64 unless a test injects one.
	rand func() float64
}

func newRetrier(b Backoff) *retrier {
	return &retrier{b: b.withDefaults(), rand: rand.Float64}
}

// next returns the delay before the next attempt, after a connection that
// lived for lived (zero when the dial itself failed) ended with err: a
// full-jitter draw, reset to the first ceiling after a stable connection,
// and never shorter than a 1013 close's retry hint.
func (r *retrier) next(err error, lived time.Duration) time.Duration {
	if lived >= r.b.Stable {
		r.attempt = 0
	}
	d := time.Duration(r.rand() * float64(r.b.Ceiling(r.attempt)))
	r.attempt++
	if hint, ok := RetryAfter(err); ok && d < hint {
		d = hint
	}
	return d
}

// RetryAfter returns the delay a server asked for when it closed the
// connection with 1013 (try again later) and a reason containing
// "retryAfterMs=<n>".
func RetryAfter(err error) (time.Duration, bool) {
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater {
		return 0, false
	}
	const key = "retryAfterMs="
	i := strings.Index(ce.Reason, key)
	if i < 0 {
		return 0, false
	}
	digits := ce.Reason[i+len(key):]
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		digits = digits[:end]
	}
	ms, perr := strconv.ParseUint(digits, 10, 32)
	if perr != nil {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// Non-auth reasons of a 1008 close: the connection may come back.
var retryablePolicyReasons = []string{
	"connection too slow to keep up with messages",
	"rate limit exceeded",
}

// terminal reports whether err ends reconnecting: the client closed, the
// server refused the ticket (1008 for another reason than slowness or the
// rate limit), or the handshake was refused as unauthorized or forbidden.
func terminal(err error) bool {
	if errors.Is(err, ErrClosed) {
		return true
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation {
		for _, r := range retryablePolicyReasons {
			if ce.Reason == r {
				return false
			}
		}
		return true
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.StatusCode == 401 || he.StatusCode == 403
	}
	return false
}
