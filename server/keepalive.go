package server

import (
	"context"
	"sync/atomic"
	"time"
)

// How a dead peer is found.
//
// The keep-alive pings the peer every WS_TIMEOUT/2 and gives the pong as
// long again to come back. coder/websocket reads a pong only inside
// Conn.Read, so an unanswered ping proves the peer gone only if the reader
// sat in Read for the whole wait. The reader is out of Read while it hands
// a frame to the worker, which can take long when the client sends faster
// than it is served (it is evidently there), and for good once it stopped
// for flooding (the connection is closing anyway). So the reader reports
// one fact, readMark: since when it has been waiting in Read, or that it is
// not in Read now. The keep-alive does not ping while the reader is out of
// Read, and drops the connection only when a ping went unanswered and the
// reader entered Read before the ping was sent and is still there. Any
// frame read during the wait therefore counts as a sign of life (the
// reader left Read and came back), and so does a wait for the worker. A
// connection that sent a frame within the last interval is not pinged at
// all: it is evidently there, and busy sockets cost no pings.

// readMark is when the reader last entered Conn.Read, on the connection's
// monotonic clock, or notReading while it is elsewhere. Only the reader
// writes it; the keep-alive reads it.
type readMark struct {
	start time.Time // the clock's origin
	since atomic.Int64
}

// notReading is the mark of a reader that is out of Conn.Read.
const notReading = 0

func newReadMark() readMark { return readMark{start: time.Now()} }

// now is the connection's clock: nanoseconds since it started, never
// notReading.
func (m *readMark) now() int64 { return int64(time.Since(m.start)) + 1 }

// enter records that the reader is about to wait in Read.
func (m *readMark) enter() { m.since.Store(m.now()) }

// leave records that the reader returned from Read.
func (m *readMark) leave() { m.since.Store(notReading) }

// readingSince reports since when the reader has been in Read, or
// notReading.
func (m *readMark) readingSince() int64 { return m.since.Load() }

// keepAlive is the connection's keep-alive goroutine. It stops when a close
// is requested, its one way to stop; it requests one itself when the peer
// does not answer. ctx bounds each ping; the reader cancels it when the
// peer is gone.
func (c *client) keepAlive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
		}
		since := c.reading.readingSince()
		if since == notReading {
			continue // a pong could not be read now
		}
		sent := c.reading.now()
		if sent-since < int64(interval) {
			continue // a frame arrived within the interval: the peer is there
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		err := c.ws.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil || c.isClosing() {
			continue // answered, or the connection is ending anyway
		}
		if since := c.reading.readingSince(); since == notReading || since > sent {
			continue // the reader could not read the pong, or read a frame
		}
		c.logger().Info("dropping unresponsive connection", "err", err)
		c.close(closeFor(causePingTimeout))
		return
	}
}
