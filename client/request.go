package client

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/protocol"
)

// kind is what a request waits for.
type kind int

const (
	kindJoin    kind = iota // MemberList, then JoinedRoom
	kindLeave               // LeftRoom
	kindHistory             // History
	kindSend                // Sent, or (refs not echoed) its own NewMessage
)

// request is a frame sent with a ref, waiting for its reply.
type request struct {
	kind    kind
	ref     string
	channel string
	room    string
	text    string // a send's message, to recognise it when it comes back
	// echo also queues the reply frames for Next, in their place among the
	// others (a Reconnecting client's re-joins).
	echo bool

	// Set under Conn.mu before done is closed.
	list  *Frame // a join's MemberList
	reply Frame
	err   error
	done  chan struct{}
}

// expects reports whether f, carrying r's ref, is a reply r waits for.
func (r *request) expects(f Frame) bool {
	if f.Type == protocol.TypeError {
		return true
	}
	switch r.kind {
	case kindJoin:
		return f.Type == protocol.TypeMemberList || f.Type == protocol.TypeJoinedRoom
	case kindLeave:
		return f.Type == protocol.TypeLeftRoom
	case kindHistory:
		return f.Type == protocol.TypeHistory
	case kindSend:
		return f.Type == protocol.TypeSent
	}
	return false
}

// finish completes r; Conn.mu is held and r was just removed from pending.
func (r *request) finish(f Frame, err error) {
	r.reply, r.err = f, err
	close(r.done)
}

// dispatch routes one received frame to the request it answers, or to the
// queue for Next. It reports false when the queue overflowed.
func (c *Conn) dispatch(f Frame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, learnt := c.match(f)
	if r == nil {
		return c.enqueue(f)
	}
	ok := true
	if r.echo || f.Type == protocol.TypeNewMessage { // a send's own message is every member's too
		ok = c.enqueue(f)
	}
	switch {
	case f.Type == protocol.TypeError:
		c.complete(r, f, f.Err())
	case r.kind == kindJoin && f.Type == protocol.TypeMemberList:
		r.list = &f
	default:
		c.complete(r, f, nil)
	}
	c.learn(learnt)
	return ok
}

// match finds the pending request f answers: by ref, or, while the server
// is not known to echo refs, by channel, type, room and order (the server
// answers one connection's frames in the order they were sent). It also
// returns what f teaches about the server's ref echo. c.mu is held.
func (c *Conn) match(f Frame) (*request, refSupport) {
	if f.Ref != "" { // only a server that echoes refs sends any
		for _, r := range c.pending {
			if r.ref == f.Ref && r.expects(f) {
				return r, refsEchoed
			}
		}
		c.learn(refsEchoed)
		return nil, refsUnknown
	}
	if len(c.pending) == 0 || refSupport(c.refs.Load()) == refsEchoed {
		return nil, refsUnknown
	}
	var who struct{ Room, User, Message string }
	switch f.Type {
	case protocol.TypeMemberList, protocol.TypeJoinedRoom, protocol.TypeLeftRoom, protocol.TypeHistory, protocol.TypeNewMessage:
		if json.Unmarshal(f.Contents, &who) != nil {
			return nil, refsUnknown
		}
	case protocol.TypeError:
	default:
		return nil, refsUnknown
	}
	for _, r := range c.pending {
		// Errors about frames whose channel could not be handled (e.g.
		// rate_limited) come on "error".
		if r.channel != f.Channel && !(f.Type == protocol.TypeError && f.Channel == protocol.ChannelError) {
			continue
		}
		var ok bool
		switch f.Type {
		case protocol.TypeError:
			ok = true
		case protocol.TypeNewMessage:
			// The sender receives its own message like every member: it
			// completes the send without telling anything of refs, as it
			// may beat the Sent acknowledgement.
			if r.kind == kindSend && r.room == who.Room && who.User == c.hello.User && r.text == who.Message {
				return r, refsUnknown
			}
		case protocol.TypeMemberList:
			ok = r.kind == kindJoin && r.list == nil && r.room == who.Room
		case protocol.TypeJoinedRoom:
			ok = r.kind == kindJoin && r.list != nil && r.room == who.Room && who.User == c.hello.User
		case protocol.TypeLeftRoom:
			ok = r.kind == kindLeave && r.room == who.Room && who.User == c.hello.User
		case protocol.TypeHistory:
			ok = r.kind == kindHistory && r.room == who.Room
		}
		if ok {
			return r, refsIgnored
		}
	}
	return nil, refsUnknown
}

// learn records the server's ref echo the first time a reply shows it.
func (c *Conn) learn(s refSupport) {
	if s != refsUnknown {
		c.refs.CompareAndSwap(int32(refsUnknown), int32(s))
	}
}

// complete removes r from pending and finishes it; c.mu is held.
func (c *Conn) complete(r *request, f Frame, err error) {
	i := slices.Index(c.pending, r)
	if i < 0 {
		return
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	r.finish(f, err)
}

// roundTrip sends typ/contents on r.channel with a fresh ref and waits for
// r's reply or ctx. A reply that comes after ctx ended goes to Next.
func (c *Conn) roundTrip(ctx context.Context, r *request, typ string, contents any) (Frame, error) {
	r.ref = c.newRef()
	r.done = make(chan struct{})
	frame, err := encode(r.channel, r.ref, typ, contents)
	if err != nil {
		return Frame{}, err
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return Frame{}, err
	}
	c.pending = append(c.pending, r)
	c.mu.Unlock()
	if err := c.write(ctx, websocket.MessageText, frame); err != nil {
		c.abandon(r)
		return Frame{}, err
	}
	select {
	case <-r.done:
		return r.reply, r.err
	case <-ctx.Done():
		if c.abandon(r) {
			return Frame{}, ctx.Err()
		}
	}
	<-r.done // finished while we gave up: the reply won
	return r.reply, r.err
}

// abandon removes r from pending, reporting false if it had finished.
func (c *Conn) abandon(r *request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.pending, r)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	return true
}
