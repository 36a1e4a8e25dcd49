package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/protocol"
)

// Phases of a run. Publishers stamp each message with the phase it was
// sent in; only messages sent while measuring are counted.
const (
	phaseWarmup  = 'w'
	phaseMeasure = 'm'
	phaseStop    = 's'
)

// marker starts the text of every bench message:
// "sbb|<phase>|<publisher>|<seq>|<send ns>|" then padding. It needs no
// JSON escaping, so it can be found in a frame without decoding it.
const marker = "sbb|"

// handshakeTimeout bounds one attempt at connecting and joining a client.
const handshakeTimeout = 20 * time.Second

// maxRetries bounds how often one client is retried after a refusal.
const maxRetries = 100

// maxKeptBuffer is the largest read buffer a client's reader keeps
// between frames: per-client memory stays small with 15,000 clients.
const maxKeptBuffer = 16 << 10

// loadPlan is the shape of the load.
type loadPlan struct {
	Clients, Rooms, Publishers int
	Rate                       float64       // messages per second per publisher
	Size                       int           // bytes of message text
	Span                       time.Duration // warm-up + measured time, to size counters
	DialConcurrency            int
	// NoJoin: clients only connect (and read), joining no room.
	NoJoin bool
}

// roomOf is the room client i joins: round-robin.
func roomOf(i, rooms int) int { return i % rooms }

// nodeOf is the node client i connects to: round-robin, shifted by one for
// each round of rooms so that every room has members on every node (with
// a plain i % nodes, an even number of rooms and nodes would put all of a
// room on one node and no message would cross Redis to another node).
// Publishers are clients 0..publishers-1: one per room, alternating nodes.
func nodeOf(i, rooms, nodes int) int { return (i%rooms + i/rooms) % nodes }

// roomName is the name of room r.
func roomName(r int) string { return fmt.Sprintf("bench-%03d", r) }

// fleet is every client of one run and what they observed.
type fleet struct {
	plan  loadPlan
	base  time.Time // origin of the send stamps (monotonic)
	phase atomic.Int32

	clients []*client // nil where the client failed to connect or join
	members []int     // joined clients per room

	lat           histogram
	delivered     atomic.Int64 // deliveries of measured messages
	warmDelivered atomic.Int64 // deliveries of warm-up messages
	published     atomic.Int64 // measured messages written
	pubErrors     atomic.Int64 // failed writes of publishers
	// sent and counts are indexed [publisher][seq]: whether the message was
	// written while measuring, and how many clients received it.
	sent   [][]atomic.Bool
	counts [][]atomic.Int32

	admit    histogram    // first dial → greeting, per admitted client
	joinLat  histogram    // first dial → own JoinedRoom, per joined client
	frames   atomic.Int64 // frames received by every client, handshakes included
	refusals counter      // refused attempts (1013, 503), by kind

	errFrames   counter // Error frames received, by code
	disconnects counter // connections ended by the server or network, by cause
	setupFails  counter // clients that could not connect or join, by cause

	readers sync.WaitGroup
	pubs    sync.WaitGroup
}

// client is one WebSocket connection of the bench.
//
// It is a bare websocket.Conn, not the Go client (package client), on
// purpose: client.Dial starts a reader that decodes every frame into an
// envelope and queues a copy for Next, about 6.5 µs and 11 allocations per
// 300-byte NewMessage on this project's 2-core machine, against 0.14 µs and
// none for read's marker scan (measured with a Go benchmark of the two).
// A join storm of n clients delivers about n²/2 JoinedRoom frames (12.5
// million for 5,000: some 80 s of CPU decoding them), and fanout 25,000
// messages a second: the generator shares the machine's cores with the
// nodes under test, so that decoding would show up in their figures.
// Setup (greeting, join) is a handful of frames per client, but the reader
// owns the socket from Dial on, so setup cannot use the client and hand
// the socket to the cheap read path afterwards.
type client struct {
	id, room int
	user     string
	conn     *websocket.Conn
}

