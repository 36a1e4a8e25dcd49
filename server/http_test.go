package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/server"
)

// rawConn opens a plain TCP connection to the node behind url.
func rawConn(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d (reading and
// discarding whatever it sends first).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// TestSlowHTTPClientsAreCut: idle keep-alive connections and request
// bodies that trickle in are dropped after the HTTP timeouts, so they
// cannot hold a node's file descriptors for minutes.
func TestSlowHTTPClientsAreCut(t *testing.T) {
	n := startNode(t, map[string]string{
		"HTTP_READ_TIMEOUT": "300ms", "HTTP_IDLE_TIMEOUT": "300ms", "SERVER_API_KEY": "key",
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := rawConn(t, n.URL)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz: %v %v", resp, err)
		}
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("an idle keep-alive connection was kept past HTTP_IDLE_TIMEOUT")
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c := rawConn(t, n.URL)
		head := "POST /message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer key\r\nContent-Length: 100000\r\n\r\n{"
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("a body that never finished arriving held the connection past HTTP_READ_TIMEOUT")
		}
	})
	t.Run("wrong key refused before the body", func(t *testing.T) {
		c := rawConn(t, n.URL)
		head := "POST /message HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 100000\r\n\r\n{"
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond)) // before the read timeout
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer before the body arrived: %v", err)
		}
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Fatalf("answered %d (close %v), want 401 and the connection closed", resp.StatusCode, resp.Close)
		}
	})
	t.Run("oversized body", func(t *testing.T) {
		body := `{"username":"u","content":"` + strings.Repeat("x", 2<<20) + `"}`
		status, _ := n.Do(t, http.MethodPost, "/message", body, http.Header{"Authorization": {"Bearer key"}})
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("a 2 MiB body was answered %d, want 413", status)
		}
	})
}

// TestWebSocketsOutliveHTTPTimeouts: the HTTP timeouts never apply to an
// upgraded connection.
func TestWebSocketsOutliveHTTPTimeouts(t *testing.T) {
	n := startNode(t, map[string]string{"HTTP_READ_TIMEOUT": "100ms", "HTTP_WRITE_TIMEOUT": "100ms", "HTTP_IDLE_TIMEOUT": "100ms"})
	a := wstest.Open(t, n.WS())
	time.Sleep(500 * time.Millisecond) // several times every HTTP timeout: the socket must not notice
	a.Send("chat", "SubmitMessage", "still here")
	a.Expect("chat", "NewMessageReceived")
}

// TestSideListeners: METRICS_ADDR takes /metrics off the main port, and
// PPROF_ADDR serves the profiler only there.
func TestSideListeners(t *testing.T) {
	n := startNode(t, map[string]string{"METRICS_ADDR": "127.0.0.1:1", "PPROF_ADDR": "127.0.0.1:2"})
	if status, _ := n.Do(t, http.MethodGet, "/metrics", "", nil); status != http.StatusNotFound {
		t.Errorf("/metrics on the main port = %d, want 404 with METRICS_ADDR set", status)
	}
	if status, _ := n.Do(t, http.MethodGet, "/debug/pprof/", "", nil); status == http.StatusOK {
		t.Error("the profiler answered on the main port")
	}
	sides := n.Server.Sides()
	if len(sides) != 2 {
		t.Fatalf("sides = %v, want metrics and pprof", sides)
	}
	for _, side := range sides {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- server.ServeSide(ctx, ln, side.Handler, slog.New(slog.DiscardHandler)) }()
		path := map[string]string{"metrics": "/metrics", "pprof": "/debug/pprof/"}[side.Name]
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s side listener: %d %q", side.Name, resp.StatusCode, body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s side listener: %v", side.Name, err)
		}
	}
}

// TestInvalidUTF8Closes1007: a frame that is not valid UTF-8 ends the
// connection with 1007 (RFC 6455 §8.1), text or binary; nothing of it is
// rewritten, stored or broadcast.
func TestInvalidUTF8Closes1007(t *testing.T) {
	n := startNode(t, nil)
	watcher := wstest.Open(t, n.WS())
	for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
		c := wstest.Open(t, n.WS())
		c.SendBytes(typ, []byte("{\"channel\":\"chat\",\"message\":{\"type\":\"SubmitMessage\",\"contents\":\"bad \xff byte\"}}"))
		if code, reason := c.ExpectClose(); code != websocket.StatusInvalidFramePayloadData || reason != "frame is not valid UTF-8" {
			t.Errorf("%v frame: closed with %d %q, want 1007", typ, code, reason)
		}
	}
	watcher.Barrier() // nothing was broadcast
	watcher.Send("chat", "GetHistory", nil)
	var h struct {
		Messages []any `json:"messages"`
	}
	watcher.Expect("chat", "History").Decode(t, &h)
	if len(h.Messages) != 0 {
		t.Errorf("history holds %d messages, want none", len(h.Messages))
	}
}
