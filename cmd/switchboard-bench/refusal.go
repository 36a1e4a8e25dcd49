package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// defaultRetry is how long a client waits after a refusal that carries no
// hint.
const defaultRetry = time.Second

// maxRetryWait caps a hint, so that a wrong one cannot stall a run.
const maxRetryWait = 30 * time.Second

// retryHint is the marker of the retry hint in a 1013 close reason:
// "retryAfterMs=<n>".
const retryHint = "retryAfterMs="

// refusal is a server turning a client away for now: a close 1013 (try
// again later) or an HTTP 503/429 at the upgrade. It is the error an
// attempt returns so that open retries it.
type refusal struct {
	after   time.Duration // the server's hint; 0: none
	hinted  bool
	upgrade bool   // refused at the HTTP upgrade, not with a close frame
	reason  string // close reason or HTTP status
}

func (r refusal) Error() string {
	if r.upgrade {
		return "refused at upgrade: " + r.reason
	}
	return fmt.Sprintf("closed %d %q", int(websocket.StatusTryAgainLater), r.reason)
}

// wait is how long to wait before the next attempt.
func (r refusal) wait() time.Duration {
	if !r.hinted {
		return defaultRetry
	}
	return min(r.after, maxRetryWait)
}

// cause names the kind of refusal, for the report.
func (r refusal) cause() string {
	switch {
	case r.upgrade && r.hinted:
		return "HTTP " + r.reason + " with Retry-After"
	case r.upgrade:
		return "HTTP " + r.reason
	case r.hinted:
		return "1013 with " + retryHint
	default:
		return fmt.Sprintf("1013 without a hint (%q)", r.reason)
	}
}

// parseRetryAfterMs finds "retryAfterMs=<n>" in a close reason and
// returns n milliseconds. The number ends at the first byte that is not a
// digit.
func parseRetryAfterMs(reason string) (time.Duration, bool) {
	i := strings.Index(reason, retryHint)
	if i < 0 {
		return 0, false
	}
	digits := reason[i+len(retryHint):]
	n := 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		n++
	}
	ms, err := strconv.ParseInt(digits[:n], 10, 64)
	if err != nil || ms > int64(maxRetryWait/time.Millisecond) {
		if err == nil {
			return maxRetryWait, true
		}
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// refusedClose reports whether err is a close 1013, and the refusal it
// stands for.
func refusedClose(err error) (refusal, bool) {
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusTryAgainLater {
		return refusal{}, false
	}
	d, ok := parseRetryAfterMs(ce.Reason)
	return refusal{after: d, hinted: ok, reason: ce.Reason}, true
}

// refusedUpgrade reports whether a failed dial's response is a 503 or
// 429, and the refusal it stands for (hinted by Retry-After in seconds).
func refusedUpgrade(resp *http.Response) (refusal, bool) {
	if resp == nil || (resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests) {
		return refusal{}, false
	}
	r := refusal{upgrade: true, reason: strconv.Itoa(resp.StatusCode)}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		r.after, r.hinted = time.Duration(s)*time.Second, true
	}
	return r, true
}
