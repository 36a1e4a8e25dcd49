package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/protocol"
)

// ErrClosed is returned by a Conn's methods after Close, and by Next once
// the frames received before Close have been taken.
var ErrClosed = errors.New("client: connection closed")

// ErrSlowReader ends a connection whose received frames waited in its queue
// past Options.MaxQueuedBytes because Next was not called often enough.
var ErrSlowReader = errors.New("client: frames not taken by Next fast enough")

// Options configure Dial. The zero value dials an open-mode server
// anonymously (name the user with ?user= in the URL).
type Options struct {
	// Token is a ticket sent as the connection's first frame
	// (session/Authenticate). Empty: none is sent.
	Token string
	// GetToken, when set, is called on every dial for a fresh ticket and
	// wins over Token. Tickets are single-use, so a Reconnecting client in
	// authenticated mode needs it.
	GetToken func(ctx context.Context) (string, error)
	// HTTPHeader is sent with the WebSocket handshake (e.g. Origin).
	HTTPHeader http.Header
	// HTTPClient performs the handshake; nil means http.DefaultClient.
	HTTPClient *http.Client
	// ReadLimit is the largest frame accepted from the server, in bytes.
	// Default 16 MiB.
	ReadLimit int64
	// MaxQueuedBytes bounds the frames received but not yet taken by Next;
	// past it the connection is closed with ErrSlowReader, as the server
	// drops its own slow clients. Default 64 MiB.
	MaxQueuedBytes int
	// SkipGreeting makes Dial return as soon as the WebSocket is open (and
	// the Token, if any, written) instead of waiting for the
	// session/Authenticated greeting, which Next then returns like any
	// other frame, in its place. User and ConnectionID stay empty and the
	// typed requests cannot tell their own messages from others': use it
	// with Send and Next, to watch a server's admission frame by frame.
	// Default false.
	SkipGreeting bool
}

func (o Options) withDefaults() Options {
	if o.ReadLimit <= 0 {
		o.ReadLimit = 16 << 20
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 64 << 20
	}
	return o
}

// HandshakeError is a WebSocket handshake the server answered with an
// HTTP status instead of an upgrade (e.g. 403 for a refused Origin).
type HandshakeError struct {
	// StatusCode is the HTTP status the server answered with.
	StatusCode int
	// Response is that answer (its body already closed), for its headers,
	// e.g. Retry-After on a 503.
	Response *http.Response
	// Err is the dial error.
	Err error
}

// Error describes the refused handshake.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("client: handshake answered %d: %v", e.StatusCode, e.Err)
}

// Unwrap returns the underlying dial error.
func (e *HandshakeError) Unwrap() error { return e.Err }

// refSupport is what a connection knows of the server's ref echo.
type refSupport int32

const (
	refsUnknown refSupport = iota // no reply seen yet
	refsEchoed                    // a reply carried its request's ref
	refsIgnored                   // a reply came without its request's ref
)

// Conn is one WebSocket connection to a Switchboard node. Its methods are
// safe for concurrent use. A reader goroutine, started by Dial and stopped
// by Close (or by the connection ending), routes replies to the requests
// waiting for them and queues every other frame for Next.
type Conn struct {
	ws    *websocket.Conn
	hello protocol.Authenticated
	opts  Options
	seq   atomic.Uint64
	refs  atomic.Int32 // a refSupport

	mu      sync.Mutex
	pending []*request // in the order sent
	queue   []Frame
	queued  int           // bytes in queue
	avail   chan struct{} // closed and replaced whenever queue or err changes
	err     error         // why the connection ended; set once
	closing bool

	closeOnce sync.Once
	done      chan struct{} // closed when the reader has returned
}

// Dial opens a WebSocket to url (ws:// or wss://, path /websockets),
// authenticates with a ticket when Options.Token or GetToken provide one,
// and waits for the session/Authenticated greeting, after which the
// connection receives every broadcast it is subscribed to. A refused
// ticket is an error wrapping the server's websocket.CloseError (1008).
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	token := opts.Token
	if opts.GetToken != nil {
		t, err := opts.GetToken(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: get token: %w", err)
		}
		token = t
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: opts.HTTPHeader, HTTPClient: opts.HTTPClient})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Response: resp, Err: err}
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	ws.SetReadLimit(opts.ReadLimit)
	c := &Conn{ws: ws, opts: opts, avail: make(chan struct{}), done: make(chan struct{})}
	if opts.SkipGreeting {
		if err := c.authenticate(ctx, token); err != nil {
			_ = ws.CloseNow()
			return nil, err
		}
		go c.read()
		return c, nil
	}
	if err := c.greet(ctx, token); err != nil {
		_ = ws.CloseNow()
		return nil, err
	}
	go c.read()
	return c, nil
}

