package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// Authenticated mode: tickets (JWTs) presented with ?token= or as the
// first frame, the server API's bearer key, and POST /tokens and
// POST /message, on real nodes with real clients.

const (
	authSecret = "e2e-auth-secret-0123456789abcdef-0123" // ≥ 32 bytes
	authAPIKey = "e2e-auth-api-key-7f3a"
)

// authEnv is an authenticated node's settings (HS256 with authSecret)
// with extra ones added.
func authEnv(extra map[string]string) map[string]string {
	env := map[string]string{"JWT_SECRET": authSecret, "SERVER_API_KEY": authAPIKey}
	maps.Copy(env, extra)
	return env
}

// authNode starts an authenticated node on the in-memory broker.
func authNode(t *testing.T, extra map[string]string) *testnode.Node {
	t.Helper()
	return testnode.StartMemory(t, testnode.Config(t, authEnv(extra)))
}

// ticketClaims are valid claims for user, issued now and living ttl.
func ticketClaims(user string, ttl time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": user, "aud": "switchboard", "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": rand.Text()}
}

func signTicket(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	token, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s ticket: %v", method.Alg(), err)
	}
	return token
}

// hsTicket is a valid HS256 ticket for user, signed with authSecret.
func hsTicket(t *testing.T, user string) string {
	t.Helper()
	return signTicket(t, jwt.SigningMethodHS256, []byte(authSecret), ticketClaims(user, time.Minute))
}

// hsClaims signs claims with authSecret after edit changes them.
func hsClaims(t *testing.T, edit func(jwt.MapClaims)) string {
	t.Helper()
	c := ticketClaims("alice", time.Minute)
	edit(c)
	return signTicket(t, jwt.SigningMethodHS256, []byte(authSecret), c)
}

var authRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// dialToken connects presenting token in the query string.
func dialToken(t *testing.T, n *testnode.Node, token string) *wstest.Client {
	t.Helper()
	return wstest.Dial(t, n.WS()+"?token="+url.QueryEscape(token))
}

// dialAuthenticate connects and sends token in an Authenticate first
// frame, written out as the protocol documents it.
func dialAuthenticate(t *testing.T, n *testnode.Node, token string) *wstest.Client {
	t.Helper()
	c := wstest.Dial(t, n.WS())
	quoted, _ := json.Marshal(token)
	c.SendRaw(`{"channel":"session","message":{"type":"Authenticate","contents":{"token":` + string(quoted) + `}}}`)
	return c
}

// ticketPaths are the two ways to present a ticket.
var ticketPaths = []struct {
	name string
	dial func(t *testing.T, n *testnode.Node, token string) *wstest.Client
}{
	{"query", dialToken},
	{"first frame", dialAuthenticate},
}

// expectAuthenticated expects session/Authenticated naming user and a
// connection id.
func expectAuthenticated(t *testing.T, c *wstest.Client, user string) protocol.Authenticated {
	t.Helper()
	var got protocol.Authenticated
	c.Expect(protocol.ChannelSession, protocol.TypeAuthenticated).Decode(t, &got)
	if got.User != user || got.Connection == "" {
		t.Fatalf("Authenticated = %+v, want user %q and a connection id", got, user)
	}
	return got
}

// expectClosed expects the server to close the connection with code and
// exactly reason.
func expectClosed(t *testing.T, c *wstest.Client, code websocket.StatusCode, reason string) {
	t.Helper()
	gotCode, gotReason := c.ExpectClose()
	if gotCode != code || gotReason != reason {
		t.Fatalf("closed with %d %q, want %d (%s) %q", gotCode, gotReason, code, code, reason)
	}
}

// expectWorks checks an admitted connection is served: a chat message
// comes back.
func expectWorks(t *testing.T, c *wstest.Client) {
	t.Helper()
	text := "still here " + rand.Text()
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	if err := c.Conn.Write(ctx, websocket.MessageText, protocol.Encode(protocol.ChannelChat, protocol.TypeSubmitMessage, text)); err != nil {
		code, reason := c.ExpectClose()
		t.Fatalf("connection closed with %d %q, want it open and served (write: %v)", code, reason, err)
	}
	var m protocol.ChatMessage
	c.WaitFor(protocol.ChannelChat, protocol.TypeNewMessageReceived).Decode(t, &m)
	if m.Content != text {
		t.Fatalf("chat echo %+v, want %q", m, text)
	}
}

