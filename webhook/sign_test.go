package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"connection":"c1"}`)
	now := time.Unix(1_700_000_000, 0)
	signed := func(ts int64, sig string) http.Header {
		h := http.Header{}
		h.Set(TimestampHeader, strconv.FormatInt(ts, 10))
		if sig != "" {
			h.Set(SignatureHeader, sig)
		}
		return h
	}
	good := Sign(secret, now.Unix(), body)
	cases := []struct {
		name   string
		header http.Header
		body   []byte
		secret []byte
		want   error
	}{
		{"valid", signed(now.Unix(), good), body, secret, nil},
		{"valid within tolerance", signed(now.Unix()-60, Sign(secret, now.Unix()-60, body)), body, secret, nil},
		{"rotation: second value matches", signed(now.Unix(), "v1=00ff,"+good), body, secret, nil},
		{"wrong secret", signed(now.Unix(), good), body, []byte("other"), ErrBadSignature},
		{"tampered body", signed(now.Unix(), good), []byte(`{"connection":"c2"}`), secret, ErrBadSignature},
		{"timestamp not the signed one", signed(now.Unix()-1, good), body, secret, ErrBadSignature},
		{"stale", signed(now.Unix()-301, Sign(secret, now.Unix()-301, body)), body, secret, ErrStale},
		{"future", signed(now.Unix()+301, Sign(secret, now.Unix()+301, body)), body, secret, ErrStale},
		{"no signature", signed(now.Unix(), ""), body, secret, ErrNoSignature},
		{"unknown scheme", signed(now.Unix(), "v0=abcd"), body, secret, ErrNoSignature},
		{"not hex", signed(now.Unix(), "v1=zz"), body, secret, ErrBadSignature},
		{"no timestamp", http.Header{SignatureHeader: {good}}, body, secret, ErrNoSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, tc.body, now, 5*time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignKnownValue(t *testing.T) {
	// Computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
	got := Sign([]byte("key"), 1700000000, []byte("{}"))
	const want = "v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
