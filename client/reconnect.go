package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/switchboard/switchboard/protocol"
)

// State is where a Reconnecting client stands.
type State int

// States of a Reconnecting client, in the order a life goes through them.
const (
	// StateConnecting: dialing, authenticating and re-joining rooms.
	StateConnecting State = iota
	// StateOnline: connected, every room re-joined.
	StateOnline
	// StateReconnecting: the connection ended; waiting before the next
	// attempt.
	StateReconnecting
	// StateClosed: Close was called, or the server refused the client for
	// good (a 1008 ticket refusal, a 401 or 403 handshake); final.
	StateClosed
)

// String names the state: connecting, online, reconnecting or closed.
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateOnline:
		return "online"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// StateChange is one transition of a Reconnecting client.
type StateChange struct {
	State State
	// Delay is, when reconnecting, the wait before the next attempt.
	Delay time.Duration
	// Err is what ended the previous connection or attempt (reconnecting),
	// or why reconnecting stopped for good (closed; nil after Close).
	Err error
	// URL is the server dialed (connecting) or connected to (online).
	URL string
}

// ReconnectOptions configure a Reconnecting client.
type ReconnectOptions struct {
	// Options are used for every dial; set GetToken in authenticated mode,
	// since a ticket can be used once.
	Options
	// Backoff is the delay policy between attempts.
	Backoff Backoff
	// DialTimeout bounds one attempt: dial, greeting and re-joins.
	// Default 10 s.
	DialTimeout time.Duration
	// OnStateChange, when set, is called with every transition, in order,
	// from the client's own goroutine: it must return quickly.
	OnStateChange func(StateChange)
}

// Reconnecting is a client that keeps a connection up. It redials after
// the connection ends (full-jitter backoff, honouring a 1013 retry hint;
// never after Close or a ticket refusal), trying its URLs in turn,
// re-joins the rooms joined through it resuming each after the last
// message id Next returned, and drops the duplicates that may replay.
// Its methods are safe for concurrent use; Next should have one caller at
// a time.
type Reconnecting struct {
	urls    []string
	opts    ReconnectOptions
	cancel  context.CancelFunc
	stopped chan struct{} // closed when run has returned

	mu      sync.Mutex
	state   StateChange
	cur     *Conn         // the online connection, nil otherwise
	changed chan struct{} // closed and replaced when state or cur change
	rooms   map[string]bool
	last    map[string]string // last message id Next returned, per room
	// base is, per room, the newest stored id when it was joined ("0-0"
	// for an empty room): where a resume starts before Next returned any
	// of the room's messages.
	base    map[string]string
	reading *Conn // the connection Next reads from
	drained *Conn // the last connection Next read to its end

	retry *retrier
}

// Reconnect starts a client that connects to urls (at least one; tried in
// turn on each attempt) until Close. Its goroutine starts at once; use
// WaitOnline to wait for the first connection.
func Reconnect(opts ReconnectOptions, urls ...string) *Reconnecting {
	if len(urls) == 0 {
		panic("client: Reconnect needs a URL")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reconnecting{
		urls: slices.Clone(urls), opts: opts, cancel: cancel, stopped: make(chan struct{}),
		changed: make(chan struct{}), rooms: map[string]bool{}, last: map[string]string{}, base: map[string]string{},
		retry: newRetrier(opts.Backoff),
	}
	go r.run(ctx)
	return r
}

// Close stops reconnecting, closes the connection and waits for the
// client's goroutine to return. Next then returns what was received
// before, then ErrClosed.
func (r *Reconnecting) Close() error {
	r.cancel()
	<-r.stopped
	return nil
}

// State is the client's current state.
func (r *Reconnecting) State() StateChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func (r *Reconnecting) run(ctx context.Context) {
	defer close(r.stopped)
	for attempt := 0; ; attempt++ {
		url := r.urls[attempt%len(r.urls)]
		r.set(StateChange{State: StateConnecting, URL: url}, nil)
		var lived time.Duration
		c, err := r.connect(ctx, url)
		if err == nil {
			start := time.Now()
			r.set(StateChange{State: StateOnline, URL: url}, c)
			select {
			case <-c.Done():
				err = c.Err()
				lived = time.Since(start)
			case <-ctx.Done():
				_ = c.Close()
			}
		}
		if ctx.Err() != nil {
			r.set(StateChange{State: StateClosed}, nil)
			return
		}
		if terminal(err) {
			r.set(StateChange{State: StateClosed, Err: err}, nil)
			return
		}
		delay := r.retry.next(err, lived)
		r.set(StateChange{State: StateReconnecting, Delay: delay, Err: err}, nil)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.set(StateChange{State: StateClosed}, nil)
			return
		}
	}
}