// TestTicketRejections presents every kind of bad ticket, in the query
// string and as the first frame: each closes the connection with 1008 and
// the reason.
func TestTicketRejections(t *testing.T) {
	n := authNode(t, map[string]string{"TOKEN_TTL": "30s", "TOKEN_MAX_TTL": "2m"})
	cases := []struct {
		name      string
		token     func(t *testing.T) string
		reason    string
		frameOnly bool // an empty ?token= is no ticket at all: it waits for the first frame
	}{
		{name: "expired", reason: "ticket expired", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) {
				c["iat"] = time.Now().Add(-2 * time.Minute).Unix()
				c["exp"] = time.Now().Add(-time.Minute).Unix()
			})
		}},
		{name: "not yet valid", reason: "ticket not valid yet", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() })
		}},
		{name: "issued in the future", reason: "ticket not valid yet", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { c["iat"] = time.Now().Add(time.Minute).Unix() })
		}},
		{name: "bad signature", reason: "bad signature", token: func(t *testing.T) string {
			return signTicket(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-0123"), ticketClaims("alice", time.Minute))
		}},
		{name: "alg none", reason: `algorithm not allowed`, token: func(t *testing.T) string {
			return signTicket(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ticketClaims("alice", time.Minute))
		}},
		{name: "HS512 with the same secret", reason: `algorithm not allowed`, token: func(t *testing.T) string {
			return signTicket(t, jwt.SigningMethodHS512, []byte(authSecret), ticketClaims("alice", time.Minute))
		}},
		{name: "RS256 while HS256 is configured", reason: `algorithm not allowed`, token: func(t *testing.T) string {
			return signTicket(t, jwt.SigningMethodRS256, authRSAKey(), ticketClaims("alice", time.Minute))
		}},
		{name: "missing sub", reason: "missing claim sub", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { delete(c, "sub") })
		}},
		{name: "missing exp", reason: "missing claim exp", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { delete(c, "exp") })
		}},
		{name: "missing jti", reason: "missing claim jti", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { delete(c, "jti") })
		}},
		{name: "invalid sub", reason: "invalid claim sub", token: func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { c["sub"] = "bad\x00name" })
		}},
		{name: "malformed", reason: "malformed ticket", token: func(*testing.T) string { return "this.is-not.a-jwt" }},
		{name: "not even dotted", reason: "malformed ticket", token: func(*testing.T) string { return "garbage" }},
		{name: "lives longer than TOKEN_MAX_TTL", reason: "ticket lives longer than 2m0s", token: func(t *testing.T) string {
			return signTicket(t, jwt.SigningMethodHS256, []byte(authSecret), ticketClaims("alice", 3*time.Minute))
		}},
		{name: "used twice", reason: "ticket already used", token: func(t *testing.T) string {
			token := hsTicket(t, "alice")
			first := dialToken(t, n, token)
			expectAuthenticated(t, first, "alice")
			first.Close()
			return token
		}},
		{name: "empty", reason: "missing ticket", frameOnly: true, token: func(*testing.T) string { return "" }},
	}
	for _, tc := range cases {
		for _, path := range ticketPaths {
			if tc.frameOnly && path.name == "query" {
				continue
			}
			t.Run(tc.name+"/"+path.name, func(t *testing.T) {
				c := path.dial(t, n, tc.token(t))
				expectClosed(t, c, websocket.StatusPolicyViolation, tc.reason)
			})
		}
	}
}

// TestAuthTimeout: a connection that presents no ticket within
// AUTH_TIMEOUT is closed with 1008, whatever else it sends meanwhile, and
// not before the deadline.
func TestAuthTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	n := authNode(t, map[string]string{"AUTH_TIMEOUT": timeout.String()})
	cases := []struct {
		name  string
		query string
		chat  bool // send frames that are not Authenticate meanwhile
	}{
		{"silent", "", false},
		{"empty token in the query", "?token=", false},
		{"user in the query is no ticket", "?user=mallory", false},
		{"chatter does not extend the deadline", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c := wstest.Dial(t, n.WS()+tc.query)
			if tc.chat {
				for range 2 {
					c.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "let me in")
					c.ExpectError(protocol.ChannelChat, protocol.CodeUnauthenticated)
					time.Sleep(timeout / 4)
				}
			}
			expectClosed(t, c, websocket.StatusPolicyViolation, "authentication timeout")
			if took := time.Since(start); took < timeout || took > timeout+5*time.Second {
				t.Errorf("closed after %s, want AUTH_TIMEOUT %s", took, timeout)
			}
		})
	}
}

// TestAuthSuccess presents a good ticket both ways: Authenticated names the
// user and a fresh connection id, the connection works, and a second
// Authenticate is refused without closing it.
func TestAuthSuccess(t *testing.T) {
	n := authNode(t, nil)
	seen := map[string]bool{}
	for _, path := range ticketPaths {
		t.Run(path.name, func(t *testing.T) {
			c := path.dial(t, n, hsTicket(t, "alice"))
			got := expectAuthenticated(t, c, "alice")
			if seen[got.Connection] {
				t.Errorf("connection id %q reused", got.Connection)
			}
			seen[got.Connection] = true
			expectWorks(t, c)

			c.Send(protocol.ChannelSession, protocol.TypeAuthenticate, protocol.Authenticate{Token: hsTicket(t, "bob")})
			c.ExpectError(protocol.ChannelSession, protocol.CodeAlreadyAuthed)
			// Still alice, still served.
			c.Join("#after", "alice", "alice")
			expectWorks(t, c)
		})
	}
}

