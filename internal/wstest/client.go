// Package wstest is a WebSocket test client speaking Switchboard's
// envelope protocol, for end-to-end tests against real servers.
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

	"github.com/switchboard/switchboard/protocol"
)

// Timeout bounds every wait of a Client.
var Timeout = 10 * time.Second

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

func (f Frame) String() string { return string(f.Raw) }

// Client is a connected test client. A background goroutine reads frames
// into a buffer so that tests can wait for one or assert there is none.
type Client struct {
	t      testing.TB
	Conn   *websocket.Conn
	frames chan Frame
	done   chan struct{}
	// Closed holds the error that ended reading (a websocket.CloseError
	// when the server closed the connection).
	closeErr error
}

// Dial connects to a ws:// URL, failing the test on error. The client is
// closed when the test ends.
func Dial(t testing.TB, url string) *Client {
	t.Helper()
	c, _, err := DialErr(t, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

// Connect dials like Dial and waits for the server's session/Authenticated
// greeting, after which the connection receives every broadcast. It
// returns the client and the greeting (the connection's user and id).
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
// and the HTTP response instead of failing.
func DialErr(t testing.TB, url string, header http.Header) (*Client, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(16 << 20)
	c := &Client{t: t, Conn: conn, frames: make(chan Frame, 100000), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { _ = conn.CloseNow(); <-c.done })
	return c, resp, nil
}

func (c *Client) read() {
	defer close(c.done)
	defer close(c.frames)
	for {
		_, data, err := c.Conn.Read(context.Background())
		if err != nil {
			c.closeErr = err
			return
		}
		var env protocol.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			c.closeErr = fmt.Errorf("server sent a non-envelope frame %q: %w", data, err)
			return
		}
		c.frames <- Frame{Channel: env.Channel, Ref: env.Ref, Type: env.Message.Type, Contents: env.Message.Contents, Raw: data}
	}
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
	if err := c.Conn.Write(ctx, typ, frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Send writes an envelope.
func (c *Client) Send(channel, typ string, contents any) {
	c.t.Helper()
	c.SendBytes(websocket.MessageText, protocol.Encode(channel, typ, contents))
}

// SendRef writes an envelope carrying a ref.
func (c *Client) SendRef(channel, ref, typ string, contents any) {
	c.t.Helper()
	c.SendBytes(websocket.MessageText, protocol.EncodeReply(channel, ref, typ, contents))
}

// Next returns the next frame, failing the test if none comes in time.
func (c *Client) Next() Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("connection ended while waiting for a frame: %v", c.closeErr)
		}
		return f
	case <-time.After(Timeout):
		c.t.Fatalf("no frame within %s", Timeout)
	}
	return Frame{}
}

// NextOrClose returns the next frame, or false once the connection has
// ended (ExpectClose then tells how), failing the test if neither comes in
// time.
func (c *Client) NextOrClose() (Frame, bool) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		return f, ok
	case <-time.After(Timeout):
		c.t.Fatalf("no frame and no close within %s", Timeout)
	}
	return Frame{}, false
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
	deadline := time.After(Timeout)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection ended while waiting for %s/%s: %v", channel, typ, c.closeErr)
			}
			if f.Channel == channel && f.Type == typ {
				return f
			}
		case <-deadline:
			c.t.Fatalf("no %s/%s within %s", channel, typ, Timeout)
		}
	}
}

// ExpectNothing fails if a frame arrives within d. It can pass by luck
// (the frame may come just after d): prefer Barrier, or a later frame the
// client must receive, and keep it only where no such frame exists.
func (c *Client) ExpectNothing(d time.Duration) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame %s", f)
		}
	case <-time.After(d):
	}
}

// ExpectClose waits for the server to close the connection and returns the
// close status and reason, failing if frames other than allowed types
// arrive first or it does not close in time.
func (c *Client) ExpectClose() (websocket.StatusCode, string) {
	c.t.Helper()
	deadline := time.After(Timeout)
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			var ce websocket.CloseError
			if errors.As(c.closeErr, &ce) {
				return ce.Code, ce.Reason
			}
			return -1, fmt.Sprint(c.closeErr)
		case <-deadline:
			c.t.Fatalf("connection not closed within %s", Timeout)
			return 0, ""
		}
	}
}

// Close closes the connection normally.
func (c *Client) Close() {
	_ = c.Conn.Close(websocket.StatusNormalClosure, "")
	<-c.done
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
