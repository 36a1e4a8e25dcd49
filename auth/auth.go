// Package auth verifies and mints the short-lived, single-use tickets
// (JWTs) that authenticate WebSocket connections.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/switchboard/switchboard/broker"
)

// Claims are a ticket's claims: sub (the user name), aud (the configured
// audience), exp, iat, jti, and optionally the rooms the user may join.
type Claims struct {
	jwt.RegisteredClaims
	// Rooms limits the rooms the connection may join; absent means any,
	// an empty list none (omitzero keeps an empty list in the ticket).
	Rooms []string `json:"rooms,omitzero"`
}

// Identity is who a verified ticket says the connection is.
type Identity struct {
	User  string
	Rooms []string // nil: any room
}

// Rejection is why a ticket was refused. Reason is short enough for a
// WebSocket close frame and safe to show the client.
type Rejection struct {
	Reason string
	// Retry is true when the ticket may be fine but could not be checked
	// (the replay store is unreachable).
	Retry bool
	cause error
}

func (r *Rejection) Error() string {
	if r.cause != nil {
		return r.Reason + ": " + r.cause.Error()
	}
	return r.Reason
}

func (r *Rejection) Unwrap() error { return r.cause }

func reject(reason string, cause error) *Rejection { return &Rejection{Reason: reason, cause: cause} }

// Claimer records single-use keys. It is the broker, so that a ticket used
// on one node is refused on every other.
type Claimer = broker.Claimer

// Verifier checks tickets: signature with a pinned algorithm, required
// claims, lifetime, and single use.
type Verifier struct {
	key      any
	alg      string
	audience string
	maxTTL   time.Duration
	claimer  Claimer
	now      func() time.Time
}

// Key is a verification key and the one algorithm it is used with.
type Key struct {
	Alg string // "HS256", "RS256" or "EdDSA"
	Key any    // []byte, *rsa.PublicKey or ed25519.PublicKey
}

// HMACKey is a Key for HS256 tickets signed with secret.
func HMACKey(secret string) Key { return Key{Alg: jwt.SigningMethodHS256.Alg(), Key: []byte(secret)} }

// LoadPublicKey reads a PEM public key: RSA keys verify RS256 tickets,
// Ed25519 keys EdDSA tickets.
func LoadPublicKey(path string) (Key, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("JWT_PUBLIC_KEY: %w", err)
	}
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
		return Key{Alg: jwt.SigningMethodRS256.Alg(), Key: k}, nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(pem); err == nil {
		return Key{Alg: jwt.SigningMethodEdDSA.Alg(), Key: k}, nil
	}
	return Key{}, fmt.Errorf("JWT_PUBLIC_KEY %s: not a PEM RSA or Ed25519 public key", path)
}

// NewVerifier returns a verifier accepting only key.Alg, tickets for
// audience (any, if empty) living at most maxTTL from iat to exp, each
// once. The audience keeps other tokens signed with the same key (say, an
// identity provider's ID tokens) from passing as tickets.
func NewVerifier(key Key, audience string, maxTTL time.Duration, claimer Claimer) *Verifier {
	return &Verifier{key: key.Key, alg: key.Alg, audience: audience, maxTTL: maxTTL, claimer: claimer, now: time.Now}
}

// clockSkew is the leeway allowed on exp, nbf and iat between the minting
// backend's clock and ours.
const clockSkew = 5 * time.Second