// TestAuthenticatedConnectionOutlivesAuthTimeout: once a connection has
// authenticated, the AUTH_TIMEOUT deadline no longer applies to it.
func TestAuthenticatedConnectionOutlivesAuthTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	n := authNode(t, map[string]string{"AUTH_TIMEOUT": timeout.String()})
	for _, path := range ticketPaths {
		t.Run(path.name, func(t *testing.T) {
			c := path.dial(t, n, hsTicket(t, "alice"))
			expectAuthenticated(t, c, "alice")
			// A connection dialled after c that never authenticates: once
			// the server has closed it for the timeout, c's own deadline,
			// earlier, has passed too.
			late := wstest.Dial(t, n.WS())
			expectClosed(t, late, websocket.StatusPolicyViolation, "authentication timeout")
			expectWorks(t, c)
		})
	}
}

// TestUnauthenticatedFrames: before Authenticate, every other frame is
// answered with unauthenticated (or its own error) and the connection
// stays open until the deadline; Authenticate within it admits it.
func TestUnauthenticatedFrames(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	n := authNode(t, map[string]string{"AUTH_TIMEOUT": timeout.String()})

	t.Run("refused until the deadline", func(t *testing.T) {
		start := time.Now()
		c := wstest.Dial(t, n.WS())
		c.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "hello?")
		c.ExpectError(protocol.ChannelChat, protocol.CodeUnauthenticated)
		c.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#r"})
		c.ExpectError(protocol.ChannelChatRoom, protocol.CodeUnauthenticated)
		c.Send(protocol.ChannelSession, "Hello", nil)
		c.ExpectError(protocol.ChannelSession, protocol.CodeUnauthenticated)
		c.Send("no-such-channel", "Hello", nil)
		c.ExpectError(protocol.ChannelError, protocol.CodeUnauthenticated)
		c.SendRaw("not json")
		c.ExpectError(protocol.ChannelError, protocol.CodeInvalidJSON)
		c.SendRaw(`{"channel":"session","message":{"type":"Authenticate","contents":"token"}}`)
		c.ExpectError(protocol.ChannelSession, protocol.CodeInvalidContents)
		// Part of the deadline passes. The strict ExpectError below is the
		// barrier that shows nothing else was sent meanwhile.
		time.Sleep(timeout / 3)
		c.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "still refused")
		c.ExpectError(protocol.ChannelChat, protocol.CodeUnauthenticated)
		expectClosed(t, c, websocket.StatusPolicyViolation, "authentication timeout")
		if took := time.Since(start); took < timeout {
			t.Errorf("closed after %s, before AUTH_TIMEOUT %s", took, timeout)
		}
	})

	t.Run("then authenticated", func(t *testing.T) {
		c := wstest.Dial(t, n.WS())
		c.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "too early")
		c.ExpectError(protocol.ChannelChat, protocol.CodeUnauthenticated)
		c.Send(protocol.ChannelSession, protocol.TypeAuthenticate, protocol.Authenticate{Token: hsTicket(t, "alice")})
		expectAuthenticated(t, c, "alice")
		expectWorks(t, c)
	})
}

// TestTicketReplayAcrossNodes: a ticket used on one node is refused on
// another sharing the Redis, because single use is recorded there.
func TestTicketReplayAcrossNodes(t *testing.T) {
	d, _ := singleRedis(t)
	ns := d.nodes(t, 2, authEnv(nil))
	for _, first := range ticketPaths {
		for _, second := range ticketPaths {
			t.Run(first.name+" then "+second.name, func(t *testing.T) {
				token := hsTicket(t, "alice")
				a := first.dial(t, ns[0], token)
				expectAuthenticated(t, a, "alice")
				b := second.dial(t, ns[1], token)
				expectClosed(t, b, websocket.StatusPolicyViolation, "ticket already used")
				again := second.dial(t, ns[0], token)
				expectClosed(t, again, websocket.StatusPolicyViolation, "ticket already used")
				expectWorks(t, a) // the replay did not disturb the first use
			})
		}
	}

	t.Run("minted on one node", func(t *testing.T) {
		token := mintTicket(t, ns[1], `{"user":"alice"}`).Token
		expectAuthenticated(t, dialToken(t, ns[0], token), "alice")
		expectClosed(t, dialToken(t, ns[1], token), websocket.StatusPolicyViolation, "ticket already used")
	})
}

