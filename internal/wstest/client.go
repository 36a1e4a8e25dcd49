// Package wstest adapts the Go client (package client) to tests: every
// wait is bounded by Timeout and every failure fails the test.
package wstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/protocol"
)

// Timeout bounds every wait of a Client.
var Timeout = 10 * time.Second

// maxQueued bounds the frames a test client holds before it takes them:
// large-room tests let thousands of frames pile up before reading them.
const maxQueued = 512 << 20

// Frame is one received envelope, with its contents raw.
type Frame struct {
	Channel  string
	Ref      string // the ref echoed from the request this frame answers
	Type     string
	Contents json.RawMessage
	Raw      []byte
}

// Decode unmarshals the frame's contents into dst, failing the test on error.
func (f Frame) Decode(t testing.TB, dst any) {
	t.Helper()
	if err := json.Unmarshal(f.Contents, dst); err != nil {
		t.Fatalf("decode %s/%s contents %s: %v", f.Channel, f.Type, f.Contents, err)
	}
}

// String returns the raw frame.
func (f Frame) String() string { return string(f.Raw) }

// Client is a connected test client over a client.Conn, which reads every
// frame into a queue in the order received, so that tests can wait for
// one or assert there is none. It is used from one goroutine at a time,
// the test's, except Conn, whose methods may be called from any.
type Client struct {
	t testing.TB
	c *client.Conn
	// Conn reaches below the envelope protocol, for tests of the
	// WebSocket itself: raw writes, pings, closes with a code.
	Conn Transport
}

// Transport is a Client's WebSocket, with the method set of the
// websocket.Conn calls tests make on it, served by client.Conn.
type Transport struct{ c *client.Conn }

// Write writes p unchanged as one message of type typ.
func (tr Transport) Write(ctx context.Context, typ websocket.MessageType, p []byte) error {
	return tr.c.WriteFrame(ctx, typ, p)
}

// Ping sends a WebSocket ping and waits for its pong.
func (tr Transport) Ping(ctx context.Context) error { return tr.c.Ping(ctx) }

// Close closes the connection with code and reason.
func (tr Transport) Close(code websocket.StatusCode, reason string) error {
	return tr.c.CloseWith(code, reason)
}

// CloseNow drops the connection without the closing handshake.
func (tr Transport) CloseNow() error { return tr.c.CloseNow() }

