package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Close reasons sent to clients. RFC 6455 limits a reason to 123 bytes.
const (
	reasonTooSlow     = "connection too slow to keep up with messages"
	reasonRateLimited = "rate limit exceeded"
	reasonShutdown    = "server shutting down"
	reasonPingTimeout = "ping timeout"
	reasonResync      = "messages were missed: reconnect and catch up with since"
)

// errConnClosing is returned by Send once the connection is closing.
var errConnClosing = errors.New("connection closing")

// client is one WebSocket connection. It owns two goroutines: the reader
// (the serving goroutine itself, in serveConn) and the writer, which is the
// only one to write data and close frames. Frames reach the writer through
// a bounded queue; a client whose queue is full when a broadcast arrives is
// closed instead of slowing the broadcast down.
type client struct {
	id     string
	user   string
	rooms  map[string]bool // rooms the ticket allows; nil: any
	ws     *websocket.Conn
	log    atomic.Pointer[slog.Logger] // replaced once the user is known
	queue  *sendQueue
	writeT time.Duration
	sent   prometheus.Counter // frames written

	// Broadcasts that arrive while the connection is being subscribed wait
	// in early, so that the greeting is the first frame after admission.
	gate     sync.Mutex
	admitted atomic.Bool
	early    [][]byte
	earlyLen int

	// The reader waits for the worker when the client sends faster than it
	// is served (a slow Redis). It cannot read pongs meanwhile, so the
	// pinger must not take their absence for a dead peer.
	readerWaiting atomic.Bool // waiting now
	readerWaited  atomic.Bool // waited since the pinger last looked

	closeOnce sync.Once
	closing   chan struct{} // closed when a close is requested
	closeReq  closeRequest  // set once, before closing is closed
	writerEnd chan struct{} // closed when the writer has returned

	// writes is the parent of every write's context. It is cancelled
	// shortly after a close is requested, so that a write stuck on a
	// client that stopped reading cannot hold the connection open until
	// the write timeout.
	writes       context.Context
	cancelWrites context.CancelFunc
	stuckTimer   *time.Timer
}

// stuckWriteGrace is how long a write may still take once the connection
// is being closed for being too slow: long enough for a client that is
// merely slow to take the frame and then read the 1008 close frame, short
// enough that a stalled one does not hold its memory for WRITE_TIMEOUT.
// (coder/websocket gives the close frame itself 5 s as well.)
const stuckWriteGrace = 5 * time.Second

type closeRequest struct {
	why    string // metric label: peer, slow, rate_limit, ping_timeout, shutdown, auth, too_big, write_error, unavailable, resync
	code   websocket.StatusCode
	reason string
	flush  bool // write what is queued before the close frame
	now    bool // no close handshake: the peer is gone
}

func newClient(id string, ws *websocket.Conn, queueBytes int, writeTimeout time.Duration, sent prometheus.Counter, log *slog.Logger) *client {
	writes, cancel := context.WithCancel(context.Background())
	c := &client{
		sent:         sent,
		writes:       writes,
		cancelWrites: cancel,
		id:           id,
		ws:           ws,
		queue:        newSendQueue(queueBytes),
		writeT:       writeTimeout,
		closing:      make(chan struct{}),
		writerEnd:    make(chan struct{}),
	}
	c.log.Store(log.With("conn", id))
	return c
}

func (c *client) logger() *slog.Logger     { return c.log.Load() }
func (c *client) setLogger(l *slog.Logger) { c.log.Store(l) }

// ID is the connection id.
func (c *client) ID() string { return c.id }

// User is the connection's user name.
func (c *client) User() string { return c.user }

// MayJoin reports whether the ticket allows the room.
func (c *client) MayJoin(room string) bool { return c.rooms == nil || c.rooms[room] }

// Deliver queues a broadcast frame without waiting. A full queue means the
// client cannot keep up: it is closed with 1008 rather than slow anyone.
func (c *client) Deliver(frame []byte) {
	select {
	case <-c.closing:
		return
	default:
	}
	if !c.admitted.Load() && c.holdEarly(frame) {
		return
	}
	if !c.queue.tryPush(frame) {
		c.tooSlow()
	}
}

// Resync closes the connection with 1012 so the client reconnects and
// resumes from the last id it saw: the node missed more messages for one
// of its rooms than it could replay.
func (c *client) Resync() {
	c.logger().Info("closing connection so it resumes: messages were missed")
	c.close(closeRequest{why: "resync", code: websocket.StatusServiceRestart, reason: reasonResync})
}

func (c *client) tooSlow() {
	c.logger().Info("closing slow connection", "queued_bytes", c.queue.size())
	c.close(closeRequest{why: "slow", code: websocket.StatusPolicyViolation, reason: reasonTooSlow})
}

// holdEarly keeps a broadcast that arrived before the greeting, reporting
// false if the greeting was sent meanwhile.
func (c *client) holdEarly(frame []byte) bool {
	c.gate.Lock()
	defer c.gate.Unlock()
	if c.admitted.Load() {
		return false
	}
	if c.earlyLen+len(frame) > c.queue.maxBytes {
		c.tooSlow()
		return true
	}
	c.early = append(c.early, frame)
	c.earlyLen += len(frame)
	return true
}