// TestTicketCheckUnavailable: when the replay store cannot be reached the
// ticket is refused with 1013 (try again later), and is not consumed: it
// works once Redis is back.
func TestTicketCheckUnavailable(t *testing.T) {
	d, srv := singleRedis(t)
	n := d.nodes(t, 1, authEnv(map[string]string{"OP_TIMEOUT": "1s"}))[0]
	token := hsTicket(t, "alice")
	srv.Stop(t)
	for _, path := range ticketPaths {
		expectClosed(t, path.dial(t, n, token), websocket.StatusTryAgainLater, "cannot check ticket now, try again")
	}
	srv.Restart(t)
	wait.For(t, converge, "ready once Redis is back", func() bool {
		status, _ := n.Do(t, http.MethodGet, "/readyz", "", nil)
		return status == http.StatusOK
	})
	expectAuthenticated(t, dialToken(t, n, token), "alice")
}

// apiCall sends a server API request with no Content-Type and the given
// Authorization header (none when authz is empty).
func apiCall(t *testing.T, n *testnode.Node, method, path, body, authz string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

const authBearer = "Bearer " + authAPIKey

type mintedTicket struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
}

// mintTicket asks POST /tokens for a ticket, failing unless it gets one.
func mintTicket(t *testing.T, n *testnode.Node, body string) mintedTicket {
	t.Helper()
	status, resp, _ := apiCall(t, n, http.MethodPost, "/tokens", body, authBearer)
	if status != http.StatusOK {
		t.Fatalf("POST /tokens %s = %d %s", body, status, resp)
	}
	var m mintedTicket
	if err := json.Unmarshal([]byte(resp), &m); err != nil || m.Token == "" {
		t.Fatalf("POST /tokens answered %s: %v", resp, err)
	}
	return m
}

