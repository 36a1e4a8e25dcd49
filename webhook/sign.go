package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the signature every webhook request carries.
const (
	// TimestampHeader holds the request's creation time in unix seconds.
	TimestampHeader = "X-Switchboard-Timestamp"
	// SignatureHeader holds "v1=" followed by the lower-case hex
	// HMAC-SHA256 of timestamp + "." + body under WEBHOOK_SECRET. Several
	// comma-separated v1 values may appear; one matching value suffices
	// (this leaves room for secret rotation).
	SignatureHeader = "X-Switchboard-Signature"
	// IdempotencyHeader holds the connection id on DELETE requests; retries
	// of one DELETE carry the same value.
	IdempotencyHeader = "Idempotency-Key"
)

// signaturePrefix names the signature scheme inside SignatureHeader.
const signaturePrefix = "v1="

// Errors returned by Verify.
var (
	// ErrNoSignature means a signature or timestamp header is missing or
	// malformed.
	ErrNoSignature = errors.New("webhook: missing or malformed signature headers")
	// ErrStale means the timestamp lies outside the tolerance around now,
	// which is how a replayed request is refused.
	ErrStale = errors.New("webhook: timestamp outside tolerance")
	// ErrBadSignature means no signature matches the body under the secret.
	ErrBadSignature = errors.New("webhook: signature mismatch")
)

// Sign returns the value of SignatureHeader for a body sent at unix time
// ts: "v1=" + hex(HMAC-SHA256(secret, ts + "." + body)).
func Sign(secret []byte, ts int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, strconv.FormatInt(ts, 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a webhook request as a Go backend receives it: header is
// the request's header, body its raw body, now the receiver's clock and
// tolerance how far the timestamp may lie from now in either direction
// (5 minutes is a sensible value; zero or less disables the check).
// It returns nil, ErrNoSignature, ErrStale or ErrBadSignature.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	tsText := header.Get(TimestampHeader)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return ErrNoSignature
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(ts, 0))
		if d > tolerance || d < -tolerance {
			return ErrStale
		}
	}
	want := mac(secret, tsText, body)
	seen := false
	for _, v := range header.Values(SignatureHeader) {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			hexSig, ok := strings.CutPrefix(part, signaturePrefix)
			if !ok {
				continue
			}
			seen = true
			got, err := hex.DecodeString(hexSig)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	if !seen {
		return ErrNoSignature
	}
	return ErrBadSignature
}
