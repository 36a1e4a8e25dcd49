package channels

import (
	"context"
	"log/slog"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// ChatRoom is the chat-room channel: clients join named rooms and receive
// only the messages of rooms they are in, whichever node sent them.
//
// Membership is per connection; presence is per user. A user joins a room
// (JoinedRoom to everyone) when their first connection joins it, and leaves
// (LeftRoom) when their last connection leaves; MemberList names each user
// once however many tabs they have open.
//
// Which connection is in which room is the hub's to know: the channel
// keeps no membership of its own.
type ChatRoom struct {
	broker  Broker
	hub     Hub
	limits  Limits
	history historian
	log     *slog.Logger
}

// NewChatRoom returns the chat-room channel.
func NewChatRoom(b Broker, hub Hub, limits Limits, log *slog.Logger) *ChatRoom {
	return &ChatRoom{
		broker: b, hub: hub, limits: limits, log: log,
		history: historian{broker: b, limits: limits},
	}
}

// Handle takes JoinRoom, LeaveRoom, SendMessage and GetHistory.
func (cr *ChatRoom) Handle(ctx context.Context, c Client, msg protocol.Message) error {
	switch msg.Type {
	case protocol.TypeJoinRoom:
		var req protocol.JoinRoom
		if err := cr.decodeRoom(msg, &req, &req.Room); err != nil {
			return err
		}
		if req.Since != "" && !broker.ValidID(req.Since) {
			return protocol.Errorf(protocol.CodeInvalidContents, "since %q is not a message id", req.Since)
		}
		return cr.join(ctx, c, req)
	case protocol.TypeLeaveRoom:
		var req protocol.RoomRef
		if err := cr.decodeRoom(msg, &req, &req.Room); err != nil {
			return err
		}
		return cr.leave(ctx, c, req.Room)
	case protocol.TypeSendMessage:
		var req struct {
			Room    string  `json:"room"`
			Message *string `json:"message"`
		}
		if err := cr.decodeRoom(msg, &req, &req.Room); err != nil {
			return err
		}
		if req.Message == nil {
			return protocol.Errorf(protocol.CodeInvalidContents, `SendMessage needs "message"`)
		}
		return cr.send(ctx, c, req.Room, *req.Message)
	case protocol.TypeGetHistory:
		var req protocol.GetHistory
		if err := cr.decodeRoom(msg, &req, &req.Room); err != nil {
			return err
		}
		if !cr.isMember(c, req.Room) {
			return notMember(req.Room)
		}
		page, err := cr.History(ctx, req)
		if err != nil {
			return err
		}
		return c.Send(ctx, protocol.Encode(protocol.ChannelChatRoom, protocol.TypeHistory, page))
	default:
		return unknownType(protocol.ChannelChatRoom, msg.Type)
	}
}

// decodeRoom decodes contents into dst and validates the room it names.
func (cr *ChatRoom) decodeRoom(msg protocol.Message, dst any, room *string) error {
	if err := protocol.DecodeContents(msg, dst); err != nil {
		return err
	}
	return ValidateRoomName(*room, cr.limits.MaxRoomName)
}

// ValidateRoomName checks that a room name has 1 to max printable
// characters.
func ValidateRoomName(room string, max int) error {
	n := utf8.RuneCountInString(room)
	if n == 0 {
		return protocol.Errorf(protocol.CodeInvalidContents, `"room" is required`)
	}
	if n > max {
		return protocol.Errorf(protocol.CodeInvalidContents, "room names are at most %d characters", max)
	}
	if !utf8.ValidString(room) {
		return protocol.Errorf(protocol.CodeInvalidContents, "room name is not valid UTF-8")
	}
	for _, r := range room {
		if !unicode.IsPrint(r) {
			return protocol.Errorf(protocol.CodeInvalidContents, "room names must be printable characters")
		}
	}
	return nil
}

func notMember(room string) error {
	return protocol.Errorf(protocol.CodeNotMember, "join %q first", room)
}

// History reads a page of a room's history, for members (GetHistory) and
// for the server API alike.
func (cr *ChatRoom) History(ctx context.Context, req protocol.GetHistory) (protocol.History, error) {
	return cr.history.page(ctx, RoomTopic(req.Room), req)
}

func (cr *ChatRoom) isMember(c Client, room string) bool {
	return cr.hub.IsMember(RoomTopic(room), c.ID())
}

// joinProgress is what a join has done so far, so that a failure undoes
// exactly that.
type joinProgress struct {
	present, subscribed bool
}

// join adds c to a room. The joiner receives MemberList, then its own
// JoinedRoom (with recovered when it resumes), then any replayed history,
// then live messages, in that order and without duplicates: the
// connection is held in the registry until the replay is queued. If any
// step fails, what the earlier ones did is undone.
//
// The connection subscribes (held) before its presence is recorded: the
// broker announces the user (JoinedRoom to everyone else) in the same step
// as it records presence, and whatever the others send in reply must reach
// the joiner. Announcements of one user's comings and goings are ordered
// by that same step; a sibling tab's, caught while held, are dropped
// (aboutUser).
func (cr *ChatRoom) join(ctx context.Context, c Client, req protocol.JoinRoom) (err error) {
	room, user := req.Room, c.User()
	if !c.MayJoin(room) {
		return protocol.Errorf(protocol.CodeForbidden, "your ticket does not allow room %q", room)
	}
	topic := RoomTopic(room)
	if cr.isMember(c, room) {
		// Joining twice is idempotent: confirm without telling anyone else.
		users, err := cr.broker.Members(ctx, topic)
		if err != nil {
			return brokerError(err)
		}
		return cr.sendJoinAck(ctx, c, room, users, nil)
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
	users, err := cr.broker.Members(ctx, topic)
	if err != nil {
		return brokerError(err)
	}
	replay, recovered, err := cr.replay(ctx, topic, req.Since)
	if err != nil {
		return err
	}
	if err := cr.sendJoinAck(ctx, c, room, users, recovered); err != nil {
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

// announcement is the publication telling a room that user joined or
// left. It names the user (About) so that a joiner of the same user can
// drop it unread (see Hub.Drain).
func announcement(typ, room, user string) []byte {
	p := protocol.NewPublication(protocol.ChannelChatRoom, typ, protocol.RoomUser{Room: room, User: user})
	p.About = user
	return p.Marshal()
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

// sendJoinAck sends the joiner the room's member list and its JoinedRoom.
func (cr *ChatRoom) sendJoinAck(ctx context.Context, c Client, room string, users []string, recovered *bool) error {
	if users == nil {
		users = []string{} // the protocol shows an empty list as [], never null
	}
	list := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeMemberList, protocol.MemberList{Room: room, Users: users})
	if err := c.Send(ctx, list); err != nil {
		return err
	}
	ack := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeJoinedRoom,
		protocol.JoinedRoom{Room: room, User: c.User(), Recovered: recovered})
	return c.Send(ctx, ack)
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

func (cr *ChatRoom) leave(ctx context.Context, c Client, room string) error {
	if !cr.isMember(c, room) {
		return notMember(room)
	}
	cr.leaveRoom(ctx, c, room)
	return c.Send(ctx, protocol.Encode(protocol.ChannelChatRoom, protocol.TypeLeftRoom,
		protocol.RoomUser{Room: room, User: c.User()}))
}

// leaveRoom removes c from room and, if it was the user's last connection
// there, tells the remaining members. Failures are logged, not returned:
// the connection is out of the room locally either way.
func (cr *ChatRoom) leaveRoom(ctx context.Context, c Client, room string) {
	if _, err := cr.hub.Leave(ctx, RoomTopic(room), c.ID()); err != nil {
		cr.log.Warn("room unsubscribe failed", "room", room, "err", err)
	}
	cr.removePresence(ctx, c, room)
}

func (cr *ChatRoom) send(ctx context.Context, c Client, room, text string) error {
	if !cr.isMember(c, room) {
		return notMember(room)
	}
	pub := protocol.NewPublication(protocol.ChannelChatRoom, protocol.TypeNewMessage,
		protocol.RoomMessage{Room: room, User: c.User(), Message: text, PostedAt: now()})
	_, err := cr.broker.Publish(ctx, broker.Message{Topic: RoomTopic(room), Data: pub.Marshal()}, true)
	return brokerError(err)
}

// Disconnect leaves every room the connection was in.
func (cr *ChatRoom) Disconnect(ctx context.Context, c Client) {
	for _, topic := range cr.hub.TopicsOf(c.ID(), roomTopicPrefix) {
		cr.leaveRoom(ctx, c, roomOf(topic))
	}
}

// SweepExpired runs until ctx ends, every interval telling the rooms this
// node has members in about users whose presence expired (their node
// crashed): they get the LeftRoom a graceful disconnect would have sent.
// Whichever node sweeps a room first announces each such user, once.
func (cr *ChatRoom) SweepExpired(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cr.sweep(ctx)
		}
	}
}

func (cr *ChatRoom) sweep(ctx context.Context) {
	for _, topic := range cr.hub.Topics(roomTopicPrefix) {
		room := roomOf(topic)
		left := protocol.RoomUserTemplate(protocol.ChannelChatRoom, protocol.TypeLeftRoom, room)
		gone, err := cr.broker.SweepPresence(ctx, topic, broker.UserTemplate{Head: left.Head, Middle: left.Middle, Tail: left.Tail})
		if err != nil {
			cr.log.Debug("presence sweep failed", "room", room, "err", err)
			continue
		}
		for _, user := range gone {
			cr.log.Info("member expired; told the room it left", "room", room, "user", user)
		}
	}
}

// Connect has nothing to do: rooms are joined on request.
func (cr *ChatRoom) Connect(context.Context, Client) error { return nil }
