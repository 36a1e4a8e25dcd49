package broker

import "github.com/redis/go-redis/v9"

// channelState is what a shard knows of one channel it serves.
//
// Messages are told apart, and gaps found, by their Redis stream ids
// rather than by contiguous per-topic offsets (as centrifuge's offset and
// epoch). The stream id is the id clients see on the wire and resume from
// with since, so golden frames and resumption stay as they are; it is
// assigned by the same atomic XADD that publishes the message, so it needs
// no second counter kept in step with the stream; and since ids are not
// contiguous, a gap is not read from the numbers but found by reading the
// history after the last delivered id whenever a subscription is restored
// (a lost message can only be lost while the connection is down).
type channelState struct {
	topic string
	// wanted is false while an unsubscribe awaits its answer.
	wanted bool
	// confirmed is true once Redis confirmed the subscription on the
	// current connection.
	confirmed bool
	// pending counts answers still due to (un)subscribe commands sent on
	// the current connection.
	pending int
	// waiters are Subscribe calls waiting for the confirmation.
	waiters []chan<- error
	// lastID is the id of the newest stored message delivered, "" before
	// the first (or after a Gap).
	lastID string
	// fill is non-nil while a gap fill runs.
	fill *gapFill
}

// release answers every waiting Subscribe call with err.
func (st *channelState) release(err error) {
	for _, w := range st.waiters {
		w <- err
	}
	st.waiters = nil
}

// subscribe starts serving a channel the set asked for.
func (sh *shard) subscribe(c subscribeCmd) {
	if !sh.set.owns(sh, c.channel) {
		// Given back or given up since the command was sent.
		if c.reply != nil {
			c.reply <- ErrUnavailable
		}
		return
	}
	st := sh.chans[c.channel]
	if st == nil {
		st = &channelState{topic: c.topic, lastID: c.resume}
		sh.chans[c.channel] = st
	}
	leaving := !st.wanted && st.pending > 0
	st.wanted = true
	if st.confirmed && st.pending == 0 {
		if c.reply != nil {
			c.reply <- nil
		}
		return
	}
	if c.reply != nil {
		st.waiters = append(st.waiters, c.reply)
	}
	// Connected: ask now (unless asked already). Disconnected: the next
	// connection asks for every channel, which answers this call too.
	if sh.ps != nil && (st.pending == 0 || leaving) {
		if err := sh.write(true, c.channel); err != nil {
			sh.log.Debug("subscribe command failed", "channel", c.channel, "err", err)
		}
	}
}

// unsubscribe stops serving a channel. Its state stays until Redis has
// answered every command sent for it, so that those answers are not
// mistaken for news.
func (sh *shard) unsubscribe(ch string) {
	st := sh.chans[ch]
	if st == nil || !st.wanted {
		return
	}
	st.wanted, st.confirmed, st.fill = false, false, nil
	st.release(ErrUnavailable)
	if sh.ps != nil {
		if err := sh.write(false, ch); err != nil {
			sh.log.Debug("unsubscribe command failed", "channel", ch, "err", err)
		}
	}
	if st.pending == 0 {
		delete(sh.chans, ch)
	}
}

// write sends a (un)subscribe command for channels, counting the answers
// it awaits. It is written under the set's context, not a caller's:
// go-redis drops a connection whose write was cancelled, and this one
// carries every subscription of the shard.
func (sh *shard) write(subscribe bool, channels ...string) error {
	for _, ch := range channels {
		sh.chans[ch].pending++
	}
	ctx, sharded := sh.set.ctx, sh.set.deps.cluster
	switch {
	case subscribe && sharded:
		var first error
		for _, ch := range channels { // one command per channel: channels of one SSUBSCRIBE must share a slot
			if err := sh.ps.SSubscribe(ctx, ch); err != nil && first == nil {
				first = err
			}
		}
		return first
	case subscribe:
		return sh.ps.Subscribe(ctx, channels...)
	case sharded:
		return sh.ps.SUnsubscribe(ctx, channels...)
	default:
		return sh.ps.Unsubscribe(ctx, channels...)
	}
}

// onSubscription applies Redis's answer to a (un)subscribe command.
func (sh *shard) onSubscription(m *redis.Subscription) {
	st := sh.chans[m.Channel]
	if st == nil {
		return
	}
	switch m.Kind {
	case "subscribe", "ssubscribe":
		if st.pending > 0 {
			st.pending--
		}
		if st.pending > 0 {
			return
		}
		if !st.wanted {
			delete(sh.chans, m.Channel)
			return
		}
		sh.confirm(m.Channel, st)
	case "unsubscribe", "sunsubscribe":
		if st.pending > 0 {
			if st.pending--; st.pending == 0 && !st.wanted {
				delete(sh.chans, m.Channel)
			}
			return
		}
		// Not an answer: Redis unsubscribes shard channels by itself when
		// their slot moves to another master. Follow the slot.
		if st.wanted {
			sh.log.Info("redis moved a subscription; re-routing", "channel", m.Channel)
			st.release(ErrUnavailable)
			delete(sh.chans, m.Channel)
			sh.set.giveBack(sh, map[string]string{m.Channel: st.lastID})
		}
	}
}

// onMessage delivers one pub/sub message, or holds it while its channel's
// gap is being filled. Messages of channels the shard no longer serves
// (still in flight when it unsubscribed) are dropped.
func (sh *shard) onMessage(m *redis.Message) {
	st := sh.chans[m.Channel]
	if st == nil || !st.wanted {
		return
	}
	msg, ok := sh.set.deps.decode(st.topic, m.Payload)
	if !ok {
		sh.log.Error("dropping malformed pub/sub payload", "channel", m.Channel)
		return
	}
	if st.fill != nil {
		st.fill.hold(msg)
		return
	}
	sh.deliver(st, msg)
}

// deliver passes msg on, skipping a stored message not newer than the
// last one delivered on its channel (a gap fill delivered it already).
func (sh *shard) deliver(st *channelState, msg Message) {
	if msg.ID != "" {
		if st.lastID != "" && CompareIDs(msg.ID, st.lastID) <= 0 {
			return
		}
		st.lastID = msg.ID
	}
	sh.set.deps.deliver(msg)
}