// greet authenticates if asked and reads up to the greeting. Frames before
// it (there should be none but an Error) are queued for Next.
func (c *Conn) greet(ctx context.Context, token string) error {
	if err := c.authenticate(ctx, token); err != nil {
		return err
	}
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("client: waiting for the greeting: %w", ctx.Err())
			}
			return fmt.Errorf("client: waiting for the greeting: %w", err)
		}
		f, err := parseFrame(data)
		if err != nil {
			return err
		}
		if f.Channel == protocol.ChannelSession && f.Type == protocol.TypeAuthenticated {
			return f.Decode(&c.hello)
		}
		c.queue = append(c.queue, f)
		c.queued += len(f.Raw)
	}
}

// authenticate sends session/Authenticate with token, unless it is empty.
func (c *Conn) authenticate(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	frame, err := encode(protocol.ChannelSession, "", protocol.TypeAuthenticate, protocol.Authenticate{Token: token})
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return fmt.Errorf("client: send Authenticate: %w", err)
	}
	return nil
}

// User is the user the server greeted the connection as.
func (c *Conn) User() string { return c.hello.User }

// ConnectionID is the connection's id on the server.
func (c *Conn) ConnectionID() string { return c.hello.Connection }

// Done is closed once the connection has ended and its reader returned.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (ErrClosed after Close, or an error
// wrapping the server's websocket.CloseError), or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection normally (1000) and waits for its reader to
// return. Frames already received stay available to Next.
func (c *Conn) Close() error {
	return c.CloseWith(websocket.StatusNormalClosure, "")
}

// read is the reader goroutine.
func (c *Conn) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.fail(err)
			return
		}
		f, err := parseFrame(data)
		if err != nil {
			c.fail(err)
			_ = c.ws.Close(websocket.StatusUnsupportedData, "frame is not an envelope")
			return
		}
		if !c.dispatch(f) {
			c.fail(ErrSlowReader)
			_ = c.ws.Close(websocket.StatusPolicyViolation, "client too slow to take frames")
			return
		}
	}
}

// fail records why the connection ended and releases every waiter.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	switch {
	case c.closing:
		err = ErrClosed
	case errors.Is(err, ErrSlowReader):
	default:
		err = fmt.Errorf("client: connection ended: %w", err)
	}
	c.err = err
	for _, r := range c.pending {
		r.finish(Frame{}, err)
	}
	c.pending = nil
	c.wake()
}

// wake tells Next waiters that the queue or err changed; c.mu is held.
func (c *Conn) wake() {
	close(c.avail)
	c.avail = make(chan struct{})
}

// enqueue adds a frame for Next, reporting false when the queue is over
// its bound; c.mu is held.
func (c *Conn) enqueue(f Frame) bool {
	if c.queued+len(f.Raw) > c.opts.MaxQueuedBytes && len(c.queue) > 0 {
		return false
	}
	c.queue = append(c.queue, f)
	c.queued += len(f.Raw)
	c.wake()
	return true
}

// Next returns the next frame that answers no request of this Conn's
// typed methods: messages, presence changes, pings, inbox messages,
// replies to SendRef and Send, and unmatched errors. Once the connection
// has ended it returns the frames received before, then the reason it
// ended.
func (c *Conn) Next(ctx context.Context) (Frame, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			f := c.queue[0]
			c.queue[0] = Frame{}
			c.queue = c.queue[1:]
			c.queued -= len(f.Raw)
			if len(c.queue) == 0 {
				c.queue = nil
			}
			c.mu.Unlock()
			return f, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return Frame{}, err
		}
		avail := c.avail
		c.mu.Unlock()
		select {
		case <-avail:
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}
}

// Send writes one envelope without a ref. Contents may be any value
// encoding/json marshals; nil sends none.
func (c *Conn) Send(ctx context.Context, channel, typ string, contents any) error {
	return c.SendRef(ctx, "", channel, typ, contents)
}

// SendRef writes one envelope carrying ref (at most MaxRefBytes), which a
// server that correlates replies echoes on the direct reply and on any
// Error the frame causes; those replies are returned by Next with
// Frame.Ref set. Refs this Conn generates for its typed methods start with
// "c." and a number: choose others.
func (c *Conn) SendRef(ctx context.Context, ref, channel, typ string, contents any) error {
	if len(ref) > MaxRefBytes {
		return fmt.Errorf("client: ref is %d bytes, more than %d", len(ref), MaxRefBytes)
	}
	frame, err := encode(channel, ref, typ, contents)
	if err != nil {
		return err
	}
	return c.write(ctx, websocket.MessageText, frame)
}

func (c *Conn) write(ctx context.Context, typ websocket.MessageType, frame []byte) error {
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.ws.Write(ctx, typ, frame); err != nil {
		if cerr := c.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

// newRef returns a ref unique on this connection.
func (c *Conn) newRef() string {
	return "c." + strconv.FormatUint(c.seq.Add(1), 36)
}

// EchoesRefs reports what the connection has learnt of the server: known
// is false until a reply to one of its requests arrived; echoed is whether
// that reply carried the request's ref.
func (c *Conn) EchoesRefs() (echoed, known bool) {
	switch refSupport(c.refs.Load()) {
	case refsEchoed:
		return true, true
	case refsIgnored:
		return false, true
	}
	return false, false
}