// TestTokensEndpoint: POST /tokens mints working tickets for the asked
// lifetime (RFC 3339 expiresAt), refuses what it must, and needs the key.
func TestTokensEndpoint(t *testing.T) {
	n := authNode(t, map[string]string{"TOKEN_TTL": "30s", "TOKEN_MAX_TTL": "2m"})

	t.Run("lifetimes", func(t *testing.T) {
		cases := []struct {
			body string
			ttl  time.Duration
		}{
			{`{"user":"alice"}`, 30 * time.Second},
			{`{"user":"alice","ttl":90}`, 90 * time.Second},
			{`{"user":"alice","ttl":120}`, 2 * time.Minute},
			{`{"user":"Zoë","ttl":1}`, time.Second},
		}
		for _, tc := range cases {
			t.Run(tc.body, func(t *testing.T) {
				before := time.Now()
				m := mintTicket(t, n, tc.body)
				after := time.Now()
				exp, err := time.Parse(time.RFC3339, m.ExpiresAt)
				if err != nil {
					t.Fatalf("expiresAt %q is not RFC 3339: %v", m.ExpiresAt, err)
				}
				if m.ExpiresAt != exp.UTC().Format(time.RFC3339) {
					t.Errorf("expiresAt %q is not RFC 3339 UTC in whole seconds", m.ExpiresAt)
				}
				if lo, hi := before.Add(tc.ttl).Add(-time.Second), after.Add(tc.ttl); exp.Before(lo) || exp.After(hi) {
					t.Errorf("expiresAt %s, want within [%s, %s]", exp, lo, hi)
				}
				var req struct{ User string }
				_ = json.Unmarshal([]byte(tc.body), &req)
				expectAuthenticated(t, dialToken(t, n, m.Token), req.User)
			})
		}
	})

	t.Run("with a JSON content type", func(t *testing.T) {
		status, body := n.Do(t, http.MethodPost, "/tokens", `{"user":"alice"}`,
			http.Header{"Authorization": {authBearer}, "Content-Type": {"application/json"}})
		if status != http.StatusOK {
			t.Fatalf("POST /tokens = %d %s", status, body)
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		for _, body := range []string{
			`{"user":"alice","ttl":121}`,
			`{"user":"alice","ttl":3600}`,
			`{"user":"alice","ttl":-1}`,
			// (60 + 2^55) seconds: time.Duration(ttl)*time.Second wraps
			// around to exactly 60s.
			`{"user":"alice","ttl":36028797018964028}`,
			`{"user":""}`,
			`{}`,
			`{"user":"` + strings.Repeat("x", 65) + `"}`,
			`{"user":"a\u0000b"}`,
			`{"user":"alice","rooms":[""]}`,
			`{"user":"alice","ttl":"60"}`,
			`not json`,
			``,
		} {
			if status, resp, _ := apiCall(t, n, http.MethodPost, "/tokens", body, authBearer); status != http.StatusBadRequest {
				t.Errorf("POST /tokens %s = %d %s, want 400", body, status, resp)
			}
		}
	})

	t.Run("API key", func(t *testing.T) {
		for _, authz := range []string{"", "Bearer wrong-key", "Bearer " + authAPIKey + "x", authAPIKey, "Basic " + authAPIKey, "Bearer"} {
			status, resp, _ := apiCall(t, n, http.MethodPost, "/tokens", `{"user":"alice"}`, authz)
			if status != http.StatusUnauthorized {
				t.Errorf("POST /tokens with Authorization %q = %d %s, want 401", authz, status, resp)
			}
		}
	})

	t.Run("open mode", func(t *testing.T) {
		open := testnode.StartMemory(t, testnode.Config(t, nil))
		if status, resp, _ := apiCall(t, open, http.MethodPost, "/tokens", `{"user":"alice"}`, ""); status != http.StatusNotImplemented {
			t.Errorf("POST /tokens in open mode = %d %s, want 501", status, resp)
		}
	})
}

// TestTicketRoomsClaim: a ticket's rooms claim limits the rooms the
// connection may join; without it any room is allowed.
func TestTicketRoomsClaim(t *testing.T) {
	n := authNode(t, nil)
	limited := map[string]func(t *testing.T) string{
		"minted": func(t *testing.T) string {
			return mintTicket(t, n, `{"user":"alice","rooms":["#allowed"]}`).Token
		},
		"signed by the backend": func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { c["rooms"] = []string{"#allowed"} })
		},
	}
	for name, token := range limited {
		t.Run(name, func(t *testing.T) {
			c := dialToken(t, n, token(t))
			expectAuthenticated(t, c, "alice")
			c.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#other"})
			c.ExpectError(protocol.ChannelChatRoom, protocol.CodeForbidden)
			c.Join("#allowed", "alice", "alice")
			c.Say("#allowed", "in")
			c.ExpectRoomMessage("#allowed", "alice", "in")
			c.Say("#other", "out")
			c.ExpectError(protocol.ChannelChatRoom, protocol.CodeNotMember)
			c.Send(protocol.ChannelChatRoom, protocol.TypeLeaveRoom, protocol.RoomRef{Room: "#allowed"})
			c.ExpectRoomUser(protocol.TypeLeftRoom, "#allowed", "alice")
			c.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#other"})
			c.ExpectError(protocol.ChannelChatRoom, protocol.CodeForbidden)
		})
	}
	// An empty rooms list allows no room at all; it must not be dropped
	// from the ticket, which would allow every room.
	emptyRooms := map[string]func(t *testing.T) string{
		"minted with no rooms": func(t *testing.T) string {
			return mintTicket(t, n, `{"user":"alice","rooms":[]}`).Token
		},
		"signed by the backend with no rooms": func(t *testing.T) string {
			return hsClaims(t, func(c jwt.MapClaims) { c["rooms"] = []string{} })
		},
	}
	for name, token := range emptyRooms {
		t.Run(name, func(t *testing.T) {
			c := dialToken(t, n, token(t))
			expectAuthenticated(t, c, "alice")
			c.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#any"})
			c.ExpectError(protocol.ChannelChatRoom, protocol.CodeForbidden)
		})
	}
	t.Run("no rooms claim", func(t *testing.T) {
		c := dialToken(t, n, mintTicket(t, n, `{"user":"bob"}`).Token)
		expectAuthenticated(t, c, "bob")
		c.Join("#other", "bob", "bob")
		c.Join("#allowed", "bob", "bob")
	})
}

// TestTicketNamesTheUser: the ticket's sub is the user everyone sees;
// ?user= cannot override it in authenticated mode.
func TestTicketNamesTheUser(t *testing.T) {
	n := authNode(t, nil)
	alice := wstest.Dial(t, n.WS()+"?user=mallory&token="+url.QueryEscape(hsTicket(t, "alice")))
	expectAuthenticated(t, alice, "alice")
	// An invalid ?user= is not even looked at.
	bob := wstest.Dial(t, n.WS()+"?user=%00&token="+url.QueryEscape(hsTicket(t, "bob")))
	expectAuthenticated(t, bob, "bob")
	carol := wstest.Dial(t, n.WS()+"?user=mallory")
	carol.Send(protocol.ChannelSession, protocol.TypeAuthenticate, protocol.Authenticate{Token: hsTicket(t, "carol")})
	expectAuthenticated(t, carol, "carol")

	alice.Join("#names", "alice", "alice")
	bob.Join("#names", "bob", "alice", "bob")
	alice.ExpectRoomUser(protocol.TypeJoinedRoom, "#names", "bob")
	carol.Join("#names", "carol", "alice", "bob", "carol")
	alice.ExpectRoomUser(protocol.TypeJoinedRoom, "#names", "carol")
	bob.ExpectRoomUser(protocol.TypeJoinedRoom, "#names", "carol")

	bob.Say("#names", "hi from bob")
	for _, c := range []*wstest.Client{alice, bob, carol} {
		c.ExpectRoomMessage("#names", "bob", "hi from bob")
	}
	carol.Say("#names", "hi from carol")
	for _, c := range []*wstest.Client{alice, bob, carol} {
		c.ExpectRoomMessage("#names", "carol", "hi from carol")
	}
	bob.Send(protocol.ChannelChatRoom, protocol.TypeLeaveRoom, protocol.RoomRef{Room: "#names"})
	for _, c := range []*wstest.Client{alice, bob, carol} {
		c.ExpectRoomUser(protocol.TypeLeftRoom, "#names", "bob")
	}
	carol.Close()
	alice.ExpectRoomUser(protocol.TypeLeftRoom, "#names", "carol")
}

