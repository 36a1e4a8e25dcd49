package broker

import "context"

// Bounds of a gap fill: what a node replays by itself after its pub/sub
// connection came back. Small enough that its members' send queues take it
// on top of live traffic; a larger gap is handed to them as a Gap message.
const (
	gapFillMessages = 1000
	gapFillBytes    = 256 << 10
)

// Bounds of what a channel holds of its live traffic while its gap is
// being filled. Past them it is dropped, and the fill ends with a Gap.
const (
	gapHoldMessages = 1000
	gapHoldBytes    = 1 << 20
)

// gapFill is one channel's catch-up under way: the live messages that
// arrived meanwhile, delivered after the missed ones.
type gapFill struct {
	held      []Message
	heldBytes int
	overflow  bool
}

func (f *gapFill) hold(m Message) {
	if f.overflow {
		return
	}
	if len(f.held) == gapHoldMessages || f.heldBytes+len(m.Data) > gapHoldBytes {
		f.overflow, f.held = true, nil
		return
	}
	f.held = append(f.held, m)
	f.heldBytes += len(m.Data)
}

// fillDone is a finished gap fill's history read, back to its shard.
type fillDone struct {
	channel string
	fill    *gapFill
	page    HistoryPage
	err     error
}

// confirm marks a channel subscribed on this connection and answers its
// waiters. If it had carried stored messages before, those published
// while it was not subscribed are read from history on another goroutine;
// its live messages are held until they are delivered, while every other
// channel flows on.
func (sh *shard) confirm(ch string, st *channelState) {
	st.confirmed = true
	st.release(nil)
	if st.lastID == "" || sh.set.deps.history == nil {
		return
	}
	if sh.lost {
		// The streams were wiped with the rest of Redis's data: what was
		// stored after lastID and not yet delivered cannot be read back.
		after := st.lastID
		st.lastID = ""
		sh.set.deps.deliver(Message{Topic: st.topic, ID: after, Gap: true})
		return
	}
	f := &gapFill{}
	st.fill = f
	topic, since, set := st.topic, st.lastID, sh.set
	set.wg.Go(func() {
		page, err := set.readGap(topic, since)
		sh.send(fillDone{channel: ch, fill: f, page: page, err: err})
	})
}

// readGap reads the stored messages of topic after since, within the gap
// fill's bounds, at most maxFills at a time.
func (s *subscriptions) readGap(topic, since string) (HistoryPage, error) {
	select {
	case s.fills <- struct{}{}:
		defer func() { <-s.fills }()
	case <-s.ctx.Done():
		return HistoryPage{}, ErrClosed
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.deps.opTimeout)
	defer cancel()
	return s.deps.history(ctx, topic, HistoryQuery{Since: since, Limit: gapFillMessages, MaxBytes: gapFillBytes})
}

// filled delivers a channel's missed messages, then what it held meanwhile.
// A gap beyond the bounds, partly trimmed already, that could not be read,
// or during which too much live traffic arrived, is not replayed: a Gap
// message tells the topic's subscribers to catch up from history
// themselves (their clients resume with since).
func (sh *shard) filled(d fillDone) {
	st := sh.chans[d.channel]
	if st == nil || st.fill != d.fill {
		return // unsubscribed, or the connection broke: a later fill covers it
	}
	st.fill = nil
	page, err := d.page, d.err
	trimmed := err == nil && len(page.Messages) > 0 && !page.Recovered
	if err != nil || !page.Complete || trimmed || d.fill.overflow {
		sh.log.Warn("messages were missed while disconnected; asking the topic's clients to catch up",
			"topic", st.topic, "err", err, "trimmed", trimmed, "overflow", d.fill.overflow)
		after := st.lastID
		st.lastID = ""
		sh.set.deps.deliver(Message{Topic: st.topic, ID: after, Gap: true})
	} else {
		if len(page.Messages) > 0 {
			sh.log.Info("delivering messages published while disconnected", "topic", st.topic, "count", len(page.Messages))
		}
		for _, m := range page.Messages {
			sh.deliver(st, m)
		}
	}
	for _, m := range d.fill.held {
		sh.deliver(st, m)
	}
}
