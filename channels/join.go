package channels

import (
	"context"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// joinProgress is what a join has done so far, so that a failure undoes
// exactly that.
type joinProgress struct {
	present, subscribed bool
}

// join adds c to a room. The joiner receives MemberList, then its own
// JoinedRoom (with recovered when it resumes), then any replayed history,
// then live messages, in that order and without duplicates: the
// connection is held in the hub until the replay is queued. If any step
// fails, what the earlier ones did is undone.
//
// The connection subscribes (held) before its presence is recorded: the
// broker announces the user (JoinedRoom to everyone else) in the same step
// as it records presence, and whatever the others send in reply must reach
// the joiner. Announcements of one user's comings and goings are ordered
// by that same step; a sibling tab's, caught while held, are dropped by
// the hub (Hub.Drain).
func (cr *ChatRoom) join(ctx context.Context, c Client, ref string, req protocol.JoinRoom) (err error) {
	room, user := req.Room, c.User()
	if !c.MayJoin(room) {
		return protocol.Errorf(protocol.CodeForbidden, "your ticket does not allow room %q", room)
	}
	topic := RoomTopic(room)
	if cr.isMember(c, room) {
		// Joining twice is idempotent: confirm without telling anyone else.
		list, err := cr.memberList(ctx, room)
		if err != nil {
			return err
		}
		return cr.sendJoinAck(ctx, c, ref, list, nil)
	}
	if len(cr.hub.TopicsOf(c.ID(), roomTopicPrefix)) >= cr.limits.MaxRooms {
		return protocol.Errorf(protocol.CodeTooManyRooms, "a connection may be in at most %d rooms", cr.limits.MaxRooms)
	}
	var done joinProgress
	defer func() {
		if err != nil {
			cr.abandonJoin(ctx, c, room, done)
		}
	}()

	joinCtx, cancel := context.WithTimeout(ctx, cr.limits.OpTimeout)
	_, err = cr.hub.Join(joinCtx, topic, c, true)
	cancel()
	if err != nil {
		return brokerError(err)
	}
	done.subscribed = true
	joined := announcement(protocol.TypeJoinedRoom, room, user)
	done.present = true // even on error: Redis may have applied it before the timeout
	if _, err := cr.broker.AddPresence(ctx, topic, user, c.ID(), joined); err != nil {
		return brokerError(err)
	}
	list, err := cr.memberList(ctx, room)
	if err != nil {
		return err
	}
	replay, recovered, err := cr.replay(ctx, topic, req.Since)
	if err != nil {
		return err
	}
	if err := cr.sendJoinAck(ctx, c, ref, list, recovered); err != nil {
		return err
	}
	after := req.Since
	for _, m := range replay {
		pub, err := protocol.ParsePublication(m.Data, m.ID)
		if err != nil {
			return err
		}
		if err := c.Send(ctx, pub.Frame()); err != nil {
			return err
		}
		after = m.ID
	}
	// Hand over to live delivery: what arrived during the replay, minus
	// what the replay (or the client, before since) already had.
	for {
		frames, live, err := cr.hub.Drain(topic, c.ID(), after)
		if err != nil {
			return err
		}
		for _, f := range frames {
			if err := c.Send(ctx, f); err != nil {
				return err
			}
		}
		if live {
			return nil
		}
	}
}

// replay reads what a resuming joiner missed after since: at most
// HISTORY_MAX_PAGE messages and ReplayBytes of them. When more was
// missed, it returns the newest ones within those bounds and recovered
// false: the client has a gap it can fill with GetHistory before the
// oldest replayed id. recovered is nil when the client did not ask to
// resume.
func (cr *ChatRoom) replay(ctx context.Context, topic, since string) ([]broker.Message, *bool, error) {
	if since == "" {
		return nil, nil, nil
	}
	recovered := false
	if !cr.limits.HistoryEnabled {
		return nil, &recovered, nil
	}
	bounds := broker.HistoryQuery{Limit: cr.limits.HistoryMaxPage, MaxBytes: cr.limits.ReplayBytes}
	forward := bounds
	forward.Since = since
	page, err := cr.broker.History(ctx, topic, forward)
	if err != nil {
		return nil, nil, brokerError(err)
	}
	if !page.Complete {
		page, err = cr.broker.History(ctx, topic, bounds)
		if err != nil {
			return nil, nil, brokerError(err)
		}
		page.Recovered = false
	}
	recovered = page.Recovered
	return page.Messages, &recovered, nil
}

// sendJoinAck sends the joiner the room's member list and its JoinedRoom,
// both carrying the JoinRoom's ref.
func (cr *ChatRoom) sendJoinAck(ctx context.Context, c Client, ref string, list memberList, recovered *bool) error {
	if err := c.Send(ctx, list.frame(ref)); err != nil {
		return err
	}
	return reply(ctx, c, ref, protocol.TypeJoinedRoom, protocol.JoinedRoom{Room: list.room, User: c.User(), Recovered: recovered})
}

// abandonJoin undoes a failed join. If the join had made the user present
// (and so announced it), removing the presence announces the user's
// leaving in the same way; otherwise nobody hears of anything.
func (cr *ChatRoom) abandonJoin(ctx context.Context, c Client, room string, done joinProgress) {
	ctx = context.WithoutCancel(ctx)
	if done.subscribed {
		if _, err := cr.hub.Leave(ctx, RoomTopic(room), c.ID()); err != nil {
			cr.log.Warn("leave after failed join", "room", room, "err", err)
		}
	}
	if done.present {
		cr.removePresence(ctx, c, room)
	}
}
