// Package channels implements Switchboard's channels — chat, chat-room,
// ping and inbox — each as a handler of its typed messages, on top of the
// node's hub (who is in which topic) and the broker.
package channels

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/rooms"
)

// Client is a connection as channel handlers see it: a hub member (its
// User is a UUID for anonymous connections) that can also be answered.
type Client interface {
	rooms.Member
	// Send queues a direct reply, waiting for room in the connection's
	// queue until ctx ends. Use it for answers to the client's own requests;
	// broadcasts go through Deliver, which never waits.
	Send(ctx context.Context, frame []byte) error
	// MayJoin reports whether the connection's ticket allows the room.
	MayJoin(room string) bool
}

// Channel handles the client messages of one channel.
type Channel interface {
	// Handle processes one client envelope; direct replies echo its Ref.
	// A *protocol.Error is answered to the client as an Error envelope;
	// any other error as code internal.
	Handle(ctx context.Context, c Client, env protocol.Envelope) error
}

// Lifecycle is implemented by channels that track connections.
type Lifecycle interface {
	// Connect runs once a connection is authenticated, before it is read.
	Connect(ctx context.Context, c Client) error
	// Disconnect runs once after the connection's reader has stopped.
	Disconnect(ctx context.Context, c Client)
}

// Broker is what the channels need of the broker: publishing, history
// and presence.
type Broker interface {
	broker.Publisher
	broker.Historian
	broker.Presence
	broker.ActiveTopics
}

// Hub is what the channels need of the node's hub, the one record of
// which local connection is in which topic.
type Hub interface {
	Join(ctx context.Context, topic string, m rooms.Member, held bool) (bool, error)
	Drain(topic, memberID, after string) (frames [][]byte, live bool, err error)
	Leave(ctx context.Context, topic, memberID string) (bool, error)
	IsMember(topic, memberID string) bool
	TopicsOf(memberID, prefix string) []string
	Topics(prefix string) []string
}

// Limits bound what clients may ask of the channels.
type Limits struct {
	MaxRooms       int  // rooms one connection may be in at once
	MaxRoomName    int  // characters in a room name
	HistoryEnabled bool // whether messages are stored (HISTORY_SIZE > 0)
	HistoryPage    int  // messages per History page when the client sets no limit
	HistoryMaxPage int  // the most a client may ask for in one page
	// HistoryPageBytes ends a History page early (complete: false) so that
	// one answer never outgrows a connection's send queue.
	HistoryPageBytes int
	// ReplayBytes bounds what one resume replays in all; beyond it the
	// client gets the newest messages and recovered: false.
	ReplayBytes int
	// ReplayPageBytes bounds one page of a replay: what one resume holds
	// in memory at a time (a page always holds at least one message).
	ReplayPageBytes int
	// ReplayMemory bounds the bytes all of a node's resumes hold in memory
	// at once; a resume waits for its page's share.
	ReplayMemory int
	// OpTimeout bounds waiting for a room's subscription, including behind
	// other joiners of the same room.
	OpTimeout time.Duration
	// LargeRoom is the user count from which a room announces no joins and
	// leaves and lists only its first MemberPage names; 0: never.
	LargeRoom int
	// MemberPage is how many names a large room's MemberList and one
	// Members page carry at most.
	MemberPage int
	// MaxChatMessage and MaxRoomMessage bound a message's text, in bytes.
	MaxChatMessage, MaxRoomMessage int
	// ChatPublish is whether clients may post to the global chat.
	ChatPublish bool
}

// Topic names. Each is one broker topic (one Redis channel).
const (
	TopicChat       = "chat"
	TopicPing       = "ping"
	roomTopicPrefix = "room:"
	userTopicPrefix = "user:"
)

// RoomTopic is the topic carrying a room's traffic.
func RoomTopic(room string) string { return roomTopicPrefix + room }

// GapFrame is the notice telling a connection that messages of topic
// after the id after may be missing: a Gap on chat-room for a room, on
// chat for the global chat. Other topics (pings, inboxes) keep no history
// and get none. It is the hub's rooms.GapFrame.
func GapFrame(topic, after string) []byte {
	switch {
	case strings.HasPrefix(topic, roomTopicPrefix):
		return protocol.Encode(protocol.ChannelChatRoom, protocol.TypeGap, protocol.Gap{Room: roomOf(topic), After: after})
	case topic == TopicChat:
		return protocol.Encode(protocol.ChannelChat, protocol.TypeGap, protocol.Gap{After: after})
	default:
		return nil
	}
}

