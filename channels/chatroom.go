package channels

import (
	"context"
	"log/slog"
	"math"
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
// once however many tabs they have open. Rooms of LARGE_ROOM users or more
// announce no comings and goings and list only their first names (see
// members.go).
//
// Which connection is in which room is the hub's to know: the channel
// keeps no membership of its own.
type ChatRoom struct {
	broker  Broker
	hub     Hub
	limits  Limits
	history historian
	rosters *rosterCache
	log     *slog.Logger
	// replayBudget bounds the history all of the node's resumes hold in
	// memory at once (REPLAY_MEMORY).
	replayBudget *ReplayBudget
}

// NewChatRoom returns the chat-room channel. Limits left at zero that
// bound replays (ReplayPageBytes, ReplayMemory) do not bound them.
func NewChatRoom(b Broker, hub Hub, limits Limits, log *slog.Logger) *ChatRoom {
	if limits.ReplayPageBytes <= 0 {
		limits.ReplayPageBytes = math.MaxInt
	}
	if limits.ReplayMemory <= 0 {
		limits.ReplayMemory = math.MaxInt
	}
	return &ChatRoom{
		broker: b, hub: hub, limits: limits, log: log,
		history:      historian{broker: b, limits: limits},
		rosters:      newRosterCache(rosterTTL),
		replayBudget: NewReplayBudget(limits.ReplayMemory),
	}
}

// ReplayBudget is the node-wide budget resumes take their pages from; its
// InUse is the history held in memory by replays right now.
func (cr *ChatRoom) ReplayBudget() *ReplayBudget { return cr.replayBudget }

// Handle takes JoinRoom, LeaveRoom, SendMessage, GetHistory and
// GetMembers. Errors about a room name it (clients that sent a ref see
// the name; see protocol.Error.Room).
func (cr *ChatRoom) Handle(ctx context.Context, c Client, env protocol.Envelope) error {
	var room string
	err := cr.handle(ctx, c, env, &room)
	return inRoom(err, room)
}

func (cr *ChatRoom) handle(ctx context.Context, c Client, env protocol.Envelope, room *string) error {
	msg, ref := env.Message, env.Ref
	switch msg.Type {
	case protocol.TypeJoinRoom:
		var req protocol.JoinRoom
		if err := cr.decodeRoom(msg, &req, &req.Room, room); err != nil {
			return err
		}
		if req.Since != "" && !broker.ValidID(req.Since) {
			return protocol.Errorf(protocol.CodeInvalidContents, "since %q is not a message id", req.Since)
		}
		return cr.join(ctx, c, ref, req)
	case protocol.TypeLeaveRoom:
		var req protocol.RoomRef
		if err := cr.decodeRoom(msg, &req, &req.Room, room); err != nil {
			return err
		}
		return cr.leave(ctx, c, ref, req.Room)
	case protocol.TypeSendMessage:
		var req struct {
			Room    string  `json:"room"`
			Message *string `json:"message"`
			Ack     bool    `json:"ack"`
		}
		if err := cr.decodeRoom(msg, &req, &req.Room, room); err != nil {
			return err
		}
		switch {
		case req.Message == nil:
			return protocol.Errorf(protocol.CodeInvalidContents, `SendMessage needs "message"`)
		case len(*req.Message) > cr.limits.MaxRoomMessage:
			return protocol.Errorf(protocol.CodeInvalidContents, "room messages are at most %d bytes", cr.limits.MaxRoomMessage)
		}
		return cr.send(ctx, c, ref, req.Room, *req.Message, req.Ack)
	case protocol.TypeGetHistory:
		var req protocol.GetHistory
		if err := cr.decodeRoom(msg, &req, &req.Room, room); err != nil {
			return err
		}
		if !cr.isMember(c, req.Room) {
			return notMember(req.Room)
		}
		page, err := cr.History(ctx, req)
		if err != nil {
			return err
		}
		return reply(ctx, c, ref, protocol.TypeHistory, page)
	case protocol.TypeGetMembers:
		var req protocol.GetMembers
		if err := cr.decodeRoom(msg, &req, &req.Room, room); err != nil {
			return err
		}
		return cr.getMembers(ctx, c, ref, req)
	default:
		return unknownType(protocol.ChannelChatRoom, msg.Type)
	}
}

// reply answers a chat-room request, echoing its ref.
func reply(ctx context.Context, c Client, ref, typ string, contents any) error {
	return c.Send(ctx, protocol.EncodeReply(protocol.ChannelChatRoom, ref, typ, contents))
}

// decodeRoom decodes contents into dst and validates the room it names,
// which it also reports in named as soon as it is known.
func (cr *ChatRoom) decodeRoom(msg protocol.Message, dst any, room, named *string) error {
	if err := protocol.DecodeContents(msg, dst); err != nil {
		return err
	}
	if err := ValidateRoomName(*room, cr.limits.MaxRoomName); err != nil {
		return err
	}
	*named = *room
	return nil
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

func (cr *ChatRoom) leave(ctx context.Context, c Client, ref, room string) error {
	if !cr.isMember(c, room) {
		return notMember(room)
	}
	cr.leaveRoom(ctx, c, room)
	return reply(ctx, c, ref, protocol.TypeLeftRoom, protocol.RoomUser{Room: room, User: c.User()})
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

// send publishes a message to a room the client is in, and with ack
// answers Sent with the id it was stored under.
func (cr *ChatRoom) send(ctx context.Context, c Client, ref, room, text string, ack bool) error {
	if !cr.isMember(c, room) {
		return notMember(room)
	}
	pub := protocol.NewPublication(protocol.ChannelChatRoom, protocol.TypeNewMessage,
		protocol.RoomMessage{Room: room, User: c.User(), Message: text, PostedAt: now()})
	res, err := cr.broker.Publish(ctx, broker.Message{Topic: RoomTopic(room), Data: pub.Marshal()}, true)
	if err != nil || !ack {
		return brokerError(err)
	}
	return reply(ctx, c, ref, protocol.TypeSent, protocol.Sent{Room: room, ID: res.ID})
}

// Disconnect leaves every room the connection was in.
func (cr *ChatRoom) Disconnect(ctx context.Context, c Client) {
	for _, topic := range cr.hub.TopicsOf(c.ID(), roomTopicPrefix) {
		cr.leaveRoom(ctx, c, roomOf(topic))
	}
}

// Connect has nothing to do: rooms are joined on request.
func (cr *ChatRoom) Connect(context.Context, Client) error { return nil }
