package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// taskQueue is how many server-side requests may wait to run on one
// connection; more are refused (see client.run).
const taskQueue = 16

// errConnClosing is returned by Send once the connection is closing.
var errConnClosing = errors.New("connection closing")

// client is one WebSocket connection, as the channels see it (it
// implements channels.Client), and the state its goroutines share: the
// send queue between whoever produces frames and the writer, and the close
// request that stops them all. serveConn (ws.go) runs the connection and
// owns its goroutines.
type client struct {
	limits *limiter // the rate budget, charged by the connection's goroutine and pings
	id     string
	user   string          // set at admission
	rooms  map[string]bool // rooms the ticket allows; nil: any
	ws     *websocket.Conn
	conn   *leanConn                   // ws's socket, through which data frames are sent
	log    atomic.Pointer[slog.Logger] // replaced once the user is known
	queue  *sendQueue
	writeT time.Duration
	count  frameCounters

	// Broadcasts that arrive while the connection is being subscribed wait
	// in early, so that the greeting is the first frame after admission.
	gate     sync.Mutex
	admitted atomic.Bool
	early    [][]byte
	earlyLen int

	// reading is the reader's report to the keep-alive (keepalive.go).
	reading *readMark
	// Keep-alive state: the connection's slot on the node's schedule, and
	// when the ping in flight was sent (on reading's clock; 0: none).
	keepAliveSlot int
	pingSent      atomic.Int64

	// work is held while the client's frame or a server-side task is
	// processed, so that the two never race: the connection's goroutine
	// processes frames, and tasks (the server API's joins and leaves) run
	// on a goroutine started on demand (run).
	work sync.Mutex
	// ctx is the connection's context, under which tasks run; cancelled
	// when the connection ends.
	ctx context.Context
	// Tasks waiting to run, and whether a task goroutine runs; none starts
	// before serving began (beginTasks).
	taskMu      sync.Mutex
	pending     []func(context.Context)
	taskRunning bool
	serving     bool
	// peerClose is the close frame the peer sent, if any (notePeerClose).
	peerClose atomic.Pointer[websocket.CloseError]
	// What the connection directory was told, owned by whoever holds work: the
	// rooms, whether they may have changed since, and when the client's
	// activity was last noted.
	dirRooms      []string
	roomsDirty    bool
	activityNoted time.Time

	// A close request is the one signal that stops the connection's
	// goroutines: closing is closed once closeReq is set, by the first
	// call to close.
	closeOnce sync.Once
	closing   chan struct{}
	closeReq  closeRequest
	// written is closed once the writer has carried out the close request.
	written chan struct{}
	// onClose, once set, runs on a goroutine of its own when a close is
	// requested (whenClosing).
	onClose atomic.Pointer[func()]

	// watchdog aborts a write that takes longer than WRITE_TIMEOUT: one
	// timer per connection, re-armed per frame, instead of a context and
	// a library callback per write. close aborts writes at once for an
	// abrupt end, and stuckWriteGrace after a request that drops the
	// queue, so that a write stuck on a client that stopped reading cannot
	// hold the connection open until the write timeout.
	watchdog   *time.Timer
	stuckTimer *time.Timer // set by close, stopped by the writer
}

// frameCounters are the node's counters of frames written: all of them,
// and those sent at once (sendQueue.sendNow).
type frameCounters struct {
	sent, atOnce prometheus.Counter
}

