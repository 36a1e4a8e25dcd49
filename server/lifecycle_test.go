package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// expectShutdownClose fails unless c's connection ends now, with nothing
// more received, by a 1001 close frame saying the server shuts down.
func expectShutdownClose(t *testing.T, c *wstest.Client) {
	t.Helper()
	c.ExpectNothing(wstest.Timeout) // returns at once when the connection ended
	code, reason := c.ExpectClose()
	if code != websocket.StatusGoingAway || reason != "server shutting down" {
		t.Errorf("closed with %d %q, want 1001 %q", code, reason, "server shutting down")
	}
}

// TestGracefulShutdown: stopping a node flushes what every connection has
// queued, closes each with 1001, returns well within SHUTDOWN_TIMEOUT and
// accepts nothing more.
func TestGracefulShutdown(t *testing.T) {
	const shutdownTimeout = 10 * time.Second
	n := startKnownNode(t, map[string]string{"SHUTDOWN_TIMEOUT": shutdownTimeout.String(), "RATE_LIMIT": "1000", "RATE_BURST": "1000",
		"RATE_BYTES": "1073741824", "RATE_BYTES_BURST": "1073741824", "MAX_CHAT_MESSAGE": "1048576"})
	a := wstest.Open(t, n.WS()+"?user=a")
	b := wstest.Open(t, n.WS()+"?user=b")
	c := wstest.Open(t, n.WS()+"?user=c")
	clients := []*wstest.Client{a, b, c}
	settle(t, clients...)

	// Queue traffic for everyone right before stopping. A connection's
	// frames are handled one after the other, each broadcast queued for
	// every connection before the next frame is read: once the frame after
	// the burst is answered, the whole burst is queued everywhere (seeing
	// its own copies proves nothing about the others'). /ping1 answers
	// once its Ping is queued for every connection.
	const burst = 20
	for i := range burst {
		a.Send("chat", "SubmitMessage", fmt.Sprintf("queued %d", i))
	}
	a.SendRaw(envelope("chat", "Barrier", `{}`))
	for i := range burst {
		expectChat(t, a, fmt.Sprintf("queued %d", i))
	}
	a.ExpectError("chat", protocol.CodeUnknownType)
	if status, body := n.Do(t, http.MethodGet, "/ping1", "", nil); status != http.StatusOK {
		t.Fatalf("GET /ping1 = %d %s", status, body)
	}

	took := n.Stop(t)
	if took > shutdownTimeout/2 {
		t.Errorf("shutdown took %s with every client answering; SHUTDOWN_TIMEOUT is %s", took, shutdownTimeout)
	}
	t.Logf("shutdown took %s", took)

	for _, cl := range []*wstest.Client{b, c} {
		for i := range burst {
			expectChat(t, cl, fmt.Sprintf("queued %d", i))
		}
	}
	for _, cl := range clients {
		var ping int
		cl.Expect("ping", "Ping").Decode(t, &ping)
		if ping != 1 {
			t.Errorf("Ping %d, want 1", ping)
		}
		expectShutdownClose(t, cl)
	}

	if _, resp, err := wstest.DialErr(t, n.WS(), nil); err == nil {
		t.Errorf("a connection was accepted after shutdown")
	} else if resp != nil {
		t.Errorf("handshake after shutdown answered %d, want the connection refused", resp.StatusCode)
	}
}

// TestShutdownDoesNotWaitForStuckClients: a client whose TCP buffers are
// full (its writer is blocked) delays shutdown by SHUTDOWN_TIMEOUT at most,
// and the others are still closed with 1001.
func TestShutdownDoesNotWaitForStuckClients(t *testing.T) {
	s := startSlowConsumer(t, "1m") // SHUTDOWN_TIMEOUT 2s; the slow client's write is stuck for a minute
	const shutdownTimeout = 2 * time.Second
	took := s.n.Stop(t)
	if took > shutdownTimeout+5*time.Second {
		t.Errorf("shutdown took %s, SHUTDOWN_TIMEOUT is %s", took, shutdownTimeout)
	}
	t.Logf("shutdown took %s", took)
	expectShutdownClose(t, s.fast)
	if code, reason := s.sender.ExpectClose(); code != websocket.StatusGoingAway { // after its own burst
		t.Errorf("sender closed with %d %q, want 1001", code, reason)
	}
}

