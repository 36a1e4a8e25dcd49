package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// How a dead peer is found.
//
// A connection is silent while neither a frame nor a pong comes from its
// peer. The keep-alive (keepAlives, one schedule for the node) pings a
// connection that has been silent for pingAfter and drops it if the pong
// has not come back pongWait later: a silent peer is dropped by
// WS_TIMEOUT = pingAfter + pongWait (keepAliveTiming). A pong counts as a
// sign of life, so an idle but present peer is pinged once per pingAfter,
// and a connection that sent a frame recently is not pinged at all.
//
// coder/websocket reads a pong only inside Conn.Read, so an unanswered
// ping proves the peer gone only if the reader sat in Read for the whole
// wait. The reader is out of Read while it processes a frame, which can
// take long when the broker is slow or the client sends faster than it is
// served (it is evidently there), and for good once it stopped for
// flooding (the connection is closing anyway). So the reader reports one
// fact, readMark:
// since when it has been waiting in Read, or that it is not in Read now;
// and the library reports each pong (heard). The keep-alive does not ping
// while the reader is out of Read, and drops the connection only when a
// ping went unanswered and the reader entered Read before the ping was
// sent and is still there. Any frame read during the wait therefore counts
// as a sign of life (the reader left Read and came back).

// maxPongWait bounds how long a pong may take: a peer that answers at all
// answers within a round trip, so most of WS_TIMEOUT goes to silence
// before the ping, and an idle peer costs few pings.
const maxPongWait = 10 * time.Second

// keepAliveTiming splits WS_TIMEOUT into the silence before a ping and the
// wait for its pong: half each up to 20 s, then a pong wait of
// maxPongWait (60 s: a ping after 50 s of silence).
func keepAliveTiming(wsTimeout time.Duration) (pingAfter, pongWait time.Duration) {
	pongWait = min(wsTimeout/2, maxPongWait)
	return wsTimeout - pongWait, pongWait
}

// readMark is when the reader last entered Conn.Read, on the connection's
// monotonic clock, or notReading while it is elsewhere, and when the last
// pong came. Only the reader writes it (the library calls pong from
// within Read); the keep-alive reads it.
type readMark struct {
	start time.Time // the clock's origin
	since atomic.Int64
	pong  atomic.Int64
}

// notReading is the mark of a reader that is out of Conn.Read.
const notReading = 0

func newReadMark() *readMark { return &readMark{start: time.Now()} }

// now is the connection's clock: nanoseconds since it started, never
// notReading.
func (m *readMark) now() int64 { return int64(time.Since(m.start)) + 1 }

// enter records that the reader is about to wait in Read.
func (m *readMark) enter() { m.since.Store(m.now()) }

// leave records that the reader returned from Read.
func (m *readMark) leave() { m.since.Store(notReading) }

// heard records a pong (AcceptOptions.OnPongReceived).
func (m *readMark) heard(context.Context, []byte) { m.pong.Store(m.now()) }

// readingSince reports since when the reader has been in Read, or
// notReading.
func (m *readMark) readingSince() int64 { return m.since.Load() }

// silentFor reports how long the peer has been silent, and false while
// the reader is out of Read (the peer is evidently there, or the
// connection is ending).
func (m *readMark) silentFor() (time.Duration, bool) {
	since := m.readingSince()
	if since == notReading {
		return 0, false
	}
	return time.Duration(m.now() - max(since, m.pong.Load())), true
}

// keepAlives pings the node's silent connections on one schedule: one
// goroutine, owned by Serve, visits each connection once per pongWait
// (one of keepAliveSlots slots per tick), so an idle socket has no
// keep-alive goroutine or timer of its own, and a ping costs no goroutine
// either. A visit first settles the connection's ping in flight, if any:
// answered (a pong, or a frame read since), it is forgotten; unanswered
// for pongWait, the connection is dropped. Then it pings a connection
// silent for at least pingAfter less pongWait, so the ping leaves by
// pingAfter and a dead peer is dropped by pingAfter + pongWait =
// WS_TIMEOUT.
type keepAlives struct {
	pingAfter, pongWait time.Duration
	pings               prometheus.Counter // pings sent

	mu    sync.Mutex
	slots [keepAliveSlots]map[*client]struct{}
	next  int // the slot the next connection goes to
}

