// Package rooms keeps this node's local subscriptions: which connections
// want which topic, with one broker subscription per topic held for exactly
// as long as at least one local connection wants it.
package rooms

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// Member is a local connection as the registry sees it.
type Member interface {
	// ID identifies the connection; broker.Message.Except refers to it.
	ID() string
	// Deliver queues a frame for the connection without blocking.
	Deliver(frame []byte)
	// Resync tells the connection it missed messages the node could not
	// replay; it must catch up from history (the client reconnects and
	// resumes). It must not block.
	Resync()
}

// Subscriber is the part of the broker the registry drives.
type Subscriber interface {
	Subscribe(ctx context.Context, topic string) error
	Unsubscribe(ctx context.Context, topic string) error
}

// ErrHoldOverflow is returned by Drain when more live frames arrived for a
// held member than the registry buffers: the member is too slow to be
// caught up and should be disconnected.
var ErrHoldOverflow = errors.New("too many messages arrived while the member was held")

// Registry maps topics to local members and reference-counts the node's
// broker subscriptions. It is safe for concurrent use. Broker calls are
// never made while a lock that Deliver needs is held.
type Registry struct {
	broker    Subscriber
	log       *slog.Logger
	holdBytes int

	mu     sync.Mutex
	topics map[string]*topic
}