// Dial connects to a ws:// URL, failing the test on error. It does not
// wait for the greeting: the first frame Next returns is the server's
// session/Authenticated, or the refusal of an unauthenticated connection.
// The client is closed when the test ends.
func Dial(t testing.TB, url string) *Client {
	t.Helper()
	c, _, err := DialErr(t, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

// Connect dials like Dial and waits for the server's session/Authenticated
// greeting, which must be the first frame, after which the connection
// receives every broadcast. It returns the client and the greeting (the
// connection's user and id).
func Connect(t testing.TB, url string) (*Client, protocol.Authenticated) {
	t.Helper()
	c := Dial(t, url)
	var hello protocol.Authenticated
	c.Expect(protocol.ChannelSession, protocol.TypeAuthenticated).Decode(t, &hello)
	return c, hello
}

// Open is Connect for tests that need only the client.
func Open(t testing.TB, url string) *Client {
	t.Helper()
	c, _ := Connect(t, url)
	return c
}

// DialErr connects like Dial with optional headers, returning the error
// instead of failing, and, when the server refused the upgrade, its HTTP
// response (nil otherwise).
func DialErr(t testing.TB, url string, header http.Header) (*Client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	conn, err := client.Dial(ctx, url, client.Options{HTTPHeader: header, SkipGreeting: true, MaxQueuedBytes: maxQueued})
	if err != nil {
		var he *client.HandshakeError
		if errors.As(err, &he) {
			return nil, he.Response, err
		}
		return nil, nil, err
	}
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &Client{t: t, c: conn, Conn: Transport{conn}}, nil, nil
}

// SendRaw writes one text frame.
func (c *Client) SendRaw(frame string) {
	c.t.Helper()
	c.SendBytes(websocket.MessageText, []byte(frame))
}

// SendBytes writes one frame of the given type.
func (c *Client) SendBytes(typ websocket.MessageType, frame []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.c.WriteFrame(ctx, typ, frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Send writes an envelope.
func (c *Client) Send(channel, typ string, contents any) {
	c.t.Helper()
	c.SendRef(channel, "", typ, contents)
}

// SendRef writes an envelope carrying a ref.
func (c *Client) SendRef(channel, ref, typ string, contents any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := c.c.SendRef(ctx, ref, channel, typ, contents); err != nil {
		c.t.Fatalf("send %s/%s: %v", channel, typ, err)
	}
}

// next waits up to d for the next frame. It returns the reason the
// connection ended (ok false) once every frame received before was taken,
// and fails the test if neither comes in time.
func (c *Client) next(d time.Duration, what string) (f Frame, ok bool, end error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cf, err := c.c.Next(ctx)
	switch {
	case err == nil:
		return Frame{Channel: cf.Channel, Ref: cf.Ref, Type: cf.Type, Contents: cf.Contents, Raw: cf.Raw}, true, nil
	case ctx.Err() != nil:
		c.t.Fatalf("no %s within %s", what, d)
	}
	return Frame{}, false, err
}

// Next returns the next frame, failing the test if none comes in time.
func (c *Client) Next() Frame {
	c.t.Helper()
	f, ok, end := c.next(Timeout, "frame")
	if !ok {
		c.t.Fatalf("connection ended while waiting for a frame: %v", end)
	}
	return f
}

// NextOrClose returns the next frame, or false once the connection has
// ended (ExpectClose then tells how), failing the test if neither comes in
// time.
func (c *Client) NextOrClose() (Frame, bool) {
	c.t.Helper()
	f, ok, _ := c.next(Timeout, "frame and no close")
	return f, ok
}

// Expect returns the next frame and fails unless it has the channel and type.
func (c *Client) Expect(channel, typ string) Frame {
	c.t.Helper()
	f := c.Next()
	if f.Channel != channel || f.Type != typ {
		c.t.Fatalf("got %s, want %s/%s", f, channel, typ)
	}
	return f
}

// ExpectError returns the next frame's error contents and fails unless it
// is an Error on channel with code.
func (c *Client) ExpectError(channel string, code protocol.Code) protocol.Error {
	c.t.Helper()
	var e protocol.Error
	c.Expect(channel, protocol.TypeError).Decode(c.t, &e)
	if e.Code != code {
		c.t.Fatalf("got error %q (%s), want %q", e.Code, e.Message, code)
	}
	return e
}

// WaitFor skips frames until one has the channel and type, failing if none
// comes in time.
func (c *Client) WaitFor(channel, typ string) Frame {
	c.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		f, ok, end := c.next(time.Until(deadline), channel+"/"+typ)
		if !ok {
			c.t.Fatalf("connection ended while waiting for %s/%s: %v", channel, typ, end)
		}
		if f.Channel == channel && f.Type == typ {
			return f
		}
	}
}

// ExpectNothing fails if a frame arrives within d. It can pass by luck
// (the frame may come just after d): prefer Barrier, or a later frame the
// client must receive, and keep it only where no such frame exists.
func (c *Client) ExpectNothing(d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if f, err := c.c.Next(ctx); err == nil {
		c.t.Fatalf("unexpected frame %s", f)
	}
}

// ExpectClose waits for the connection to end, skipping any frames before,
// and returns the close status and reason the server sent (-1 and the
// error when it ended otherwise), failing if it does not end in time.
func (c *Client) ExpectClose() (websocket.StatusCode, string) {
	c.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		_, ok, end := c.next(time.Until(deadline), "close")
		if ok {
			continue
		}
		var ce websocket.CloseError
		if errors.As(end, &ce) {
			return ce.Code, ce.Reason
		}
		return -1, fmt.Sprint(end)
	}
}

// Close closes the connection normally and waits for its reader to end.
func (c *Client) Close() {
	_ = c.c.Close()
}

// WSURL turns an http:// base URL into the ws:// URL of /websockets.
func WSURL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http") + "/websockets"
}

// Barrier sends a frame the server answers with an Error (an unknown type
// on the ping channel) and expects that answer as the very next frame.
// Frames are written to a client in the order they were queued, so any
// frame queued for it before the answer would come first and fail the
// test: a synchronised "nothing else arrived". The connection must be
// admitted (authenticated, when the server requires it).
func (c *Client) Barrier() {
	c.t.Helper()
	c.Send(protocol.ChannelPing, "Barrier", nil)
	c.ExpectError(protocol.ChannelPing, protocol.CodeUnknownType)
}
