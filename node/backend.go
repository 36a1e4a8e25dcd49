package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/broker"
	"github.com/switchboard/switchboard/config"
	"github.com/switchboard/switchboard/conndir"
	"github.com/switchboard/switchboard/metrics"
	"github.com/switchboard/switchboard/webhook"
)

// This file wires what a backend drives and hears: the connection
// directory (which node holds which socket, taken over when a node
// crashes), the lifecycle webhooks, and the per-node control topic on
// which the node holding a socket receives the server API's commands.

// ControlTopic is the broker topic on which the node named id receives
// commands for its connections. Every node subscribes its own for its
// whole life.
func ControlTopic(id string) string { return "node:" + id }

// Command operations.
const (
	// OpClose closes the connections with Code and Reason.
	OpClose = "close"
	// OpPush sends Frame to the connections.
	OpPush = "push"
	// OpJoin makes the connections join Room, as if they had sent JoinRoom.
	OpJoin = "join"
	// OpLeave takes the connections out of Room, as if they had sent
	// LeaveRoom.
	OpLeave = "leave"
)

// Command is an instruction to the node holding some connections, sent on
// its control topic by whichever node received the server API request.
type Command struct {
	Op     string          `json:"op"`
	Conns  []string        `json:"conns"`
	Code   int             `json:"code,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Room   string          `json:"room,omitempty"`
	Frame  json.RawMessage `json:"frame,omitempty"`
}

// Controller carries out commands for this node's connections (the
// server's sockets). It is called on the broker's delivery goroutine and
// must not block.
type Controller func(Command)

// ErrNodeGone is returned by Send when no node listens on the target's
// control topic: the node that held the connection has stopped.
var ErrNodeGone = errors.New("the node holding the connection is gone")

// SetController installs the function that carries out commands for this
// node's connections. Commands that arrive before it is set are dropped
// (the node holds no connection yet).
func (n *Node) SetController(c Controller) { n.controller.Store(&c) }

// Send publishes cmd on the control topic of the node named target.
func (n *Node) Send(ctx context.Context, target string, cmd Command) error {
	data, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	res, err := n.Broker.Publish(ctx, broker.Message{Topic: ControlTopic(target), Data: data}, false)
	if err != nil {
		return err
	}
	if res.Receivers == 0 {
		return ErrNodeGone
	}
	return nil
}

// deliver routes a broker message: the control topic's to the controller,
// everything else to the hub.
func (n *Node) deliver(m broker.Message) {
	if m.Topic != n.control {
		n.Hub.Deliver(m)
		return
	}
	if m.Gap {
		return // commands are not stored: there is nothing to catch up
	}
	var cmd Command
	if err := json.Unmarshal(m.Data, &cmd); err != nil {
		n.Log.Error("dropping unreadable control command", "err", err)
		return
	}
	if c := n.controller.Load(); c != nil {
		(*c)(cmd)
	}
}

// newDirectory builds the connection directory cfg asks for: in Redis (a
// client of its own, closed by the node) when the node scales out, else in
// this process.
func newDirectory(cfg config.Config, id string) (conndir.Directory, redis.UniversalClient, error) {
	opts := conndir.Options{Node: id, TTL: cfg.ConnectionTTL}
	var client redis.UniversalClient
	switch {
	case len(cfg.RedisClusterAddrs) > 0:
		client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.RedisClusterAddrs, ContextTimeoutEnabled: true})
	case cfg.RedisURL != "":
		o, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("connection directory: %w", err)
		}
		o.ContextTimeoutEnabled = true
		client = redis.NewClient(o)
	default:
		d, err := conndir.NewMemory(conndir.NewMemoryStore(), opts)
		return d, nil, err
	}
	d, err := conndir.NewRedis(client, conndir.RedisOptions{Options: opts, Prefix: cfg.RedisPrefix})
	if err != nil {
		_ = client.Close()
		return nil, nil, err
	}
	return d, client, nil
}

// newWebhook builds the webhook client when API_URI is set.
func newWebhook(cfg config.Config, m *metrics.Metrics, log *slog.Logger) (*webhook.Client, error) {
	if cfg.APIURI == "" {
		return nil, nil
	}
	return webhook.New(webhook.Options{
		URL:        cfg.APIURI,
		Secret:     []byte(cfg.WebhookSecret),
		Timeout:    cfg.WebhookTimeout,
		FailOpen:   cfg.WebhookFailOpen,
		Registerer: m.Registerer(),
		Logger:     log,
	})
}

// webhookForwarder forwards application channels' envelopes (PUT).
type webhookForwarder struct{ c *webhook.Client }

func (f webhookForwarder) Forward(ctx context.Context, conn, user string, env json.RawMessage) ([]json.RawMessage, error) {
	return f.c.Message(ctx, webhook.MessageEvent{Connection: conn, User: user, Envelope: env})
}

// Admit asks the backend whether a new connection may open (the POST
// webhook). Without API_URI every connection is admitted as it is. A
// refusal is a *webhook.Error whose CloseReason goes in the 1008 close
// frame.
func (n *Node) Admit(ctx context.Context, ev webhook.ConnectEvent) (webhook.ConnectReply, error) {
	if n.Webhook == nil {
		return webhook.ConnectReply{User: ev.User}, nil
	}
	return n.Webhook.Connect(ctx, ev)
}

// Opened records an admitted connection in the directory. A failure is
// logged: the socket works, but the server API cannot find it and a crash
// of this node would send no DELETE for it.
func (n *Node) Opened(ctx context.Context, r conndir.Record) {
	ctx, cancel := context.WithTimeout(ctx, n.Config.OpTimeout)
	defer cancel()
	if err := n.Dir.Register(ctx, r); err != nil {
		n.Log.Warn("connection not recorded in the directory", "conn", r.ID, "user", r.User, "err", err)
	}
}

// Closed handles the end of an admitted connection: with API_URI, it
// marks the directory record closed and sends the DELETE webhook (retried
// with backoff), removing the record once the backend has it or refused
// it for good; if this node stops first, the record expires and a
// surviving node sends the DELETE instead. It never waits for the
// backend.
func (n *Node) Closed(id, user string, code int, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), n.Config.OpTimeout)
	defer cancel()
	if n.Webhook == nil {
		if _, err := n.Dir.Unregister(ctx, id); err != nil {
			n.Log.Info("connection not removed from the directory; it expires", "conn", id, "err", err)
		}
		return
	}
	if err := n.Dir.Update(ctx, id, conndir.Change{Close: &conndir.Close{Code: code, Reason: reason}}); err != nil {
		n.Log.Info("connection not marked closed in the directory", "conn", id, "err", err)
	}
	ev := webhook.DisconnectEvent{Connection: id, User: user, Code: code, Reason: reason, Node: n.ID}
	n.Webhook.DisconnectAsync(ev, func(err error) {
		var werr *webhook.Error
		if err != nil && (!errors.As(err, &werr) || werr.Temporary() || werr.Reason == webhook.ReasonClosed) {
			return // left in place: a survivor's sweep sends it
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.Config.OpTimeout)
		defer cancel()
		if _, err := n.Dir.Unregister(ctx, id); err != nil {
			n.Log.Info("delivered connection not removed from the directory; it expires", "conn", id, "err", err)
		}
	})
}

// claimed sends the DELETE of a connection whose node stopped without
// sending it (this node's sweep claimed its expired record), then
// acknowledges the claim, or releases it for another sweep if the backend
// could not be reached.
func (n *Node) claimed(r conndir.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), n.Config.OpTimeout)
	defer cancel()
	if n.Webhook == nil {
		if err := n.Dir.Ack(ctx, r.ID); err != nil {
			n.Log.Info("expired connection not acknowledged", "conn", r.ID, "err", err)
		}
		return
	}
	ev := webhook.DisconnectEvent{Connection: r.ID, User: r.User, Node: r.Node, Code: 1006, Reason: "node stopped", Crashed: true}
	if r.Closed != nil {
		ev.Code, ev.Reason = r.Closed.Code, r.Closed.Reason
	}
	n.Log.Info("sending the DELETE of a stopped node's connection", "conn", r.ID, "user", r.User, "node", r.Node)
	n.Webhook.DisconnectAsync(ev, func(err error) {
		ctx, cancel := context.WithTimeout(context.Background(), n.Config.OpTimeout)
		defer cancel()
		if err != nil {
			err = n.Dir.Release(ctx, r.ID)
		} else {
			err = n.Dir.Ack(ctx, r.ID)
		}
		if err != nil {
			n.Log.Info("claimed connection not settled; its lease runs out", "conn", r.ID, "err", err)
		}
	})
}

// lost closes connections another node took over while this node could
// not refresh them (their DELETE was sent on its behalf).
func (n *Node) lost(ids []string) {
	n.Log.Warn("connections taken over by another node after missed heartbeats; closing them", "count", len(ids))
	if c := n.controller.Load(); c != nil {
		(*c)(Command{Op: OpClose, Conns: ids, Code: 1012, Reason: "connection expired on this server: reconnect"})
	}
}

// runDirectory heartbeats and sweeps the connection directory until ctx
// ends.
func (n *Node) runDirectory(ctx context.Context) {
	every := n.Config.ConnectionTTL / 3
	conndir.Run(ctx, n.Dir, conndir.RunOptions{
		Heartbeat: every, Sweep: every, OnClaimed: n.claimed, OnLost: n.lost, Logger: n.Log,
	})
}

// closeBackend stops the webhook client (waiting at most timeout for
// DELETEs in flight; those it gives up are left to a survivor's sweep) and
// the directory's Redis client.
func (n *Node) closeBackend(timeout time.Duration) {
	if n.Webhook != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := n.Webhook.Close(ctx); err != nil {
			n.Log.Warn("webhooks still in flight at shutdown were abandoned", "err", err)
		}
		cancel()
	}
	if n.dirClient != nil {
		_ = n.dirClient.Close()
	}
}
