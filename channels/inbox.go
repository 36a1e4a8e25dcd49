package channels

import (
	"context"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// Inbox delivers messages addressed to a user (POST /message) to every
// socket of that user on every node. A node subscribes to a user's topic
// while it holds at least one of the user's sockets.
type Inbox struct {
	broker Broker
	hub    Hub
}

// NewInbox returns the inbox channel.
func NewInbox(b Broker, hub Hub) *Inbox { return &Inbox{broker: b, hub: hub} }

// Connect subscribes the connection to its user's topic.
func (in *Inbox) Connect(ctx context.Context, c Client) error {
	_, err := in.hub.Join(ctx, UserTopic(c.User()), c, false)
	return err
}

// Disconnect unsubscribes the connection.
func (in *Inbox) Disconnect(ctx context.Context, c Client) {
	_, _ = in.hub.Leave(ctx, UserTopic(c.User()), c.ID())
}

// Handle refuses everything: the inbox has no client messages.
func (in *Inbox) Handle(_ context.Context, _ Client, env protocol.Envelope) error {
	return unknownType(protocol.ChannelInbox, env.Message.Type)
}

// Send delivers a message to every socket of user and reports how many
// nodes held at least one of them. A user with no socket is not an error:
// the message reaches nobody and Send reports 0.
func (in *Inbox) Send(ctx context.Context, user, content, typ string) (int, error) {
	pub := protocol.NewPublication(protocol.ChannelInbox, protocol.TypeInboxMessage,
		protocol.InboxMessage{Content: content, Type: typ, PostedAt: now()})
	res, err := in.broker.Publish(ctx, broker.Message{Topic: UserTopic(user), Data: pub.Marshal()}, false)
	return res.Receivers, err
}