// waitAdmitted waits until the server serves c (frames are read only once the
// connection is admitted and subscribed to its inbox).
func waitAdmitted(t *testing.T, c *wstest.Client) {
	t.Helper()
	c.Expect(protocol.ChannelSession, protocol.TypeAuthenticated) // sent once subscribed
}

// expectInbox expects the inbox Message POST /message sends, exactly.
func expectInbox(t *testing.T, c *wstest.Client, content, typ string) {
	t.Helper()
	f := c.Expect(protocol.ChannelInbox, protocol.TypeInboxMessage)
	var env struct {
		Channel string `json:"channel"`
		Message struct {
			Type     string                     `json:"type"`
			Contents map[string]json.RawMessage `json:"contents"`
		} `json:"message"`
	}
	if err := json.Unmarshal(f.Raw, &env); err != nil {
		t.Fatalf("inbox frame %s: %v", f, err)
	}
	keys := slices.Sorted(maps.Keys(env.Message.Contents))
	want := []string{"content", "postedAt", "type"}
	if typ == "" {
		want = []string{"content", "postedAt"}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("inbox contents have %v, want %v: %s", keys, want, f)
	}
	var m protocol.InboxMessage
	f.Decode(t, &m)
	if m.Content != content || m.Type != typ {
		t.Errorf("inbox message %+v, want content %q type %q", m, content, typ)
	}
	posted, err := time.Parse(time.RFC3339Nano, m.PostedAt)
	if err != nil || time.Since(posted).Abs() > time.Minute {
		t.Errorf("postedAt %q is not a current RFC 3339 time: %v", m.PostedAt, err)
	}
}

// postMessage sends POST /message with no Content-Type.
func postMessage(t *testing.T, n *testnode.Node, body, authz string) (int, string) {
	t.Helper()
	status, resp, _ := apiCall(t, n, http.MethodPost, "/message", body, authz)
	return status, resp
}

func expectNodes(t *testing.T, n *testnode.Node, body, authz string, nodes int) {
	t.Helper()
	status, resp := postMessage(t, n, body, authz)
	if status != http.StatusAccepted || strings.TrimSpace(resp) != `{"nodes":`+strconv.Itoa(nodes)+`}` {
		t.Fatalf("POST /message %s = %d %s, want 202 {\"nodes\":%d}", body, status, resp, nodes)
	}
}

