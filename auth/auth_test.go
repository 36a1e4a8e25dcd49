package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "unit-test-secret-0123456789abcdef0123" // ≥ 32 bytes

// fakeClaimer is an in-memory Claimer that records its calls and can fail.
type fakeClaimer struct {
	mu    sync.Mutex
	seen  map[string]bool
	calls []claimCall
	err   error
}

type claimCall struct {
	key string
	ttl time.Duration
}

func (f *fakeClaimer) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, claimCall{key, ttl})
	if f.err != nil {
		return false, f.err
	}
	if f.seen == nil {
		f.seen = make(map[string]bool)
	}
	if f.seen[key] {
		return false, nil
	}
	f.seen[key] = true
	return true, nil
}

// fixedNow is the verifier's clock in these tests: whole seconds, as JWT
// numeric dates are.
var fixedNow = time.Unix(1_700_000_000, 0)

func newTestVerifier(t *testing.T, key Key, maxTTL time.Duration) (*Verifier, *fakeClaimer) {
	t.Helper()
	fc := &fakeClaimer{}
	v := NewVerifier(key, testAudience, maxTTL, fc)
	v.now = func() time.Time { return fixedNow }
	return v, fc
}

// testAudience is the aud claim the verifier under test expects.
const testAudience = "switchboard"

// claims returns valid claims for user at fixedNow, living ttl.
func claims(user string, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": user,
		"aud": testAudience,
		"iat": fixedNow.Unix(),
		"exp": fixedNow.Add(ttl).Unix(),
		"jti": rand.Text(),
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

func hs256(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c)
}

var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func without(c jwt.MapClaims, names ...string) jwt.MapClaims {
	for _, n := range names {
		delete(c, n)
	}
	return c
}

func with(c jwt.MapClaims, name string, v any) jwt.MapClaims {
	c[name] = v
	return c
}