func newFleet(plan loadPlan) *fleet {
	f := &fleet{plan: plan, base: time.Now(), clients: make([]*client, plan.Clients), members: make([]int, plan.Rooms)}
	f.phase.Store(phaseWarmup)
	perPub := int(plan.Span.Seconds()*plan.Rate) + int(plan.Rate) + 16
	f.sent = make([][]atomic.Bool, plan.Publishers)
	f.counts = make([][]atomic.Int32, plan.Publishers)
	for p := range plan.Publishers {
		f.sent[p] = make([]atomic.Bool, perPub)
		f.counts[p] = make([]atomic.Int32, perPub)
	}
	return f
}

// connect opens every client against urls (one per node), has each join
// its room, and starts its reader, which runs until ctx ends. It returns
// how many clients joined.
func (f *fleet) connect(ctx context.Context, urls []string) int {
	sem := make(chan struct{}, max(f.plan.DialConcurrency, 1))
	var wg sync.WaitGroup
	for i := range f.plan.Clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return f.joined()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := f.open(ctx, i, urls[nodeOf(i, f.plan.Rooms, len(urls))])
			if err != nil {
				f.setupFails.add(err.Error())
				return
			}
			f.clients[i] = c
			f.readers.Go(func() { f.read(ctx, c) })
		})
	}
	wg.Wait()
	for _, c := range f.clients {
		if c != nil {
			f.members[c.room]++
		}
	}
	return f.joined()
}

// joined counts the clients in their room.
func (f *fleet) joined() int {
	n := 0
	for _, c := range f.clients {
		if c != nil {
			n++
		}
	}
	return n
}

// open connects client i to url and has it join its room (unless the
// plan says NoJoin), retrying while the server refuses it with 1013 (or
// 503 at the upgrade): after the hint it gives (retryAfterMs=<n> in the
// close reason, Retry-After on a 503), else after defaultRetry, at most
// maxRetries times. Admission latency, from the first dial to the
// greeting, is recorded in f.admit.
func (f *fleet) open(ctx context.Context, i int, url string) (*client, error) {
	first := time.Now()
	for try := 0; ; try++ {
		c, err := f.attempt(ctx, i, url, first)
		var ref refusal
		if !errors.As(err, &ref) {
			return c, err
		}
		f.refusals.add(ref.cause())
		if try >= maxRetries {
			return nil, fmt.Errorf("refused %d times, last: %w", try+1, err)
		}
		if err := wait.Sleep(ctx, ref.wait()); err != nil {
			return nil, err
		}
	}
}

// attempt dials once, waits for session/Authenticated, then (unless
// NoJoin) joins the client's room and waits for its own JoinedRoom.
func (f *fleet) attempt(ctx context.Context, i int, url string, first time.Time) (*client, error) {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(hctx, url, nil)
	if err != nil {
		if ref, ok := refusedUpgrade(resp); ok {
			return nil, ref
		}
		return nil, fmt.Errorf("dial: %w", trimErr(err))
	}
	conn.SetReadLimit(1 << 20)
	c := &client{id: i, room: roomOf(i, f.plan.Rooms), conn: conn}
	fail := func(err error) (*client, error) { _ = conn.CloseNow(); return nil, err }

	var hello protocol.Authenticated
	if err := f.expect(hctx, conn, protocol.TypeAuthenticated, &hello, nil); err != nil {
		if ref, ok := refusedClose(err); ok {
			return fail(ref)
		}
		return fail(fmt.Errorf("greeting: %w", err))
	}
	f.admit.record(time.Since(first))
	c.user = hello.User
	if f.plan.NoJoin {
		return c, nil
	}
	join := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: roomName(c.room)})
	if err := conn.Write(hctx, websocket.MessageText, join); err != nil {
		return fail(fmt.Errorf("join: %w", trimErr(err)))
	}
	var joined protocol.JoinedRoom
	own := func() bool { return joined.User == c.user }
	if err := f.expect(hctx, conn, protocol.TypeJoinedRoom, &joined, own); err != nil {
		if ref, ok := refusedClose(err); ok {
			return fail(ref)
		}
		return fail(fmt.Errorf("join: %w", err))
	}
	f.joinLat.record(time.Since(first))
	return c, nil
}

