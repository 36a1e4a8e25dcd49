package server

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// TestCloseCauses pins what each cause means on the wire and in
// switchboard_connections_closed_total: dashboards and alerts use the
// labels, clients the codes and reasons.
func TestCloseCauses(t *testing.T) {
	for _, tc := range []struct {
		cause  closeCause
		label  string
		code   websocket.StatusCode
		reason string
		ending ending
	}{
		{causePeer, "peer", 0, "", endAbrupt},
		{causeSlow, "slow", websocket.StatusPolicyViolation, "connection too slow to keep up with messages", endDrop},
		{causeRateLimit, "rate_limit", websocket.StatusPolicyViolation, "rate limit exceeded", endFlush},
		{causePingTimeout, "ping_timeout", websocket.StatusGoingAway, "ping timeout", endAbrupt},
		{causeShutdown, "shutdown", websocket.StatusGoingAway, "server shutting down", endFlush},
		{causeAuth, "auth", websocket.StatusPolicyViolation, "authentication failed", endDrop},
		{causeTooBig, "too_big", websocket.StatusMessageTooBig, "frame too large", endAbrupt},
		{causeWriteError, "write_error", 0, "", endAbrupt},
		{causeUnavailable, "unavailable", websocket.StatusTryAgainLater, "server cannot subscribe you now, try again", endDrop},
		{causeBusy, "busy", websocket.StatusTryAgainLater, "server busy, try again", endDrop},
		{causeInvalid, "invalid", websocket.StatusInvalidFramePayloadData, "frame is not valid UTF-8", endDrop},
	} {
		t.Run(tc.label, func(t *testing.T) {
			req := closeFor(tc.cause)
			if got := tc.cause.label(); got != tc.label {
				t.Errorf("label %q, want %q", got, tc.label)
			}
			if req.code != tc.code || req.reason != tc.reason {
				t.Errorf("closes with %d %q, want %d %q", req.code, req.reason, tc.code, tc.reason)
			}
			if len(req.reason) > maxReasonBytes {
				t.Errorf("reason of %d bytes: no close frame would be sent", len(req.reason))
			}
			if got := tc.cause.ending(); got != tc.ending {
				t.Errorf("ending %d, want %d", got, tc.ending)
			}
		})
	}
}

func TestTruncateReason(t *testing.T) {
	for _, tc := range []struct {
		name, reason, want string
	}{
		{"short", "gone", "gone"},
		{"exactly the limit", strings.Repeat("a", maxReasonBytes), strings.Repeat("a", maxReasonBytes)},
		{"one byte over", strings.Repeat("a", maxReasonBytes+1), strings.Repeat("a", maxReasonBytes)},
		// 122 ASCII bytes, then a 3-byte rune across the limit: cut before it.
		{"rune across the limit", strings.Repeat("a", maxReasonBytes-1) + "€", strings.Repeat("a", maxReasonBytes-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := truncateReason(tc.reason)
			if got != tc.want {
				t.Errorf("truncateReason = %q (%d bytes), want %q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
			if !utf8.ValidString(got) {
				t.Errorf("truncateReason cut a rune: %q", got)
			}
		})
	}
}