// roomOf is the room a room topic carries.
func roomOf(topic string) string { return topic[len(roomTopicPrefix):] }

// UserTopic is the topic carrying one user's inbox.
func UserTopic(user string) string { return userTopicPrefix + user }

// Router dispatches client messages to channels by name.
type Router struct {
	channels map[string]Channel
	names    []string // sorted, for Connect/Disconnect order
}

// NewRouter returns a router over the named channels.
func NewRouter(channels map[string]Channel) *Router {
	r := &Router{channels: channels}
	for name := range channels {
		r.names = append(r.names, name)
	}
	sort.Strings(r.names)
	return r
}

// Dispatch hands env to its channel.
func (r *Router) Dispatch(ctx context.Context, c Client, env protocol.Envelope) error {
	ch, ok := r.channels[env.Channel]
	if !ok {
		return protocol.Errorf(protocol.CodeUnknownChannel, "no channel %q", env.Channel)
	}
	return ch.Handle(ctx, c, env)
}

// Known reports whether a channel exists, so errors can name it.
func (r *Router) Known(channel string) bool {
	_, ok := r.channels[channel]
	return ok
}

// Connect runs every channel's Connect hook; on failure it undoes the ones
// that ran.
func (r *Router) Connect(ctx context.Context, c Client) error {
	for i, name := range r.names {
		lc, ok := r.channels[name].(Lifecycle)
		if !ok {
			continue
		}
		if err := lc.Connect(ctx, c); err != nil {
			r.disconnect(ctx, c, r.names[:i])
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// Disconnect runs every channel's Disconnect hook.
func (r *Router) Disconnect(ctx context.Context, c Client) { r.disconnect(ctx, c, r.names) }

func (r *Router) disconnect(ctx context.Context, c Client, names []string) {
	for i := len(names) - 1; i >= 0; i-- {
		if lc, ok := r.channels[names[i]].(Lifecycle); ok {
			lc.Disconnect(ctx, c)
		}
	}
}

// unknownType answers a message type a channel does not take.
func unknownType(channel, typ string) error {
	return protocol.Errorf(protocol.CodeUnknownType, "channel %q has no message type %q", channel, typ)
}

// brokerError turns a broker failure into what the client is told.
func brokerError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrInvalidID):
		return protocol.Errorf(protocol.CodeInvalidContents, "not a message id: use an id from a message you received")
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, new(*protocol.Error)):
		return err // already a client error (the node's publishing limit)
	default:
		return &unavailableError{cause: err}
	}
}

// unavailableError is a broker failure: the client gets code unavailable
// (naming the room, when there is one), the log gets the cause.
type unavailableError struct {
	cause error
	room  string
}

func (e *unavailableError) Error() string { return "broker unavailable: " + e.cause.Error() }
func (e *unavailableError) Unwrap() error { return e.cause }

// ClientError is the Error contents a handler error should be answered
// with, and whether it is the server's fault (to be logged as a warning or
// error rather than at debug level).
func ClientError(err error) (e *protocol.Error, serverSide bool) {
	var pe *protocol.Error
	var ue *unavailableError
	switch {
	case errors.As(err, &pe):
		return pe, false
	case errors.As(err, &ue):
		return protocol.Errorf(protocol.CodeUnavailable, "the message service did not answer in time; your request most likely did not happen, try again").InRoom(ue.room), true
	default:
		return protocol.Errorf(protocol.CodeInternal, "the server could not process this message"), true
	}
}

// inRoom names the room an error is about, if it has none yet.
func inRoom(err error, room string) error {
	var pe *protocol.Error
	var ue *unavailableError
	switch {
	case room == "" || err == nil:
	case errors.As(err, &pe) && pe.Room == "":
		pe.Room = room
	case errors.As(err, &ue) && ue.room == "":
		ue.room = room
	}
	return err
}

func now() string { return protocol.Timestamp(time.Now()) }