// expect reads frames until one of type typ (for which ok, if given,
// reports true after decoding into dst), failing on an Error frame. It
// returns a connection's close error unchanged, for refusedClose.
func (f *fleet) expect(ctx context.Context, conn *websocket.Conn, typ string, dst any, ok func() bool) error {
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != -1 {
				return err
			}
			return trimErr(err)
		}
		f.frames.Add(1)
		var env protocol.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return fmt.Errorf("unreadable frame %.100q", data)
		}
		switch env.Message.Type {
		case protocol.TypeError:
			var e protocol.Error
			_ = json.Unmarshal(env.Message.Contents, &e)
			return fmt.Errorf("server error %s", e.Code)
		case typ:
			if err := json.Unmarshal(env.Message.Contents, dst); err != nil {
				return err
			}
			if ok == nil || ok() {
				return nil
			}
		}
	}
}

// read consumes c's frames until ctx ends (which closes the connection)
// or the connection breaks.
func (f *fleet) read(ctx context.Context, c *client) {
	var buf bytes.Buffer
	for {
		_, r, err := c.conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if ctx.Err() == nil {
				f.disconnects.add(disconnectCause(err))
			}
			_ = c.conn.CloseNow()
			return
		}
		f.frames.Add(1)
		f.receive(buf.Bytes(), time.Since(f.base))
		if buf.Cap() > maxKeptBuffer {
			buf = bytes.Buffer{} // a rare large frame: do not keep its buffer for the life of the client
		}
	}
}

// receive accounts for one frame received at now (since f.base).
func (f *fleet) receive(frame []byte, now time.Duration) {
	if i := bytes.Index(frame, []byte(marker)); i >= 0 && bytes.Contains(frame, []byte(`"NewMessage"`)) {
		phase, pub, seq, sentAt, ok := parseMarker(frame[i+len(marker):])
		switch {
		case !ok || pub >= len(f.counts) || seq >= len(f.counts[pub]):
			f.errFrames.add("bench: unreadable message")
		case phase == phaseMeasure:
			f.lat.record(now - sentAt)
			f.delivered.Add(1)
			f.counts[pub][seq].Add(1)
		default:
			f.warmDelivered.Add(1)
		}
		return
	}
	if !bytes.Contains(frame, []byte(`"Error"`)) {
		return // MemberList, JoinedRoom, LeftRoom…
	}
	var env protocol.Envelope
	var e protocol.Error
	if json.Unmarshal(frame, &env) == nil && env.Message.Type == protocol.TypeError && json.Unmarshal(env.Message.Contents, &e) == nil {
		f.errFrames.add(string(e.Code))
	}
}

// parseMarker reads "<phase>|<pub>|<seq>|<ns>|" at the start of b.
func parseMarker(b []byte) (phase byte, pub, seq int, sentAt time.Duration, ok bool) {
	if len(b) < 2 || b[1] != '|' {
		return 0, 0, 0, 0, false
	}
	phase, b = b[0], b[2:]
	var n [3]int64
	for k := range n {
		j := bytes.IndexByte(b, '|')
		if j <= 0 {
			return 0, 0, 0, 0, false
		}
		v, err := strconv.ParseInt(string(b[:j]), 10, 64)
		if err != nil || v < 0 {
			return 0, 0, 0, 0, false
		}
		n[k], b = v, b[j+1:]
	}
	return phase, int(n[0]), int(n[1]), time.Duration(n[2]), true
}

// startPublishers starts one publisher per joined client among the first
// plan.Publishers; each runs until the phase is phaseStop or ctx ends.
func (f *fleet) startPublishers(ctx context.Context) int {
	interval := time.Duration(float64(time.Second) / f.plan.Rate)
	n := 0
	for p := range f.plan.Publishers {
		c := f.clients[p]
		if c == nil {
			continue
		}
		n++
		offset := interval * time.Duration(p) / time.Duration(f.plan.Publishers) // spread sends evenly
		f.pubs.Go(func() { f.publish(ctx, c, p, interval, offset) })
	}
	return n
}

