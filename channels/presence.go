package channels

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/internal/spread"
	"github.com/switchboard/switchboard/protocol"
)

// announcement is the publication telling a room that user joined or
// left. It names the user (About) so that a joiner of the same user can
// drop it unread (see Hub.Drain). The broker publishes it only while the
// room is smaller than LARGE_ROOM.
func announcement(typ, room, user string) []byte {
	p := protocol.NewPublication(protocol.ChannelChatRoom, typ, protocol.RoomUser{Room: room, User: user})
	p.About = user
	return p.Marshal()
}

// removePresence takes c out of room's presence; if it was the user's last
// connection there, the broker tells the room (LeftRoom) in the same step.
// A failure is logged: the entry then expires and is swept, and announced
// as gone by whichever node sweeps it.
func (cr *ChatRoom) removePresence(ctx context.Context, c Client, room string) {
	left := announcement(protocol.TypeLeftRoom, room, c.User())
	if _, err := cr.broker.RemovePresence(ctx, RoomTopic(room), c.User(), c.ID(), left); err != nil {
		cr.log.Warn("presence not removed; it will expire", "room", room, "user", c.User(), "err", err)
	}
}

// SweepExpired runs until ctx ends, every interval telling the rooms this
// node has members in about users whose presence expired (their node
// crashed): they get the LeftRoom a graceful disconnect would have sent.
// Whichever node sweeps a room first announces each such user, once; with
// Redis, a sweep locks the room for most of an interval, so other nodes'
// sweeps of it in the meantime cost next to nothing. The rooms are swept
// a slice at a time (spread.Slices per interval), so that a node with
// thousands of rooms sweeps a steady trickle of them, not all at once.
func (cr *ChatRoom) SweepExpired(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(max(interval/spread.Slices, time.Millisecond))
	defer t.Stop()
	for slice := 0; ; slice = (slice + 1) % spread.Slices {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cr.sweep(ctx, slice)
		}
	}
}

// sweepsInFlight bounds the rooms swept at once. The broker sends sweeps
// that are in flight together in one round trip, so a node with many
// rooms sweeps them in a few round trips rather than one after another;
// few enough that one round trip does not hold Redis for long.
const sweepsInFlight = 16

// sweep sweeps the rooms of one slice (spread.SliceOf) this node has
// members in, sweepsInFlight at a time, and returns when all are done.
func (cr *ChatRoom) sweep(ctx context.Context, slice int) {
	var topics []string
	for _, topic := range cr.hub.Topics(roomTopicPrefix) {
		if spread.SliceOf(topic) == slice {
			topics = append(topics, topic)
		}
	}
	next := make(chan string)
	var wg sync.WaitGroup
	for range min(sweepsInFlight, len(topics)) {
		wg.Go(func() {
			for topic := range next {
				cr.sweepRoom(ctx, topic)
			}
		})
	}
	for _, topic := range topics {
		next <- topic
	}
	close(next)
	wg.Wait()
}

// sweepRoom sweeps one room, logging who it announced gone.
func (cr *ChatRoom) sweepRoom(ctx context.Context, topic string) {
	room := roomOf(topic)
	left := protocol.RoomUserTemplate(protocol.ChannelChatRoom, protocol.TypeLeftRoom, room)
	gone, err := cr.broker.SweepPresence(ctx, topic, broker.UserTemplate{Head: left.Head, Middle: left.Middle, Tail: left.Tail})
	if err != nil {
		cr.log.Debug("presence sweep failed", "room", room, "err", err)
		return
	}
	for _, user := range gone {
		cr.log.Info("member expired; told the room it left", "room", room, "user", user)
	}
}