func newClient(id string, ws *websocket.Conn, mark *readMark, lim *limiter, queueBytes int, writeTimeout time.Duration, count frameCounters, log *slog.Logger) *client {
	c := &client{
		id:     id,
		limits: lim,
		ws:     ws,

		writeT:  writeTimeout,
		count:   count,
		reading: mark,
		closing: make(chan struct{}),
		written: make(chan struct{}),
	}
	c.queue = newSendQueue(queueBytes, func() { go c.writeLoop() }, c.writeNow)
	c.watchdog = time.AfterFunc(time.Hour, c.abortWrites)
	c.watchdog.Stop()
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

// Deliver sends a broadcast frame without waiting: at once when the
// socket takes it and nothing is queued (sendQueue.trySend), else through
// the queue. A full queue means the client cannot keep up: it is closed
// with 1008 rather than slow anyone.
func (c *client) Deliver(frame []byte) { c.deliver(frame, true) }

// Queue queues a broadcast frame for the writer without waiting, and
// without writing on the caller's goroutine (a broadcast to many).
func (c *client) Queue(frame []byte) { c.deliver(frame, false) }

func (c *client) deliver(frame []byte, now bool) {
	select {
	case <-c.closing:
		return
	default:
	}
	if !c.admitted.Load() && c.holdEarly(frame) {
		return
	}
	ok := false
	if now {
		ok = c.queue.trySend(frame)
	} else {
		ok = c.queue.tryPush(frame)
	}
	if !ok {
		c.tooSlow()
	}
}

// writeNow sends a frame from the goroutine that produced it if the
// socket takes it at once (sendQueue.sendNow). A failed write requests an
// abrupt close, as the writer's does.
func (c *client) writeNow(frame []byte) trySend {
	if c.conn == nil {
		return tryRefused
	}
	res, err := c.conn.tryWrite(frame)
	if err != nil {
		c.logger().Debug("write failed", "err", err)
		c.close(closeFor(causeWriteError))
		return trySent // the frame is gone with the connection
	}
	if res != tryRefused {
		c.count.sent.Inc()
		c.count.atOnce.Inc()
	}
	return res
}

func (c *client) tooSlow() {
	c.logger().Info("closing slow connection", "queued_bytes", c.queue.size())
	c.close(closeFor(causeSlow))
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

// close requests the end of the connection; only the first request
// counts. It never waits: the writer carries the request out (writer.go),
// and every other goroutine of the connection stops on it.
func (c *client) close(req closeRequest) {
	c.closeOnce.Do(func() {
		req.reason = truncateReason(req.reason)
		c.closeReq = req
		switch req.cause.ending() {
		case endAbrupt:
			// On a goroutine of its own: the library's CloseNow waits for
			// the reader to leave Read, and close may be called from a
			// broadcast or the keep-alive schedule, which never wait.
			go c.abortWrites()
		case endDrop:
			// The queue's memory is released now; the frame being written
			// (if any) is finished within the grace, then the close frame
			// follows it.
			c.queue.drop()
			c.stuckTimer = time.AfterFunc(stuckWriteGrace, c.abortWrites)
		case endFlush:
		}
		close(c.closing) // the writer reads closeReq and stuckTimer once it sees this
		c.queue.kick()   // a writer carries the request out, started if none runs
		if f := c.onClose.Load(); f != nil {
			go (*f)()
		}
	})
}

// whenClosing has f run on a goroutine of its own when a close is
// requested, or now if one was. f may run twice: it must be idempotent.
func (c *client) whenClosing(f func()) {
	c.onClose.Store(&f)
	if c.isClosing() {
		go f()
	}
}

// abortWrites ends a write in progress (and the connection) by closing
// the socket under it.
func (c *client) abortWrites() { _ = c.ws.CloseNow() }

// isClosing reports whether a close was requested.
func (c *client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// run queues a task without waiting; it reports false when the queue is
// full or the connection is closing. Tasks run one at a time, in order,
// on a goroutine started when the first is queued, each holding work.
func (c *client) run(task func(context.Context)) bool {
	if c.isClosing() {
		return false
	}
	c.taskMu.Lock()
	if len(c.pending) >= taskQueue {
		c.taskMu.Unlock()
		return false
	}
	c.pending = append(c.pending, task)
	start := c.serving && !c.taskRunning
	c.taskRunning = c.taskRunning || start
	c.taskMu.Unlock()
	if start {
		go c.runTasks()
	}
	return true
}

// beginTasks lets queued tasks run: the connection is serving.
func (c *client) beginTasks() {
	c.taskMu.Lock()
	c.serving = true
	start := len(c.pending) > 0 && !c.taskRunning
	c.taskRunning = c.taskRunning || start
	c.taskMu.Unlock()
	if start {
		go c.runTasks()
	}
}

// runTasks runs the queued tasks until none is left; once a close is
// requested it drops them.
func (c *client) runTasks() {
	for {
		c.taskMu.Lock()
		if len(c.pending) == 0 || c.isClosing() {
			c.pending = nil
			c.taskRunning = false
			c.taskMu.Unlock()
			return
		}
		task := c.pending[0]
		c.pending = c.pending[1:]
		c.taskMu.Unlock()
		c.work.Lock()
		if !c.isClosing() {
			task(c.ctx)
		}
		c.work.Unlock()
	}
}