// TestKeepAlive: a connection that does not answer pings is dropped after
// about WS_TIMEOUT; one that reads (and so answers) stays as long as it
// likes.
func TestKeepAlive(t *testing.T) {
	// Not less: the reading client's pong must come back within half of
	// it, even on a loaded 2-core machine running the race detector (1s
	// was seen to miss).
	const wsTimeout = 2 * time.Second
	n := startKnownNode(t, map[string]string{"WS_TIMEOUT": wsTimeout.String()})
	alive := wstest.Open(t, n.WS()+"?user=alive")
	mute := dialRaw(t, n.WS()+"?user=mute")
	waitConnections(t, n, 2, wstest.Timeout)

	waitConnections(t, n, 1, 10*wsTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), wstest.Timeout)
	defer cancel()
	for {
		_, data, err := mute.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Errorf("dropped connection still open: %v", err)
			}
			break
		}
		// The greeting was written before the client went mute.
		if !strings.Contains(string(data), `"Authenticated"`) {
			t.Errorf("dropped connection still delivered %q", data)
		}
	}

	// Time passing is what is tested here (several ping rounds, which
	// the server sends on its own clock): no barrier can stand in for it.
	alive.ExpectNothing(3 * wsTimeout)
	if got := n.Server.Connections(); got != 1 {
		t.Fatalf("node holds %d connections after %s, want the reading client's 1", got, 3*wsTimeout)
	}
	// A pong is a sign of life: the silent but present client is pinged
	// about once per second (WS_TIMEOUT less the 1 s pong wait), once its
	// last ping is answered, not again while one is in flight. Over the
	// whole test (≈ 4 × WS_TIMEOUT) that is 8 or so, plus the mute
	// client's one.
	status, body := n.Do(t, http.MethodGet, "/metrics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", status)
	}
	var pings float64
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "switchboard_keepalive_pings_total "); ok {
			pings, _ = strconv.ParseFloat(v, 64)
		}
	}
	t.Logf("%v keep-alive pings", pings)
	if pings < 4 || pings > 14 {
		t.Errorf("%v keep-alive pings over about %s, want one per second of silence", pings, 4*wsTimeout)
	}
	chatRoundTrip(t, alive, "still alive")
}

// TestOriginCheck: browsers' cross-site handshakes are refused unless
// ALLOWED_ORIGINS lists the origin; same-origin pages and clients that send
// no Origin (curl, Postman, servers) are accepted.
func TestOriginCheck(t *testing.T) {
	const sameOrigin = "<same origin>" // replaced by http://<the node's host:port>
	allowed := map[string]string{"ALLOWED_ORIGINS": "app.example.com, *.example.org"}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		origin string // "" sends no Origin header
		ok     bool
	}{
		{name: "no Origin", origin: "", ok: true},
		{name: "same origin", origin: sameOrigin, ok: true},
		{name: "foreign origin", origin: "http://evil.example", ok: false},
		{name: "same host, other port", origin: "http://127.0.0.1:1", ok: false},
		{name: "opaque origin", origin: "null", ok: false},
		{name: "allowed origin", env: allowed, origin: "http://app.example.com", ok: true},
		{name: "allowed origin over https", env: allowed, origin: "https://app.example.com", ok: true},
		{name: "allowed by wildcard", env: allowed, origin: "https://www.example.org", ok: true},
		{name: "subdomain of an allowed origin", env: allowed, origin: "http://evil.app.example.com", ok: false},
		{name: "foreign origin with ALLOWED_ORIGINS", env: allowed, origin: "http://evil.example", ok: false},
		{name: "same origin with ALLOWED_ORIGINS", env: allowed, origin: sameOrigin, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startKnownNode(t, tc.env)
			var header http.Header
			if origin := tc.origin; origin != "" {
				if origin == sameOrigin {
					origin = n.URL
				}
				header = http.Header{"Origin": {origin}}
			}
			c, resp, err := wstest.DialErr(t, n.WS()+"?user=o", header)
			if !tc.ok {
				if err == nil {
					t.Fatalf("handshake with Origin %q accepted", tc.origin)
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("handshake with Origin %q refused with %v (response %v), want 403", tc.origin, err, resp)
				}
				if got := n.Server.Connections(); got != 0 {
					t.Errorf("node holds %d connections after a refused handshake", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake with Origin %q refused: %v", tc.origin, err)
			}
			c.Expect("session", "Authenticated")
			chatRoundTrip(t, c, "hello from "+strings.TrimPrefix(tc.origin, "http://"))
		})
	}
}