// Verify checks a ticket and consumes it. Errors are *Rejection.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, reject("missing ticket", nil)
	}
	unverified, _, err := jwt.NewParser().ParseUnverified(token, &Claims{})
	if err != nil {
		return Identity{}, reject("malformed ticket", err)
	}
	if alg, _ := unverified.Header["alg"].(string); alg != v.alg {
		// The header is the client's text: it stays out of the close reason.
		return Identity{}, reject("algorithm not allowed", fmt.Errorf("alg %.32q, want %s", alg, v.alg))
	}

	var claims Claims
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{v.alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(clockSkew),
		jwt.WithTimeFunc(v.now),
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	parser := jwt.NewParser(opts...)
	_, err = parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return v.key, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, reject("ticket expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return Identity{}, reject("ticket not valid yet", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Identity{}, reject("bad signature", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && strings.Contains(err.Error(), "aud claim"):
		return Identity{}, reject("missing claim aud", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Identity{}, reject("missing claim exp", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Identity{}, reject("wrong audience", err)
	default:
		return Identity{}, reject("invalid ticket", err)
	}
	if err := checkClaimTypes(token); err != nil {
		return Identity{}, err
	}
	if claims.Subject == "" {
		return Identity{}, reject("missing claim sub", nil)
	}
	if claims.ID == "" {
		return Identity{}, reject("missing claim jti", nil)
	}
	if claims.IssuedAt == nil {
		return Identity{}, reject("missing claim iat", nil)
	}
	if err := ValidateUser(claims.Subject); err != nil {
		return Identity{}, reject("invalid claim sub", err)
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > v.maxTTL {
		return Identity{}, reject(fmt.Sprintf("ticket lives longer than %s", v.maxTTL), nil)
	}
	remaining := claims.ExpiresAt.Sub(v.now())
	fresh, err := v.claimer.Claim(ctx, "ticket:"+claims.ID, max(remaining+clockSkew, time.Second))
	if err != nil {
		return Identity{}, &Rejection{Reason: "cannot check ticket now, try again", Retry: true, cause: err}
	}
	if !fresh {
		return Identity{}, reject("ticket already used", nil)
	}
	return Identity{User: claims.Subject, Rooms: claims.Rooms}, nil
}

// checkClaimTypes refuses claims that decode leniently into the wrong
// meaning: a rooms claim of null would read as "any room" (only an array
// limits rooms, and a ticket that means "any" leaves the claim out), and
// exp or iat written as strings would pass as numbers.
func checkClaimTypes(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return reject("malformed ticket", nil)
	}
	payload, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		return reject("malformed ticket", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return reject("malformed ticket", err)
	}
	if rooms, ok := raw["rooms"]; ok && !strings.HasPrefix(strings.TrimSpace(string(rooms)), "[") {
		return reject("invalid claim rooms: must be an array of room names", nil)
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		v, ok := raw[name]
		if !ok {
			continue
		}
		if first := strings.TrimSpace(string(v)); first == "" || (first[0] != '-' && (first[0] < '0' || first[0] > '9')) {
			return reject("invalid claim "+name+": must be a number", nil)
		}
	}
	return nil
}

// Minter issues HS256 tickets (POST /tokens).
type Minter struct {
	secret   []byte
	audience string
	now      func() time.Time
}

// NewMinter returns a minter signing with secret for audience.
func NewMinter(secret, audience string) *Minter {
	return &Minter{secret: []byte(secret), audience: audience, now: time.Now}
}

// Mint issues a ticket for user, valid for ttl.
func (m *Minter) Mint(user string, rooms []string, ttl time.Duration) (string, time.Time, error) {
	now := m.now()
	exp := now.Add(ttl)
	var aud jwt.ClaimStrings
	if m.audience != "" {
		aud = jwt.ClaimStrings{m.audience}
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Audience:  aud,
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
		Rooms: rooms,
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(m.secret)
	return token, exp.Truncate(time.Second), err
}

// MaxUserLen is the longest user name, in characters.
const MaxUserLen = 64

// ValidateUser checks a user name: 1 to 64 characters, no control
// characters.
func ValidateUser(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return errors.New("user name is empty")
	case n > MaxUserLen:
		return fmt.Errorf("user name is longer than %d characters", MaxUserLen)
	case !utf8.ValidString(name):
		return errors.New("user name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return errors.New("user name has control characters")
		}
	}
	return nil
}