// TestMessageToUserAcrossNodes: POST /message reaches every socket of one
// user on every node, and nobody else.
func TestMessageToUserAcrossNodes(t *testing.T) {
	d, _ := singleRedis(t)
	const hi = `{"username":"test-user","content":"hi there","type":"greeting"}`

	t.Run("open mode", func(t *testing.T) {
		ns := d.nodes(t, 2, nil)
		u1 := wstest.Dial(t, ns[0].WS()+"?user=test-user")
		u2 := wstest.Dial(t, ns[1].WS()+"?user=test-user")
		u3 := wstest.Dial(t, ns[1].WS()+"?user=test-user") // a second tab on the same node
		other := wstest.Dial(t, ns[0].WS()+"?user=other-user")
		anon := wstest.Dial(t, ns[1].WS())
		everyone := []*wstest.Client{u1, u2, u3, other, anon}
		for _, c := range everyone {
			waitAdmitted(t, c)
		}

		expectNodes(t, ns[0], hi, "", 2)
		for _, c := range []*wstest.Client{u1, u2, u3} {
			expectInbox(t, c, "hi there", "greeting")
		}
		other.Barrier()
		anon.Barrier()

		expectNodes(t, ns[1], `{"username":"test-user","content":"untyped"}`, "", 2)
		for _, c := range []*wstest.Client{u1, u2, u3} {
			expectInbox(t, c, "untyped", "")
		}
		expectNodes(t, ns[0], `{"username":"nobody","content":"hi there","type":"greeting"}`, "", 0)

		for _, body := range []string{
			`not json`,
			``,
			`[]`,
			`{"username":"test-user"}`,
			`{"username":"test-user","content":5}`,
			`{"username":"","content":"x"}`,
			`{"content":"x"}`,
			`{"username":"` + strings.Repeat("x", 65) + `","content":"x"}`,
		} {
			if status, resp := postMessage(t, ns[0], body, ""); status != http.StatusBadRequest {
				t.Errorf("POST /message %s = %d %s, want 400", body, status, resp)
			}
		}
		for _, c := range everyone {
			c.Barrier()
		}

		// Once node two holds no socket of the user, only node one is
		// reached.
		u2.Close()
		u3.Close()
		wait.For(t, converge, "node two unsubscribes the user", func() bool {
			status, resp := postMessage(t, ns[1], hi, "")
			return status == http.StatusAccepted && strings.TrimSpace(resp) == `{"nodes":1}`
		})
	})

	t.Run("authenticated mode", func(t *testing.T) {
		ns := d.nodes(t, 2, authEnv(nil))
		u1 := dialToken(t, ns[0], hsTicket(t, "test-user"))
		u2 := dialAuthenticate(t, ns[1], hsTicket(t, "test-user"))
		other := dialToken(t, ns[1], hsTicket(t, "other-user"))
		expectAuthenticated(t, u1, "test-user")
		expectAuthenticated(t, u2, "test-user")
		expectAuthenticated(t, other, "other-user")

		for _, authz := range []string{"", "Bearer wrong", authAPIKey} {
			if status, resp := postMessage(t, ns[0], hi, authz); status != http.StatusUnauthorized {
				t.Errorf("POST /message with Authorization %q = %d %s, want 401", authz, status, resp)
			}
		}
		for _, c := range []*wstest.Client{u1, u2, other} {
			c.Barrier()
		}
		expectNodes(t, ns[1], hi, authBearer, 2)
		expectInbox(t, u1, "hi there", "greeting")
		expectInbox(t, u2, "hi there", "greeting")
		other.Barrier()
		expectNodes(t, ns[0], `{"username":"nobody","content":"x"}`, authBearer, 0)
		if status, resp := postMessage(t, ns[0], `{"username":"test-user"}`, authBearer); status != http.StatusBadRequest {
			t.Errorf("POST /message without content = %d %s, want 400", status, resp)
		}
	})
}

// apiEndpoints are the server API's routes, with a request each that
// succeeds given the key.
var apiEndpoints = []struct {
	method, path, body string
}{
	{http.MethodGet, "/ping1", ""},
	{http.MethodPost, "/ping1", ""},
	{http.MethodGet, "/ping2", ""},
	{http.MethodPost, "/ping2", ""},
	{http.MethodPost, "/message", `{"username":"nobody","content":"x"}`},
	{http.MethodPost, "/tokens", `{"user":"alice"}`},
	{http.MethodGet, "/rooms/%23r/messages", ""},
}

// TestServerAPIKey: with SERVER_API_KEY set, every server API route needs
// it; health checks and the WebSocket endpoint do not.
func TestServerAPIKey(t *testing.T) {
	modes := []struct {
		name   string
		env    map[string]string
		tokens int // POST /tokens with the key
	}{
		{"authenticated", authEnv(nil), http.StatusOK},
		{"open with a key", map[string]string{"SERVER_API_KEY": authAPIKey}, http.StatusNotImplemented},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			n := testnode.StartMemory(t, testnode.Config(t, mode.env))
			for _, e := range apiEndpoints {
				name := e.method + " " + e.path
				for _, authz := range []string{"", "Bearer wrong-key", "Bearer " + strings.ToUpper(authAPIKey), authAPIKey, "Basic " + authAPIKey, "Bearer  " + authAPIKey} {
					status, resp, header := apiCall(t, n, e.method, e.path, e.body, authz)
					if status != http.StatusUnauthorized {
						t.Errorf("%s with Authorization %q = %d %s, want 401", name, authz, status, resp)
					}
					if got := header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
						t.Errorf("%s 401 has WWW-Authenticate %q, want a Bearer challenge", name, got)
					}
				}
				want := http.StatusOK
				switch {
				case e.path == "/message":
					want = http.StatusAccepted
				case e.path == "/tokens":
					want = mode.tokens
				}
				if status, resp, _ := apiCall(t, n, e.method, e.path, e.body, authBearer); status != want {
					t.Errorf("%s with the key = %d %s, want %d", name, status, resp, want)
				}
			}
			for _, path := range []string{"/healthz", "/readyz"} {
				if status, resp, _ := apiCall(t, n, http.MethodGet, path, "", ""); status != http.StatusOK {
					t.Errorf("GET %s without a key = %d %s, want 200", path, status, resp)
				}
			}
			var c *wstest.Client
			if mode.env["JWT_SECRET"] != "" {
				c = dialToken(t, n, hsTicket(t, "alice"))
				expectAuthenticated(t, c, "alice")
			} else {
				c = wstest.Dial(t, n.WS()+"?user=alice")
			}
			expectWorks(t, c)
		})
	}
}