// publish sends SendMessage every interval, after offset.
func (f *fleet) publish(ctx context.Context, c *client, p int, interval, offset time.Duration) {
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	prefix := fmt.Sprintf(`{"channel":"chat-room","message":{"type":"SendMessage","contents":{"room":%q,"message":"`, roomName(c.room))
	frame := make([]byte, 0, len(prefix)+f.plan.Size+64)
	for seq := 0; seq < len(f.sent[p]); seq++ {
		phase := byte(f.phase.Load())
		if phase == phaseStop {
			return
		}
		frame = append(frame[:0], prefix...)
		start := len(frame)
		frame = fmt.Appendf(frame, "%s%c|%d|%d|%d|", marker, phase, p, seq, time.Since(f.base).Nanoseconds())
		for len(frame)-start < f.plan.Size {
			frame = append(frame, 'x')
		}
		frame = append(frame, `"}}}`...)
		if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
			if ctx.Err() == nil {
				f.pubErrors.Add(1)
			}
			return // a failed write breaks the connection
		}
		if phase == phaseMeasure {
			f.sent[p][seq].Store(true)
			f.published.Add(1)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// tally is what a run's clients observed.
type tally struct {
	Published, PubErrors          int64
	Expected, Delivered, Warm     int64
	Missing, Duplicates, LossyMsg int64
}

// expected is how many deliveries the measured messages sent so far call
// for: every member of the room, the sender included, gets each one.
func (f *fleet) expected() int64 {
	var n int64
	for p := range f.sent {
		members := int64(f.members[roomOf(p, f.plan.Rooms)])
		for s := range f.sent[p] {
			if f.sent[p][s].Load() {
				n += members
			}
		}
	}
	return n
}

// tally compares what was received with what was sent, per message.
func (f *fleet) tally() tally {
	t := tally{
		Published: f.published.Load(), PubErrors: f.pubErrors.Load(),
		Delivered: f.delivered.Load(), Warm: f.warmDelivered.Load(),
	}
	for p := range f.sent {
		members := int64(f.members[roomOf(p, f.plan.Rooms)])
		for s := range f.sent[p] {
			got := int64(f.counts[p][s].Load())
			if !f.sent[p][s].Load() {
				continue
			}
			t.Expected += members
			if got < members {
				t.Missing += members - got
				t.LossyMsg++
			}
			t.Duplicates += max(got-members, 0)
		}
	}
	return t
}

// drain waits until every expected delivery arrived, deliveries stop
// progressing for quiet, or limit passes.
func (f *fleet) drain(ctx context.Context, quiet, limit time.Duration) time.Duration {
	start := time.Now()
	want := f.expected()
	last, lastChange := f.delivered.Load(), time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// The error only says the limit (or ctx) ended the wait: either way
	// the tally reports what arrived.
	_ = wait.Until(ctx, 20*time.Millisecond, func() error {
		got := f.delivered.Load()
		switch {
		case got >= want:
			return nil
		case got != last:
			last, lastChange = got, time.Now()
		case time.Since(lastChange) >= quiet:
			return nil
		}
		return errDraining
	})
	return time.Since(start)
}

// errDraining is drain's condition while deliveries still come.
var errDraining = errors.New("deliveries still arriving")

// counter counts occurrences by key; it is safe for concurrent use.
type counter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counter) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	c.m[key]++
}

// total is the sum of every count.
func (c *counter) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.m {
		n += v
	}
	return n
}

// String lists the counts, largest first: "3× a, 1× b", or "none".
func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c.m[a] != c.m[b] {
			return int(c.m[b] - c.m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", c.m[k], k)
	}
	return strings.Join(parts, ", ")
}

// disconnectCause names why a connection ended: the close code and reason
// the server sent, or the network error.
func disconnectCause(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d %q", int(ce.Code), ce.Reason)
	}
	return trimErr(err).Error()
}

// trimErr shortens errors that embed addresses, so that they group well.
func trimErr(err error) error {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s[:i], "127.0.0.1") {
		return errors.New(s[i+2:])
	}
	return err
}