// set records a state and the online connection, wakes waiters and
// reports the change.
func (r *Reconnecting) set(s StateChange, cur *Conn) {
	r.mu.Lock()
	r.state, r.cur = s, cur
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if r.opts.OnStateChange != nil {
		r.opts.OnStateChange(s)
	}
}

// connect dials url and re-joins every room, resuming after the last id
// Next returned. A room the server now refuses (forbidden, too many, …) is
// forgotten, its Error returned by Next; a transient refusal fails the
// attempt.
func (r *Reconnecting) connect(ctx context.Context, url string) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.DialTimeout)
	defer cancel()
	c, err := Dial(ctx, url, r.opts.Options)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	rooms := slices.Sorted(maps.Keys(r.rooms))
	r.mu.Unlock()
	for _, room := range rooms {
		r.mu.Lock()
		since := r.last[room]
		if since == "" {
			since = r.base[room]
		}
		r.mu.Unlock()
		_, _, err := c.join(ctx, room, JoinOptions{Since: since}, true)
		var perr *protocol.Error
		switch {
		case err == nil:
		case errors.As(err, &perr) && !transient(perr.Code):
			r.forget(room)
		default:
			_ = c.Close()
			return nil, fmt.Errorf("client: re-join %q: %w", room, err)
		}
	}
	return c, nil
}

// transient reports whether a refusal may pass on its own.
func transient(code protocol.Code) bool {
	return code == protocol.CodeUnavailable || code == protocol.CodeRateLimited || code == protocol.CodeInternal
}

func (r *Reconnecting) forget(room string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.rooms, room)
	delete(r.last, room)
	delete(r.base, room)
}

// closedErr is what methods return once closed; r.mu is held.
func (r *Reconnecting) closedErr() error {
	if r.state.Err != nil {
		return fmt.Errorf("client: reconnecting stopped: %w", r.state.Err)
	}
	return ErrClosed
}

// WaitOnline waits until the client is online and returns the connection.
func (r *Reconnecting) WaitOnline(ctx context.Context) (*Conn, error) {
	return r.await(ctx, func() (*Conn, bool) {
		return r.cur, r.state.State == StateClosed
	})
}

