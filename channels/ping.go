package channels

import (
	"context"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/protocol"
)

// Ping carries server-triggered pings (GET /ping1, /ping2) to every
// connection on every node. Clients only receive on it.
type Ping struct {
	broker Broker
	hub    Hub
}

// NewPing returns the ping channel.
func NewPing(b Broker, hub Hub) *Ping { return &Ping{broker: b, hub: hub} }

// Connect subscribes the connection to pings.
func (p *Ping) Connect(ctx context.Context, c Client) error {
	_, err := p.hub.Join(ctx, TopicPing, c, false)
	return err
}

// Disconnect unsubscribes the connection.
func (p *Ping) Disconnect(ctx context.Context, c Client) { _, _ = p.hub.Leave(ctx, TopicPing, c.ID()) }

// Handle refuses everything: ping has no client messages.
func (p *Ping) Handle(_ context.Context, _ Client, env protocol.Envelope) error {
	return unknownType(protocol.ChannelPing, env.Message.Type)
}

// Publish sends Ping n to every connection on every node and reports how
// many nodes it reached.
func (p *Ping) Publish(ctx context.Context, n int) (int, error) {
	pub := protocol.NewPublication(protocol.ChannelPing, protocol.TypePing, n)
	res, err := p.broker.Publish(ctx, broker.Message{Topic: TopicPing, Data: pub.Marshal()}, false)
	return res.Receivers, err
}
