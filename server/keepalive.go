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
// goroutine, owned by Serve, visits each connection visitsPerPing times
// per pingAfter (one of keepAliveSlots slots per tick), so an idle socket
// has no keep-alive goroutine or timer of its own. A visit pings a
// connection silent for at least pingAfter less one visit period, so the
// ping leaves by pingAfter. A connection that needs a ping gets one
// short-lived goroutine for it, which ends when the pong comes, the wait
// runs out, or the connection ends.
type keepAlives struct {
	pingAfter, pongWait time.Duration
	pings               prometheus.Counter // pings sent

	mu    sync.Mutex
	slots [keepAliveSlots]map[*client]struct{}
	next  int // the slot the next connection goes to
}

// keepAliveSlots is how many ticks one round of visits is spread over;
// visitsPerPing is how many rounds fit in pingAfter.
const (
	keepAliveSlots = 16
	visitsPerPing  = 4
)

func newKeepAlives(wsTimeout time.Duration, pings prometheus.Counter) *keepAlives {
	k := &keepAlives{pings: pings}
	k.pingAfter, k.pongWait = keepAliveTiming(wsTimeout)
	for i := range k.slots {
		k.slots[i] = make(map[*client]struct{})
	}
	return k
}

// add puts a connection on the schedule; ctx ends its pings (the
// connection's context, cancelled when it ends).
func (k *keepAlives) add(c *client, ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c.pingCtx = ctx
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
	round := k.pingAfter / visitsPerPing
	t := time.NewTicker(max(round/keepAliveSlots, time.Millisecond))
	defer t.Stop()
	for slot := 0; ; slot = (slot + 1) % keepAliveSlots {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		k.mu.Lock()
		due := make([]*client, 0, len(k.slots[slot]))
		for c := range k.slots[slot] {
			due = append(due, c)
		}
		k.mu.Unlock()
		for _, c := range due {
			if c.needsPing(k.pingAfter - round) {
				k.pings.Inc()
				go c.ping(k.pongWait)
			}
		}
	}
}

// needsPing reports whether the connection should be pinged now: it is
// not closing, has no ping in flight, its reader is in Read (so that the
// pong can be read), and its peer has been silent for at least silence.
func (c *client) needsPing(silence time.Duration) bool {
	if c.isClosing() {
		return false
	}
	if quiet, reading := c.reading.silentFor(); !reading || quiet < silence {
		return false
	}
	return c.pinging.CompareAndSwap(false, true)
}

// ping pings the peer once and closes the connection if no pong comes
// back within wait while the reader sat in Read all along (see
// readMark). It is the connection's keep-alive for one round.
func (c *client) ping(wait time.Duration) {
	defer c.pinging.Store(false)
	sent := c.reading.now()
	ctx, cancel := context.WithTimeout(c.pingCtx, wait)
	err := c.ws.Ping(ctx)
	cancel()
	if err == nil || c.pingCtx.Err() != nil || c.isClosing() {
		return // answered, or the connection is ending anyway
	}
	if since := c.reading.readingSince(); since == notReading || since > sent {
		return // the reader could not read the pong, or read a frame
	}
	c.logger().Info("dropping unresponsive connection", "err", err)
	c.close(closeFor(causePingTimeout))
}