// TestOpenModeAPI: without SERVER_API_KEY the server API answers plain
// requests, as the original prototype did.
func TestOpenModeAPI(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	c := wstest.Dial(t, n.WS()+"?user=alice")
	waitAdmitted(t, c)
	for i, e := range []struct {
		method, path, body string
		status             int
		resp               string
	}{
		{http.MethodGet, "/ping1", "", http.StatusOK, `{"nodes":1,"ping":1}`},
		{http.MethodPost, "/ping2", "", http.StatusOK, `{"nodes":1,"ping":2}`},
		{http.MethodPost, "/message", `{"username":"alice","content":"hello"}`, http.StatusAccepted, `{"nodes":1}`},
		{http.MethodGet, "/rooms/%23r/messages", "", http.StatusOK, `{"room":"#r","messages":[],"complete":true}`},
		{http.MethodGet, "/healthz", "", http.StatusOK, `{"status":"ok"}`},
		{http.MethodPost, "/tokens", `{"user":"alice"}`, http.StatusNotImplemented, ""},
	} {
		status, resp, _ := apiCall(t, n, e.method, e.path, e.body, "")
		if status != e.status || (e.resp != "" && strings.TrimSpace(resp) != e.resp) {
			t.Errorf("%d: %s %s = %d %s, want %d %s", i, e.method, e.path, status, resp, e.status, e.resp)
		}
	}
	var ping int
	c.Expect(protocol.ChannelPing, protocol.TypePing).Decode(t, &ping)
	c.Expect(protocol.ChannelPing, protocol.TypePing).Decode(t, &ping)
	if ping != 2 {
		t.Errorf("second Ping = %d, want 2", ping)
	}
	expectInbox(t, c, "hello", "")
}

// writePublicKey writes pub as a PKIX "PUBLIC KEY" PEM file.
func writePublicKey(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ticket-key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPublicKeyMode: with JWT_PUBLIC_KEY the node accepts tickets signed
// with the matching private key in the key's algorithm only, and mints
// none.
func TestPublicKeyMode(t *testing.T) {
	rsaKey := authRSAKey()
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherEd, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name    string
		pub     any
		method  jwt.SigningMethod
		private any
		// The other asymmetric algorithm, refused.
		foreign    jwt.SigningMethod
		foreignKey any
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey, jwt.SigningMethodEdDSA, edPriv},
		{"EdDSA", edPub, jwt.SigningMethodEdDSA, edPriv, jwt.SigningMethodRS256, rsaKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keyFile := writePublicKey(t, tc.pub)
			pemBytes, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			n := testnode.StartMemory(t, testnode.Config(t, map[string]string{"JWT_PUBLIC_KEY": keyFile, "SERVER_API_KEY": authAPIKey}))
			for _, path := range ticketPaths {
				t.Run(path.name, func(t *testing.T) {
					c := path.dial(t, n, signTicket(t, tc.method, tc.private, ticketClaims("alice", time.Minute)))
					expectAuthenticated(t, c, "alice")
					expectWorks(t, c)

					refused := []struct{ what, token, reason string }{
						{"HS256", hsTicket(t, "alice"), `algorithm not allowed`},
						{"HS256 keyed with the public key", signTicket(t, jwt.SigningMethodHS256, pemBytes, ticketClaims("alice", time.Minute)), `algorithm not allowed`},
						{"none", signTicket(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, ticketClaims("alice", time.Minute)), `algorithm not allowed`},
						{tc.foreign.Alg(), signTicket(t, tc.foreign, tc.foreignKey, ticketClaims("alice", time.Minute)), `algorithm not allowed`},
					}
					if tc.name == "EdDSA" {
						refused = append(refused, struct{ what, token, reason string }{
							"another Ed25519 key", signTicket(t, jwt.SigningMethodEdDSA, otherEd, ticketClaims("alice", time.Minute)), "bad signature"})
					}
					for _, r := range refused {
						c := path.dial(t, n, r.token)
						code, reason := c.ExpectClose()
						if code != websocket.StatusPolicyViolation || reason != r.reason {
							t.Errorf("%s ticket: closed with %d %q, want 1008 %q", r.what, code, reason, r.reason)
						}
					}
				})
			}
			if status, resp, _ := apiCall(t, n, http.MethodPost, "/tokens", `{"user":"alice"}`, authBearer); status != http.StatusNotImplemented {
				t.Errorf("POST /tokens = %d %s, want 501", status, resp)
			}
			if status, resp, _ := apiCall(t, n, http.MethodPost, "/tokens", `{"user":"alice"}`, ""); status != http.StatusUnauthorized {
				t.Errorf("POST /tokens without the key = %d %s, want 401", status, resp)
			}
		})
	}
}