// TestVerifyRejections checks every way a ticket is refused, the reason
// given, and that a refused ticket is never claimed (so a forged or broken
// ticket cannot burn the jti of a real one).
func TestVerifyRejections(t *testing.T) {
	const maxTTL = 10 * time.Minute
	cases := []struct {
		name   string
		token  func(t *testing.T) string
		reason string
	}{
		{"empty", func(*testing.T) string { return "" }, "missing ticket"},
		{"malformed", func(*testing.T) string { return "not-a-jwt" }, "malformed ticket"},
		{"three garbage parts", func(*testing.T) string { return "a.b.c" }, "malformed ticket"},
		{"exp is a string", func(t *testing.T) string { return hs256(t, with(claims("alice", time.Minute), "exp", "soon")) }, "malformed ticket"},
		{"sub is a number", func(t *testing.T) string { return hs256(t, with(claims("alice", time.Minute), "sub", 42)) }, "malformed ticket"},
		{"alg none", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", time.Minute))
		}, `algorithm not allowed`},
		{"HS512 with the same secret", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS512, []byte(testSecret), claims("alice", time.Minute))
		}, `algorithm not allowed`},
		{"RS256 while HS256 is pinned", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, testRSAKey(), claims("alice", time.Minute))
		}, `algorithm not allowed`},
		{"bad signature", func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0123"), claims("alice", time.Minute))
		}, "bad signature"},
		{"tampered payload", func(t *testing.T) string {
			good := strings.Split(hs256(t, claims("alice", time.Minute)), ".")
			evil := strings.Split(hs256(t, claims("mallory", time.Minute)), ".")
			return good[0] + "." + evil[1] + "." + good[2]
		}, "bad signature"},
		{"expired beyond the leeway", func(t *testing.T) string {
			return hs256(t, with(with(claims("alice", 0), "exp", fixedNow.Add(-10*time.Second).Unix()), "iat", fixedNow.Add(-time.Minute).Unix()))
		}, "ticket expired"},
		{"nbf in the future beyond the leeway", func(t *testing.T) string {
			return hs256(t, with(claims("alice", time.Minute), "nbf", fixedNow.Add(10*time.Second).Unix()))
		}, "ticket not valid yet"},
		{"iat in the future beyond the leeway", func(t *testing.T) string {
			return hs256(t, with(claims("alice", time.Minute), "iat", fixedNow.Add(10*time.Second).Unix()))
		}, "ticket not valid yet"},
		{"missing exp", func(t *testing.T) string { return hs256(t, without(claims("alice", time.Minute), "exp")) }, "missing claim exp"},
		{"missing sub", func(t *testing.T) string { return hs256(t, without(claims("alice", time.Minute), "sub")) }, "missing claim sub"},
		{"empty sub", func(t *testing.T) string { return hs256(t, with(claims("alice", time.Minute), "sub", "")) }, "missing claim sub"},
		{"missing jti", func(t *testing.T) string { return hs256(t, without(claims("alice", time.Minute), "jti")) }, "missing claim jti"},
		{"missing iat", func(t *testing.T) string { return hs256(t, without(claims("alice", time.Minute), "iat")) }, "missing claim iat"},
		{"missing aud", func(t *testing.T) string { return hs256(t, without(claims("alice", time.Minute), "aud")) }, "missing claim aud"},
		{"another audience", func(t *testing.T) string { return hs256(t, with(claims("alice", time.Minute), "aud", "my-api")) }, "wrong audience"},
		{"issued long ago, expiring soon", func(t *testing.T) string {
			// A day-long token is not a ticket, even in its last minutes.
			return hs256(t, with(claims("alice", time.Minute), "iat", fixedNow.Add(-24*time.Hour).Unix()))
		}, "ticket lives longer than 10m0s"},
		{"sub with a control character", func(t *testing.T) string { return hs256(t, claims("ali\nce", time.Minute)) }, "invalid claim sub"},
		{"sub too long", func(t *testing.T) string { return hs256(t, claims(strings.Repeat("x", MaxUserLen+1), time.Minute)) }, "invalid claim sub"},
		{"lives longer than the max TTL", func(t *testing.T) string { return hs256(t, claims("alice", maxTTL+time.Minute)) }, "ticket lives longer than 10m0s"},
		{"exp is a numeric string", func(t *testing.T) string {
			return hs256(t, with(claims("alice", time.Minute), "exp", strconv.FormatInt(fixedNow.Add(time.Minute).Unix(), 10)))
		}, "invalid claim exp: must be a number"},
		{"iat is a numeric string", func(t *testing.T) string {
			return hs256(t, with(claims("alice", time.Minute), "iat", strconv.FormatInt(fixedNow.Unix(), 10)))
		}, "invalid claim iat: must be a number"},
		{"rooms is null", func(t *testing.T) string { return hs256(t, with(claims("alice", time.Minute), "rooms", nil)) }, "invalid claim rooms: must be an array of room names"},
		{"rooms is a string", func(t *testing.T) string { return hs256(t, with(claims("alice", time.Minute), "rooms", "#a")) }, "malformed ticket"},
		{"rooms is an object", func(t *testing.T) string {
			return hs256(t, with(claims("alice", time.Minute), "rooms", map[string]any{"#a": true}))
		}, "malformed ticket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, fc := newTestVerifier(t, HMACKey(testSecret), maxTTL)
			_, err := v.Verify(context.Background(), tc.token(t))
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Verify = %v, want a *Rejection", err)
			}
			if rej.Reason != tc.reason {
				t.Errorf("reason = %q, want %q (err %v)", rej.Reason, tc.reason, err)
			}
			if rej.Retry {
				t.Errorf("Retry set on a final rejection")
			}
			if len(rej.Reason) > 123 {
				t.Errorf("reason is %d bytes: too long for a close frame", len(rej.Reason))
			}
			if len(fc.calls) != 0 {
				t.Errorf("a refused ticket was claimed: %v", fc.calls)
			}
		})
	}
}