// keepAliveSlots is how many ticks one round of visits is spread over.
const keepAliveSlots = 16

func newKeepAlives(wsTimeout time.Duration, pings prometheus.Counter) *keepAlives {
	k := &keepAlives{pings: pings}
	k.pingAfter, k.pongWait = keepAliveTiming(wsTimeout)
	for i := range k.slots {
		k.slots[i] = make(map[*client]struct{})
	}
	return k
}

// tick is the schedule's period: a round of keepAliveSlots ticks visits
// every connection once per pongWait.
func (k *keepAlives) tick() time.Duration {
	return max(k.pongWait/keepAliveSlots, time.Millisecond)
}

// add puts a connection on the schedule.
func (k *keepAlives) add(c *client) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c.keepAliveSlot = k.next
	k.slots[k.next][c] = struct{}{}
	k.next = (k.next + 1) % keepAliveSlots
}

// remove takes a connection off the schedule.
func (k *keepAlives) remove(c *client) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.slots[c.keepAliveSlot], c)
}

// run visits one slot per tick until ctx ends.
func (k *keepAlives) run(ctx context.Context) {
	t := time.NewTicker(k.tick())
	defer t.Stop()
	var due []*client
	for slot := 0; ; slot = (slot + 1) % keepAliveSlots {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.mu.Lock()
		due = due[:0]
		for c := range k.slots[slot] {
			due = append(due, c)
		}
		k.mu.Unlock()
		for _, c := range due {
			k.visit(c)
		}
		clear(due) // no connection is kept alive by the schedule
	}
}

// visit settles a connection's ping in flight and pings it if it has been
// silent long enough (see keepAlives).
func (k *keepAlives) visit(c *client) {
	if c.isClosing() {
		return
	}
	if sent := c.pingSent.Load(); sent != 0 {
		if !c.reading.unanswered(sent) {
			c.pingSent.Store(0)
		} else if waited := time.Duration(c.reading.now() - sent); waited >= k.pongWait-k.tick() {
			// One tick of slack: the visit a round later may come a little
			// early by the ticker's clock.
			c.logger().Info("dropping unresponsive connection", "waited", waited.Round(time.Millisecond))
			c.close(closeFor(causePingTimeout))
			return
		} else {
			return
		}
	}
	if quiet, reading := c.reading.silentFor(); !reading || quiet < k.pingAfter-k.pongWait {
		return
	}
	if c.sendPing() {
		k.pings.Inc()
	}
}

// unanswered reports whether a ping sent at sent (on the connection's
// clock) still proves nothing: no pong came since, and the reader has sat
// in Read since before it (see readMark). A reader out of Read could not
// have read the pong, and one that came back read a frame.
func (m *readMark) unanswered(sent int64) bool {
	if m.pong.Load() >= sent {
		return false
	}
	since := m.readingSince()
	return since != notReading && since <= sent
}

// pingFrame is a ping with no payload (RFC 6455 §5.5.2), as a server
// sends it.
var pingFrame = []byte{0x80 | 0x9, 0}

// sendPing pings the peer without blocking and records when; it reports
// false when the ping could not leave now (a write is in progress or the
// socket is full: the next visit tries again). The pong is noted by
// readMark.heard, and a later visit settles the ping.
func (c *client) sendPing() bool {
	sent := c.reading.now()
	if !c.queue.sendControl(c.writePing) {
		return false
	}
	c.pingSent.Store(sent)
	return true
}

// writePing is sendPing's write (sendQueue.sendControl). On a socket
// without a descriptor, which cannot be written without blocking, the
// ping is written by a goroutine of its own; a write that never ends is
// ended by the drop that follows its unanswered ping.
func (c *client) writePing() trySend {
	if !c.conn.canTry() {
		go func() { _, _ = c.conn.Write(pingFrame) }()
		return trySent
	}
	res, err := c.conn.trySend(pingFrame)
	if err != nil {
		c.logger().Debug("ping failed", "err", err)
		c.close(closeFor(causeWriteError))
		return tryRefused
	}
	return res
}