// greet queues the greeting, then what was broadcast while the connection
// was being subscribed; from here on broadcasts queue directly.
func (c *client) greet(greeting []byte) {
	c.gate.Lock()
	defer c.gate.Unlock()
	c.queue.pushAll(append([][]byte{greeting}, c.early...))
	c.early, c.earlyLen = nil, 0
	c.admitted.Store(true)
}

// Send queues a direct reply, waiting for room until ctx ends or the
// connection closes.
func (c *client) Send(ctx context.Context, frame []byte) error {
	select {
	case <-c.closing:
		return errConnClosing
	default:
	}
	return c.queue.push(ctx, c.closing, frame)
}

// close asks the writer to close the connection; only the first request
// counts. Unless queued frames are to be flushed, a write in progress gets
// stuckWriteGrace to finish before it is abandoned.
func (c *client) close(req closeRequest) {
	req.reason = truncateReason(req.reason)
	c.closeOnce.Do(func() {
		c.closeReq = req
		close(c.closing)
		switch {
		case req.now:
			c.cancelWrites()
		case !req.flush:
			c.stuckTimer = time.AfterFunc(stuckWriteGrace, c.cancelWrites)
		}
	})
}

// maxReasonBytes is the longest close reason RFC 6455 allows (a control
// frame carries 125 bytes, two of them the code); coder/websocket sends no
// close frame at all for a longer one.
const maxReasonBytes = 123

func truncateReason(reason string) string {
	if len(reason) <= maxReasonBytes {
		return reason
	}
	cut := maxReasonBytes
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// writeLoop writes queued frames until a close is requested or a write
// fails, then closes the WebSocket. It is the connection's only writer.
func (c *client) writeLoop() {
	defer close(c.writerEnd)
	defer c.cancelWrites()
	for {
		select {
		case <-c.queue.ready:
			if err := c.writeQueued(); err != nil {
				c.logger().Debug("write failed", "err", err)
				c.close(closeRequest{why: "write_error", now: true})
				_ = c.ws.CloseNow()
				return
			}
		case <-c.closing:
			c.finish()
			return
		}
	}
}

// writeQueued writes everything queued, stopping early if a close is
// requested meanwhile.
func (c *client) writeQueued() error {
	for _, frame := range c.queue.take() {
		select {
		case <-c.closing:
			if !c.closeReq.flush {
				return nil
			}
		default:
		}
		err := c.write(frame)
		c.queue.done(frame)
		if err != nil {
			return err
		}
	}
	return nil
}

// finish carries out the close request: flush if asked, then the close
// handshake (bounded by the library's own timeouts) or an abrupt close.
func (c *client) finish() {
	req := c.closeReq
	if req.now {
		_ = c.ws.CloseNow()
		return
	}
	if req.flush {
		if err := c.writeQueued(); err != nil {
			_ = c.ws.CloseNow()
			return
		}
	}
	_ = c.ws.Close(req.code, req.reason)
}

func (c *client) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(c.writes, c.writeT)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return err
	}
	c.sent.Inc()
	return nil
}

// handOver gives a read frame to the worker, waiting while the worker is
// busy; it reports false if the connection closed meanwhile.
func (c *client) handOver(inbox chan<- inboxFrame, f inboxFrame) bool {
	select {
	case inbox <- f:
		return true
	default:
	}
	c.readerWaited.Store(true)
	c.readerWaiting.Store(true)
	defer c.readerWaiting.Store(false)
	select {
	case inbox <- f:
		return true
	case <-c.closing:
		return false
	}
}

// pingLoop pings the peer every interval and drops the connection when a
// pong does not come back within the same interval, unless the reader
// could not have read it (it was waiting for the worker: the client is
// evidently there, its frames are queued). It stops with ctx.
func (c *client) pingLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.closing:
			return
		case <-t.C:
			if c.readerWaiting.Load() {
				continue
			}
			c.readerWaited.Store(false)
			pctx, cancel := context.WithTimeout(ctx, interval)
			err := c.ws.Ping(pctx)
			cancel()
			if err != nil && c.readerWaited.Load() {
				continue
			}
			if err != nil && ctx.Err() == nil {
				c.logger().Info("dropping unresponsive connection", "err", err)
				c.close(closeRequest{why: "ping_timeout", code: websocket.StatusGoingAway, reason: reasonPingTimeout, now: true})
				return
			}
		}
	}
}

// limiter enforces the per-connection frame rate: a token bucket, and a
// count of consecutive refusals after which the connection is closed.
type limiter struct {
	bucket  *rate.Limiter
	strikes int
	max     int
}

func newLimiter(perSecond float64, burst, maxStrikes int) *limiter {
	return &limiter{bucket: rate.NewLimiter(rate.Limit(perSecond), burst), max: maxStrikes}
}

// allow reports whether a frame may be processed now, and whether the
// client has been refused so often in a row that it must be disconnected.
func (l *limiter) allow() (ok, abusive bool) {
	if l.bucket.Allow() {
		l.strikes = 0
		return true, false
	}
	l.strikes++
	return false, l.strikes >= l.max
}