// TestVerifyAccepts checks valid tickets, including the clock-skew leeway
// at each boundary and a lifetime of exactly the maximum.
func TestVerifyAccepts(t *testing.T) {
	const maxTTL = 10 * time.Minute
	cases := []struct {
		name   string
		claims jwt.MapClaims
	}{
		{"plain", claims("alice", time.Minute)},
		{"audience among others", with(claims("alice", time.Minute), "aud", []string{"my-api", testAudience})},
		{"expired within the leeway", with(claims("alice", 0), "exp", fixedNow.Add(-2*time.Second).Unix())},
		{"nbf within the leeway", with(claims("alice", time.Minute), "nbf", fixedNow.Add(2*time.Second).Unix())},
		{"nbf in the past", with(claims("alice", time.Minute), "nbf", fixedNow.Add(-time.Second).Unix())},
		{"lifetime of exactly the max TTL", claims("alice", maxTTL)},
		{"unicode user", claims("Zoë 😀", time.Minute)},
		{"64-character user", claims(strings.Repeat("é", MaxUserLen), time.Minute)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, fc := newTestVerifier(t, HMACKey(testSecret), maxTTL)
			id, err := v.Verify(context.Background(), hs256(t, tc.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.User != tc.claims["sub"] {
				t.Errorf("user = %q, want %q", id.User, tc.claims["sub"])
			}
			if id.Rooms != nil {
				t.Errorf("rooms = %#v, want nil (any room)", id.Rooms)
			}
			if len(fc.calls) != 1 || fc.calls[0].key != "ticket:"+tc.claims["jti"].(string) {
				t.Fatalf("claims = %v, want one of ticket:%s", fc.calls, tc.claims["jti"])
			}
		})
	}
}

// TestVerifySingleUse checks a ticket is consumed: the claim lives as long
// as the ticket could still be accepted, and a second use is refused.
func TestVerifySingleUse(t *testing.T) {
	v, fc := newTestVerifier(t, HMACKey(testSecret), 10*time.Minute)
	c := claims("alice", time.Minute)
	token := hs256(t, c)
	if _, err := v.Verify(context.Background(), token); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := v.Verify(context.Background(), token)
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Reason != "ticket already used" || rej.Retry {
		t.Fatalf("second use: %v, want ticket already used", err)
	}
	if len(fc.calls) != 2 {
		t.Fatalf("claims = %v", fc.calls)
	}
	// The claim must outlive the ticket's acceptance window: remaining
	// lifetime plus the clock-skew leeway.
	if got, want := fc.calls[0].ttl, time.Minute+clockSkew; got != want {
		t.Errorf("claim ttl = %s, want %s", got, want)
	}

	// A ticket accepted in its leeway after exp still gets a claim that
	// lasts past the leeway.
	late := with(claims("bob", 0), "exp", fixedNow.Add(-3*time.Second).Unix())
	if _, err := v.Verify(context.Background(), hs256(t, late)); err != nil {
		t.Fatalf("late ticket: %v", err)
	}
	if got := fc.calls[2].ttl; got < time.Second {
		t.Errorf("claim ttl for a ticket in its leeway = %s, want at least 1s", got)
	}
}

// TestVerifyReplayStoreDown checks an unreachable claimer gives a retryable
// rejection that wraps the cause.
func TestVerifyReplayStoreDown(t *testing.T) {
	v, fc := newTestVerifier(t, HMACKey(testSecret), 10*time.Minute)
	fc.err = errors.New("redis: connection refused")
	_, err := v.Verify(context.Background(), hs256(t, claims("alice", time.Minute)))
	var rej *Rejection
	if !errors.As(err, &rej) {
		t.Fatalf("Verify = %v, want a *Rejection", err)
	}
	if !rej.Retry || rej.Reason != "cannot check ticket now, try again" {
		t.Errorf("rejection = %+v, want a retryable one", rej)
	}
	if !errors.Is(err, fc.err) {
		t.Errorf("rejection does not wrap the claimer's error: %v", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Error() = %q, want the cause included", err.Error())
	}
}

func TestVerifyRoomsClaim(t *testing.T) {
	cases := []struct {
		name  string
		rooms any
		want  []string
	}{
		{"absent", nil, nil},
		{"one room", []string{"#allowed"}, []string{"#allowed"}},
		{"two rooms", []string{"#a", "#b"}, []string{"#a", "#b"}},
		{"empty list allows none", []string{}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := newTestVerifier(t, HMACKey(testSecret), 10*time.Minute)
			c := claims("alice", time.Minute)
			if tc.rooms != nil {
				c["rooms"] = tc.rooms
			}
			id, err := v.Verify(context.Background(), hs256(t, c))
			if err != nil {
				t.Fatal(err)
			}
			if (id.Rooms == nil) != (tc.want == nil) || !slices.Equal(id.Rooms, tc.want) {
				t.Errorf("rooms = %#v, want %#v", id.Rooms, tc.want)
			}
		})
	}
}

// TestMinterRoundTrip checks minted tickets verify, carry the asked claims
// and distinct jtis, and report their expiry to the second.
func TestMinterRoundTrip(t *testing.T) {
	m := NewMinter(testSecret, testAudience)
	m.now = func() time.Time { return fixedNow.Add(400 * time.Millisecond) }
	v, _ := newTestVerifier(t, HMACKey(testSecret), 10*time.Minute)

	token, exp, err := m.Mint("alice", []string{"#allowed"}, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := fixedNow.Add(90 * time.Second); !exp.Equal(want) {
		t.Errorf("exp = %s, want %s", exp, want)
	}
	var c Claims
	tok, _, err := jwt.NewParser().ParseUnverified(token, &c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", tok.Header["alg"])
	}
	if c.Subject != "alice" || c.ID == "" || c.IssuedAt == nil || !c.ExpiresAt.Time.Equal(exp) {
		t.Errorf("claims = %+v", c)
	}
	id, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify minted ticket: %v", err)
	}
	if id.User != "alice" || !slices.Equal(id.Rooms, []string{"#allowed"}) {
		t.Errorf("identity = %+v", id)
	}

	other, _, err := m.Mint("alice", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var c2 Claims
	if _, _, err := jwt.NewParser().ParseUnverified(other, &c2); err != nil {
		t.Fatal(err)
	}
	if c2.ID == c.ID {
		t.Errorf("two tickets share jti %q", c.ID)
	}
	if c2.Rooms != nil {
		t.Errorf("rooms = %#v, want absent", c2.Rooms)
	}
	if id, err := v.Verify(context.Background(), other); err != nil || id.Rooms != nil {
		t.Errorf("Verify = %+v, %v; want any room", id, err)
	}

	// A ticket minted with another secret is refused.
	foreign, _, _ := NewMinter("some-other-secret-0123456789abcdef", testAudience).Mint("alice", nil, time.Minute)
	if _, err := v.Verify(context.Background(), foreign); err == nil || err.(*Rejection).Reason != "bad signature" {
		t.Errorf("foreign ticket: %v, want bad signature", err)
	}
}

// TestMintEmptyRooms: a ticket minted with an empty rooms list allows no
// room, as a signed ticket with "rooms": [] does; dropping the empty claim
// (omitempty) would turn it into a ticket for every room.
func TestMintEmptyRooms(t *testing.T) {
	m := NewMinter(testSecret, testAudience)
	m.now = func() time.Time { return fixedNow }
	v, _ := newTestVerifier(t, HMACKey(testSecret), 10*time.Minute)
	token, _, err := m.Mint("alice", []string{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if id.Rooms == nil || len(id.Rooms) != 0 {
		t.Errorf("rooms = %#v, want an empty non-nil list (no room allowed)", id.Rooms)
	}
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkix(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestPublicKeys checks LoadPublicKey pins RS256 for RSA and EdDSA for
// Ed25519, and that the resulting verifier accepts only that algorithm.
func TestPublicKeys(t *testing.T) {
	rsaKey := testRSAKey()
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		path    string
		alg     string
		method  jwt.SigningMethod
		private any
	}{
		{"RSA PKIX", writePEM(t, "PUBLIC KEY", pkix(t, &rsaKey.PublicKey)), "RS256", jwt.SigningMethodRS256, rsaKey},
		{"RSA PKCS1", writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), "RS256", jwt.SigningMethodRS256, rsaKey},
		{"Ed25519", writePEM(t, "PUBLIC KEY", pkix(t, edPub)), "EdDSA", jwt.SigningMethodEdDSA, edPriv},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := LoadPublicKey(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if key.Alg != tc.alg {
				t.Fatalf("alg = %q, want %q", key.Alg, tc.alg)
			}
			v, _ := newTestVerifier(t, key, 10*time.Minute)
			if id, err := v.Verify(context.Background(), sign(t, tc.method, tc.private, claims("alice", time.Minute))); err != nil || id.User != "alice" {
				t.Fatalf("Verify %s ticket = %+v, %v", tc.alg, id, err)
			}
			refused := map[string]string{
				"HS256 with a secret": sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims("alice", time.Minute)),
				// The classic confusion attack: HMAC keyed with the
				// public key file's bytes.
				"HS256 keyed with the public key PEM": func() string {
					pemBytes, err := os.ReadFile(tc.path)
					if err != nil {
						t.Fatal(err)
					}
					return sign(t, jwt.SigningMethodHS256, pemBytes, claims("alice", time.Minute))
				}(),
				"none": sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", time.Minute)),
			}
			for what, token := range refused {
				_, err := v.Verify(context.Background(), token)
				var rej *Rejection
				if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "not allowed") {
					t.Errorf("%s: %v, want algorithm not allowed", what, err)
				}
			}
		})
	}

	t.Run("signed by another key", func(t *testing.T) {
		key, err := LoadPublicKey(cases[2].path)
		if err != nil {
			t.Fatal(err)
		}
		_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
		v, _ := newTestVerifier(t, key, 10*time.Minute)
		_, err = v.Verify(context.Background(), sign(t, jwt.SigningMethodEdDSA, otherPriv, claims("alice", time.Minute)))
		var rej *Rejection
		if !errors.As(err, &rej) || rej.Reason != "bad signature" {
			t.Errorf("Verify = %v, want bad signature", err)
		}
	})
}

func TestLoadPublicKeyErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER := pkix(t, &ecKey.PublicKey)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.pem")},
		{"not PEM", garbage},
		{"ECDSA key", writePEM(t, "PUBLIC KEY", ecDER)},
		{"RSA private key", writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey()))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadPublicKey(tc.path)
			if err == nil {
				t.Fatal("LoadPublicKey succeeded")
			}
			if !strings.Contains(err.Error(), "JWT_PUBLIC_KEY") {
				t.Errorf("error %q does not name JWT_PUBLIC_KEY", err)
			}
		})
	}
}

func TestValidateUser(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"test-user", true},
		{"Zoë", true},
		{"with space", true},
		{strings.Repeat("a", MaxUserLen), true},
		{"", false},
		{strings.Repeat("a", MaxUserLen+1), false},
		{"tab\there", false},
		{"nul\x00", false},
		{"bad\xffutf8", false},
		{"del\x7f", false},
	}
	for _, tc := range cases {
		if err := ValidateUser(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateUser(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
