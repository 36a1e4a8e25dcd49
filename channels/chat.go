package channels

import (
	"context"
	"strings"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// Chat is the global chat: every connection on every node receives every
// message. Messages are kept in the "chat" history stream.
type Chat struct {
	broker  Broker
	hub     Hub
	limits  Limits
	history historian
}

// NewChat returns the chat channel.
func NewChat(b Broker, hub Hub, limits Limits) *Chat {
	return &Chat{broker: b, hub: hub, limits: limits, history: historian{broker: b, limits: limits}}
}

// Connect subscribes the connection to the chat.
func (ch *Chat) Connect(ctx context.Context, c Client) error {
	_, err := ch.hub.Join(ctx, TopicChat, c, false)
	return err
}

// Disconnect unsubscribes the connection.
func (ch *Chat) Disconnect(ctx context.Context, c Client) {
	_, _ = ch.hub.Leave(ctx, TopicChat, c.ID())
}

// Handle takes SubmitMessage and GetHistory.
func (ch *Chat) Handle(ctx context.Context, c Client, env protocol.Envelope) error {
	msg := env.Message
	switch msg.Type {
	case protocol.TypeSubmitMessage:
		var text string
		if err := protocol.DecodeContents(msg, &text); err != nil {
			return err
		}
		switch {
		case !ch.limits.ChatPublish:
			return protocol.Errorf(protocol.CodeForbidden, "this server does not let clients post to the chat")
		case strings.TrimSpace(text) == "":
			return protocol.Errorf(protocol.CodeInvalidContents, "SubmitMessage needs non-empty text")
		case len(text) > ch.limits.MaxChatMessage:
			return protocol.Errorf(protocol.CodeInvalidContents, "chat messages are at most %d bytes", ch.limits.MaxChatMessage)
		}
		pub := protocol.NewPublication(protocol.ChannelChat, protocol.TypeNewMessageReceived,
			protocol.ChatMessage{Content: text, PostedAt: now()})
		_, err := ch.broker.Publish(ctx, broker.Message{Topic: TopicChat, Data: pub.Marshal()}, true)
		return brokerError(err)
	case protocol.TypeGetHistory:
		var req protocol.GetHistory // no contents: the newest page
		if len(msg.Contents) > 0 && string(msg.Contents) != "null" {
			if err := protocol.DecodeContents(msg, &req); err != nil {
				return err
			}
		}
		page, err := ch.history.page(ctx, TopicChat, req)
		if err != nil {
			return err
		}
		return c.Send(ctx, protocol.EncodeReply(protocol.ChannelChat, env.Ref, protocol.TypeHistory, page))
	default:
		return unknownType(protocol.ChannelChat, msg.Type)
	}
}
