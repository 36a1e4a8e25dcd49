package channels

import (
	"context"
	"slices"

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
	plan, recovered, err := cr.planReplay(ctx, topic, req.Since)
	if err != nil {
		return err
	}
	if err := cr.sendJoinAck(ctx, c, ref, list, recovered); err != nil {
		return err
	}
	after, err := cr.replay(ctx, c, topic, req.Since, plan, recovered != nil && *recovered)
	if err != nil {
		return err
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

// planReplay decides, before anything is sent, what a resuming joiner
// gets replayed: what it missed after since, at most HISTORY_MAX_PAGE
// messages and ReplayBytes of them. When more was missed, the plan is the
// newest messages within those bounds and recovered is false: the client
// has a gap it can fill with GetHistory before the oldest replayed id. The
// plan holds ids and sizes only (an IDs-only probe), not the data.
// recovered is nil when the client did not ask to resume.
func (cr *ChatRoom) planReplay(ctx context.Context, topic, since string) ([]broker.Message, *bool, error) {
	if since == "" {
		return nil, nil, nil
	}
	recovered := false
	if !cr.limits.HistoryEnabled {
		return nil, &recovered, nil
	}
	bounds := broker.HistoryQuery{Limit: cr.limits.HistoryMaxPage, MaxBytes: cr.limits.ReplayBytes, IDsOnly: true}
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

// replay sends c the messages of plan, page by page: each page is read
// once the node's replay budget grants its bytes (at most ReplayPageBytes
// a page, but always one message) and given back once the page is queued,
// so a client that reads slowly holds one page, and the node at most
// REPLAY_MEMORY, whatever the room holds. It returns the id of the last
// message sent (since if none), from which live delivery continues.
//
// Messages may be evicted while the replay runs. With recovered the client
// was promised every message of the plan: if one is gone, it is told to
// resync (reconnect and resume) rather than left with a silent gap.
func (cr *ChatRoom) replay(ctx context.Context, c Client, topic, since string, plan []broker.Message, recovered bool) (string, error) {
	if len(plan) == 0 {
		return since, nil
	}
	cursor := since
	if !recovered {
		cursor, _ = broker.IDBefore(plan[0].ID) // probed ids are valid and not 0-0
	}
	last := plan[len(plan)-1].ID
	sent := since
	for next := 0; next < len(plan); {
		count, bytes := 0, 0
		for _, m := range plan[next:] {
			if count > 0 && bytes+m.Size > cr.limits.ReplayPageBytes {
				break
			}
			count, bytes = count+1, bytes+m.Size
		}
		granted, err := cr.replayBudget.Acquire(ctx, bytes)
		if err != nil {
			return sent, err
		}
		done, err := cr.replayPage(ctx, c, topic, broker.HistoryQuery{Since: cursor, Limit: count, MaxBytes: max(bytes, 1)}, plan[next].ID, last, recovered)
		cr.replayBudget.Release(granted)
		if done.sent != "" {
			sent, cursor = done.sent, done.sent
		}
		if err != nil || done.stop {
			return sent, err
		}
		next, _ = slices.BinarySearchFunc(plan, cursor, func(m broker.Message, id string) int { return broker.CompareIDs(m.ID, id) })
		if next < len(plan) && plan[next].ID == cursor {
			next++
		}
	}
	return sent, nil
}

// pageResult is what replayPage did: the last id it sent ("" for none),
// and whether the replay must stop there.
type pageResult struct {
	sent string
	stop bool
}

// replayPage reads one page of a replay and sends it, up to the plan's
// last id. want is the id the page should start with.
func (cr *ChatRoom) replayPage(ctx context.Context, c Client, topic string, q broker.HistoryQuery, want, last string, recovered bool) (pageResult, error) {
	var res pageResult
	page, err := cr.broker.History(ctx, topic, q)
	if err != nil {
		return res, brokerError(err)
	}
	evicted := len(page.Messages) == 0 || page.Messages[0].ID != want
	if evicted && recovered {
		// What the replay promised was evicted meanwhile: the client is
		// told where its gap starts, in band, and stays.
		cr.log.Info("history evicted during a replay; telling the client of the gap", "topic", topic, "want", want)
		res.stop = true
		return res, c.Send(ctx, GapFrame(topic, q.Since))
	}
	if len(page.Messages) == 0 {
		res.stop = true // everything left was evicted meanwhile
		return res, nil
	}
	for _, m := range page.Messages {
		if broker.CompareIDs(m.ID, last) > 0 {
			res.stop = true // newer than the plan: live delivery has it
			return res, nil
		}
		pub, err := protocol.ParsePublication(m.Data, m.ID)
		if err != nil {
			return res, err
		}
		if err := c.Send(ctx, pub.Frame()); err != nil {
			return res, err
		}
		res.sent = m.ID
	}
	return res, nil
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
