// Package rooms is this node's hub: the one record of which local
// connections are in which topic (rooms, the global chat, pings, user
// inboxes), holding one broker subscription per topic for exactly as long
// as a local connection wants it, and fanning each broker message out to
// the topic's members encoded once.
package rooms

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// Member is a local connection as the hub sees it.
type Member interface {
	// ID identifies the connection; broker.Message.Except refers to it.
	ID() string
	// User is the connection's user: a held member drops announcements
	// about its own user (see Drain).
	User() string
	// Deliver sends a frame to the connection without blocking: at once
	// if its socket takes it, else through its queue.
	Deliver(frame []byte)
	// Queue queues a frame for the connection without blocking and
	// without writing it on the caller's goroutine.
	Queue(frame []byte)
}

// directFanout is the most local members a topic may have for its
// broadcasts to be written by the delivering goroutine (Member.Deliver):
// a small room's message then costs one system call per member and no
// goroutine. Larger topics queue (Member.Queue), so that each member's
// writer does its share in parallel and the topic's lock, which joins
// and leaves wait for, is held only as long as queueing takes.
const directFanout = 64

// GapFrame renders the notice telling a topic's members that messages
// after the id after may be missing (the node's link to the broker broke
// for longer than it could bridge); nil for topics that keep no history,
// whose messages are delivered at most once anyway.
type GapFrame func(topic, after string) []byte

// ErrHoldOverflow is returned by Drain when more live frames arrived for a
// held member than the hub buffers: the member is too slow to be caught
// up and should be disconnected.
var ErrHoldOverflow = errors.New("too many messages arrived while the member was held")

// Hub maps topics to local members and reference-counts the node's broker
// subscriptions. It is safe for concurrent use. Broker calls are never
// made while a lock that Deliver needs is held.
type Hub struct {
	broker    broker.Subscriber
	log       *slog.Logger
	holdBytes int
	gapFrame  GapFrame

	mu     sync.Mutex
	topics map[string]*topic
	// joined indexes membership by connection: member id → its topics.
	// It changes together with the topics' member sets, under mu.
	joined map[string]map[string]struct{}
}

type topic struct {
	name string
	refs int // members, joins in progress and pins; guarded by Hub.mu

	// op serialises Subscribe/Unsubscribe of this topic. It is a channel so
	// that waiting for it honours a context: joiners queued behind a
	// Subscribe that hangs on Redis give up at their own deadline.
	op         chan struct{}
	subscribed bool // Subscribe succeeded; guarded by op
	wanted     bool // Subscribe was called, even if it failed; guarded by op

	mu      sync.Mutex // guards members
	members map[string]*member
}

// member is one connection in one topic. While held, frames are buffered
// instead of delivered so that a replay can be sent first; after, frames
// whose id is not newer than after were already replayed and are dropped.
type member struct {
	m        Member
	held     bool
	overflow bool
	buffer   []heldFrame
	buffered int // bytes in buffer
	after    string
}

// heldFrame is a rendered frame with what Drain needs to know of it.
type heldFrame struct {
	id, about string
	frame     []byte
}

// New returns a hub that subscribes through b. holdBytes bounds how much
// a held member buffers (see Join); gap renders gap notices (nil: none).
func New(b broker.Subscriber, holdBytes int, gap GapFrame, log *slog.Logger) *Hub {
	return &Hub{
		broker: b, holdBytes: holdBytes, gapFrame: gap, log: log,
		topics: make(map[string]*topic), joined: make(map[string]map[string]struct{}),
	}
}

// reserve takes a reference on the named topic, creating it if needed.
func (h *Hub) reserve(name string) *topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		t = &topic{name: name, members: make(map[string]*member), op: make(chan struct{}, 1)}
		h.topics[name] = t
	}
	t.refs++
	return t
}

// release drops a reference and, if it was the last, the broker
// subscription and the topic itself.
func (h *Hub) release(ctx context.Context, t *topic) error {
	h.mu.Lock()
	t.refs--
	h.mu.Unlock()

	t.op <- struct{}{}
	defer func() { <-t.op }()
	h.mu.Lock()
	unused := t.refs == 0
	h.mu.Unlock()
	if !unused {
		return nil
	}
	var err error
	if t.wanted {
		// Also after a failed Subscribe: the broker keeps wanting a topic
		// it could not subscribe until told otherwise.
		err = h.broker.Unsubscribe(ctx, t.name)
		t.subscribed, t.wanted = false, false
	}
	h.mu.Lock()
	if t.refs == 0 && h.topics[t.name] == t {
		delete(h.topics, t.name)
	}
	h.mu.Unlock()
	return err
}

// ensureSubscribed subscribes the node to t unless it already is.
func (h *Hub) ensureSubscribed(ctx context.Context, t *topic) error {
	select {
	case t.op <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-t.op }()
	if t.subscribed {
		return nil
	}
	t.wanted = true
	if err := h.broker.Subscribe(ctx, t.name); err != nil {
		return err
	}
	t.subscribed = true
	return nil
}

// Pin subscribes the node to a topic for its whole life, whether or not
// any member wants it (the global chat and ping topics). If the broker
// cannot subscribe now, the pin holds and the broker subscribes the topic
// when it can; the error only reports the delay.
func (h *Hub) Pin(ctx context.Context, name string) error {
	return h.ensureSubscribed(ctx, h.reserve(name))
}