// await waits until pick, called with r.mu held, returns a connection, or
// reports that the client is closed, or ctx ends.
func (r *Reconnecting) await(ctx context.Context, pick func() (c *Conn, closed bool)) (*Conn, error) {
	for {
		r.mu.Lock()
		c, closed := pick()
		ch := r.changed
		var err error
		if c == nil && closed {
			err = r.closedErr()
		}
		r.mu.Unlock()
		switch {
		case c != nil:
			return c, nil
		case err != nil:
			return nil, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Join waits until online and joins room, which is then re-joined after
// every reconnect until Leave. Since, when set, resumes after that id, as
// on Conn.Join. Without it, Join also asks for the room's newest stored
// id (GetHistory, limit 1), so that a reconnect before any message was
// returned still resumes from the join.
func (r *Reconnecting) Join(ctx context.Context, room string, o JoinOptions) (protocol.MemberList, protocol.JoinedRoom, error) {
	c, err := r.WaitOnline(ctx)
	if err != nil {
		return protocol.MemberList{}, protocol.JoinedRoom{}, err
	}
	r.mu.Lock()
	had := r.rooms[room]
	r.rooms[room] = true
	if o.Since != "" && r.last[room] == "" {
		r.last[room] = o.Since
	}
	r.mu.Unlock()
	list, joined, err := c.Join(ctx, room, o)
	if err != nil {
		if !had {
			r.forget(room)
		}
		return list, joined, err
	}
	if o.Since == "" {
		r.setBase(ctx, c, room)
	}
	return list, joined, nil
}

// setBase records where a resume of room starts until Next returns one of
// its messages. Without history there is nothing to resume from.
func (r *Reconnecting) setBase(ctx context.Context, c *Conn, room string) {
	h, err := c.History(ctx, protocol.GetHistory{Room: room, Limit: 1})
	if err != nil {
		return
	}
	base := "0-0"
	var newest struct{ ID string }
	if len(h.Messages) > 0 && json.Unmarshal(h.Messages[len(h.Messages)-1], &newest) == nil && newest.ID != "" {
		base = newest.ID
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rooms[room] && r.base[room] == "" {
		r.base[room] = base
	}
}

// Leave leaves room and stops re-joining it.
func (r *Reconnecting) Leave(ctx context.Context, room string) error {
	r.forget(room)
	c, err := r.WaitOnline(ctx)
	if err != nil {
		return err
	}
	return c.Leave(ctx, room)
}

// SendMessage waits until online and sends text to room (see
// Conn.SendMessage). A message whose connection ended before the answer is
// not resent: the caller decides, since it may have been stored.
func (r *Reconnecting) SendMessage(ctx context.Context, room, text string) (string, error) {
	c, err := r.WaitOnline(ctx)
	if err != nil {
		return "", err
	}
	return c.SendMessage(ctx, room, text)
}

// History waits until online and fetches stored messages (see
// Conn.History).
func (r *Reconnecting) History(ctx context.Context, q protocol.GetHistory) (protocol.History, error) {
	c, err := r.WaitOnline(ctx)
	if err != nil {
		return protocol.History{}, err
	}
	return c.History(ctx, q)
}

// Send waits until online and writes one envelope (see Conn.Send).
func (r *Reconnecting) Send(ctx context.Context, channel, typ string, contents any) error {
	c, err := r.WaitOnline(ctx)
	if err != nil {
		return err
	}
	return c.Send(ctx, channel, typ, contents)
}

// Next returns the next frame from the current connection, as Conn.Next,
// across reconnects: the frames of an ended connection first, then those
// of the next, starting with each re-join's MemberList and JoinedRoom
// (whose Recovered is false when messages were lost: fetch them with
// History before the oldest replayed id) or the Error refusing it. Room
// messages already returned are skipped; Gap notices pass through. After Close, or once reconnecting stopped
// for good, it returns the remaining frames, then the reason.
func (r *Reconnecting) Next(ctx context.Context) (Frame, error) {
	for {
		c, err := r.readConn(ctx)
		if err != nil {
			return Frame{}, err
		}
		f, err := c.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Frame{}, ctx.Err()
			}
			r.mu.Lock()
			if r.reading == c {
				r.reading, r.drained = nil, c
			}
			r.mu.Unlock()
			continue
		}
		if r.duplicate(f) {
			continue
		}
		return f, nil
	}
}

// readConn returns the connection Next reads from, waiting for a new one
// when the last has been read to its end.
func (r *Reconnecting) readConn(ctx context.Context) (*Conn, error) {
	return r.await(ctx, func() (*Conn, bool) {
		if r.reading == nil && r.cur != nil && r.cur != r.drained {
			r.reading = r.cur
		}
		return r.reading, r.state.State == StateClosed
	})
}

// duplicate reports whether f is a room message at or before the last id
// Next returned for its room, and otherwise records its id.
func (r *Reconnecting) duplicate(f Frame) bool {
	if f.Channel != protocol.ChannelChatRoom || f.Type != protocol.TypeNewMessage {
		return false
	}
	var m struct{ ID, Room string }
	if json.Unmarshal(f.Contents, &m) != nil || m.ID == "" {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if last := r.last[m.Room]; last != "" && CompareIDs(m.ID, last) <= 0 {
		return true
	}
	r.last[m.Room] = m.ID
	return false
}