type topic struct {
	name string
	refs int // members, joins in progress and pins; guarded by Registry.mu

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

type heldFrame struct {
	id    string
	frame []byte
}

// New returns a registry that subscribes through b. holdBytes bounds how
// much a held member buffers (see Join).
func New(b Subscriber, holdBytes int, log *slog.Logger) *Registry {
	return &Registry{broker: b, holdBytes: holdBytes, log: log, topics: make(map[string]*topic)}
}

// reserve takes a reference on the named topic, creating it if needed.
func (r *Registry) reserve(name string) *topic {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.topics[name]
	if t == nil {
		t = &topic{name: name, members: make(map[string]*member), op: make(chan struct{}, 1)}
		r.topics[name] = t
	}
	t.refs++
	return t
}

// release drops a reference and, if it was the last, the broker
// subscription and the topic itself.
func (r *Registry) release(ctx context.Context, t *topic) error {
	r.mu.Lock()
	t.refs--
	r.mu.Unlock()

	t.op <- struct{}{}
	defer func() { <-t.op }()
	r.mu.Lock()
	unused := t.refs == 0
	r.mu.Unlock()
	if !unused {
		return nil
	}
	var err error
	if t.wanted {
		// Also after a failed Subscribe: the broker keeps wanting a topic
		// it could not subscribe until told otherwise.
		err = r.broker.Unsubscribe(ctx, t.name)
		t.subscribed, t.wanted = false, false
	}
	r.mu.Lock()
	if t.refs == 0 && r.topics[t.name] == t {
		delete(r.topics, t.name)
	}
	r.mu.Unlock()
	return err
}

// ensureSubscribed subscribes the node to t unless it already is.
func (r *Registry) ensureSubscribed(ctx context.Context, t *topic) error {
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
	if err := r.broker.Subscribe(ctx, t.name); err != nil {
		return err
	}
	t.subscribed = true
	return nil
}

// Pin subscribes the node to a topic for its whole life, whether or not
// any member wants it (the global chat and ping topics). If the broker
// cannot subscribe now, the pin holds and the broker subscribes the topic
// when it can; the error only reports the delay.
func (r *Registry) Pin(ctx context.Context, name string) error {
	return r.ensureSubscribed(ctx, r.reserve(name))
}

// Join adds m to a topic, subscribing the node first if m is its first
// local member; it returns once the subscription is in effect. It reports
// false, changing nothing, if m is already a member. A held member buffers
// the topic's frames until Drain ends the hold, so the caller can send it
// something first (a member list, a history replay) without live frames
// overtaking.
func (r *Registry) Join(ctx context.Context, name string, m Member, held bool) (bool, error) {
	t := r.reserve(name)
	if err := r.ensureSubscribed(ctx, t); err != nil {
		_ = r.release(context.WithoutCancel(ctx), t)
		return false, err
	}
	t.mu.Lock()
	_, already := t.members[m.ID()]
	if !already {
		t.members[m.ID()] = &member{m: m, held: held}
	}
	t.mu.Unlock()
	if already {
		_ = r.release(ctx, t) // the existing membership keeps its own reference
		return false, nil
	}
	return true, nil
}

// Drain hands a held member's buffered frames to the caller, which sends
// them in order, and ends the hold once nothing is left: call it until it
// reports live. Frames no newer than after (already replayed) are
// dropped, now and, while they may still be in flight, after the hold
// ends. Handing frames back rather than queueing them lets the caller
// wait for room in the member's queue instead of overflowing it.
func (r *Registry) Drain(name, memberID, after string) (frames [][]byte, live bool, err error) {
	t := r.lookup(name)
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
	for _, h := range mb.buffer {
		if after == "" || h.id == "" || broker.CompareIDs(h.id, after) > 0 {
			frames = append(frames, h.frame)
		}
	}
	if len(mb.buffer) == 0 {
		mb.held, mb.after = false, after
		return nil, true, nil
	}
	mb.buffer, mb.buffered = nil, 0
	return frames, false, nil
}

// deliver sends a frame to a live member, skipping frames already replayed.
func (mb *member) deliver(id string, frame []byte) {
	if mb.after != "" && id != "" {
		if broker.CompareIDs(id, mb.after) <= 0 {
			return
		}
		mb.after = "" // ids only grow from here
	}
	mb.m.Deliver(frame)
}

// Leave removes a member from a topic, unsubscribing the node if it was the
// last. It reports whether the member was there.
func (r *Registry) Leave(ctx context.Context, name, memberID string) (bool, error) {
	t := r.lookup(name)
	if t == nil {
		return false, nil
	}
	t.mu.Lock()
	_, ok := t.members[memberID]
	delete(t.members, memberID)
	t.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, r.release(ctx, t)
}

func (r *Registry) lookup(name string) *topic {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topics[name]
}

// Deliver fans a broker message out to the topic's local members. The frame
// is rendered once (its id stamped in) and the same bytes are queued for
// every member. It never blocks on a member.
func (r *Registry) Deliver(msg broker.Message) {
	t := r.lookup(msg.Topic)
	if t == nil {
		return
	}
	if msg.Gap {
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, mb := range t.members {
			mb.m.Resync()
		}
		return
	}
	frame := msg.Data
	if msg.ID != "" {
		stamped, err := protocol.WithID(msg.Data, msg.ID)
		if err != nil {
			r.log.Error("dropping unreadable broker message", "topic", msg.Topic, "err", err)
			return
		}
		frame = stamped
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, mb := range t.members {
		switch {
		case id == msg.Except:
		case mb.held && mb.buffered+len(frame) > r.holdBytes:
			mb.overflow = true
		case mb.held:
			mb.buffer = append(mb.buffer, heldFrame{id: msg.ID, frame: frame})
			mb.buffered += len(frame)
		default:
			mb.deliver(msg.ID, frame)
		}
	}
}

// Subscribed reports whether the node holds a broker subscription for the
// topic (for tests and metrics).
func (r *Registry) Subscribed(name string) bool {
	t := r.lookup(name)
	if t == nil {
		return false
	}
	t.op <- struct{}{}
	defer func() { <-t.op }()
	return t.subscribed
}

// Subscriptions reports how many topics the node holds (or is taking) a
// broker subscription for.
func (r *Registry) Subscriptions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.topics)
}

// Count reports how many local members a topic has.
func (r *Registry) Count(name string) int {
	t := r.lookup(name)
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.members)
}