// Join adds m to a topic, subscribing the node first if m is its first
// local member; it returns once the subscription is in effect. It reports
// false, changing nothing, if m is already a member. A held member buffers
// the topic's frames until Drain ends the hold, so the caller can send it
// something first (a member list, a history replay) without live frames
// overtaking.
func (h *Hub) Join(ctx context.Context, name string, m Member, held bool) (bool, error) {
	t := h.reserve(name)
	if err := h.ensureSubscribed(ctx, t); err != nil {
		_ = h.release(context.WithoutCancel(ctx), t)
		return false, err
	}
	h.mu.Lock()
	topics := h.joined[m.ID()]
	_, already := topics[name]
	if !already {
		if topics == nil {
			topics = make(map[string]struct{})
			h.joined[m.ID()] = topics
		}
		topics[name] = struct{}{}
		t.mu.Lock()
		t.members[m.ID()] = &member{m: m, held: held}
		t.mu.Unlock()
	}
	h.mu.Unlock()
	if already {
		_ = h.release(ctx, t) // the existing membership keeps its own reference
		return false, nil
	}
	return true, nil
}

// Leave removes a member from a topic, unsubscribing the node if it was the
// last. It reports whether the member was there.
func (h *Hub) Leave(ctx context.Context, name, memberID string) (bool, error) {
	h.mu.Lock()
	t := h.topics[name]
	_, ok := h.joined[memberID][name]
	if ok {
		delete(h.joined[memberID], name)
		if len(h.joined[memberID]) == 0 {
			delete(h.joined, memberID)
		}
		t.mu.Lock()
		delete(t.members, memberID)
		t.mu.Unlock()
	}
	h.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, h.release(ctx, t)
}

// IsMember reports whether a connection is in a topic (held or live).
func (h *Hub) IsMember(name, memberID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.joined[memberID][name]
	return ok
}

// TopicsOf lists the topics a connection is in whose names start with
// prefix, in no particular order.
func (h *Hub) TopicsOf(memberID, prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for name := range h.joined[memberID] {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// Topics lists the topics with at least one local member whose names
// start with prefix, in no particular order.
func (h *Hub) Topics(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for name, t := range h.topics {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		t.mu.Lock()
		n := len(t.members)
		t.mu.Unlock()
		if n > 0 {
			names = append(names, name)
		}
	}
	return names
}

// Drain hands a held member's buffered frames to the caller, which sends
// them in order, and ends the hold once nothing is left: call it until it
// reports live. Frames no newer than after (already replayed) are
// dropped, now and, while they may still be in flight, after the hold
// ends; so are announcements about the member's own user, which predate
// its join (another tab of the same user coming or going at that moment).
// Handing frames back rather than queueing them lets the caller wait for
// room in the member's queue instead of overflowing it.
func (h *Hub) Drain(name, memberID, after string) (frames [][]byte, live bool, err error) {
	t := h.lookup(name)
	if t == nil {
		return nil, true, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	mb := t.members[memberID]
	if mb == nil || !mb.held {
		return nil, true, nil
	}
	if mb.overflow {
		mb.held, mb.buffer, mb.buffered = false, nil, 0
		return nil, true, ErrHoldOverflow
	}
	user := mb.m.User()
	for _, f := range mb.buffer {
		if f.about != "" && f.about == user {
			continue
		}
		if after == "" || f.id == "" || broker.CompareIDs(f.id, after) > 0 {
			frames = append(frames, f.frame)
		}
	}
	if len(mb.buffer) == 0 {
		mb.held, mb.after = false, after
		return nil, true, nil
	}
	mb.buffer, mb.buffered = nil, 0
	return frames, false, nil
}

// deliver sends a frame to a live member, skipping frames already
// replayed; now selects Member.Deliver over Member.Queue.
func (mb *member) deliver(id string, frame []byte, now bool) {
	if mb.after != "" && id != "" {
		if broker.CompareIDs(id, mb.after) <= 0 {
			return
		}
		mb.after = "" // ids only grow from here
	}
	if now {
		mb.m.Deliver(frame)
	} else {
		mb.m.Queue(frame)
	}
}

func (h *Hub) lookup(name string) *topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.topics[name]
}

// Deliver fans a broker message out to the topic's local members. The
// publication is rendered once, with its id in place, and the same bytes
// are queued for every member. It never blocks on a member.
func (h *Hub) Deliver(msg broker.Message) {
	t := h.lookup(msg.Topic)
	if t == nil {
		return
	}
	var frame []byte
	var about, msgID string // a gap notice has neither
	switch {
	case msg.Gap:
		// The connections stay; each is told from which id to catch up.
		if h.gapFrame == nil {
			return
		}
		if frame = h.gapFrame(msg.Topic, msg.ID); frame == nil {
			return
		}
	default:
		pub, err := protocol.ParsePublication(msg.Data, msg.ID)
		if err != nil {
			h.log.Error("dropping unreadable broker message", "topic", msg.Topic, "err", err)
			return
		}
		frame, about, msgID = pub.Frame(), pub.About, msg.ID
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := len(t.members) <= directFanout
	for memberID, mb := range t.members {
		switch {
		case memberID == msg.Except:
		case mb.held && mb.buffered+len(frame) > h.holdBytes:
			mb.overflow = true
		case mb.held:
			mb.buffer = append(mb.buffer, heldFrame{id: msgID, about: about, frame: frame})
			mb.buffered += len(frame)
		case about != "" && about == mb.m.User():
			// Another connection of the member's own user came or went: its
			// user is present all along, as far as this member goes.
		default:
			mb.deliver(msgID, frame, now)
		}
	}
}

// Subscribed reports whether the node holds a broker subscription for the
// topic (for tests and metrics).
func (h *Hub) Subscribed(name string) bool {
	t := h.lookup(name)
	if t == nil {
		return false
	}
	t.op <- struct{}{}
	defer func() { <-t.op }()
	return t.subscribed
}

// Subscriptions reports how many topics the node holds (or is taking) a
// broker subscription for.
func (h *Hub) Subscriptions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.topics)
}

// Count reports how many local members a topic has.
func (h *Hub) Count(name string) int {
	t := h.lookup(name)
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.members)
}
