package channels

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"

	"github.com/switchboard/switchboard/protocol"
)

// Forwarder hands an application channel's envelope to the backend and
// returns the envelopes to send back to the client (the PUT webhook).
type Forwarder interface {
	Forward(ctx context.Context, conn, user string, envelope json.RawMessage) ([]json.RawMessage, error)
}

// App is an application channel (APP_CHANNELS): Switchboard does not know
// its messages; every envelope on it is forwarded to the backend, and the
// envelopes the backend answers with go back to the sender, in order.
// Forwarding happens on the connection's worker, so a client's frames stay
// in order and a slow backend holds up only the client that is waiting
// for it (within WEBHOOK_TIMEOUT).
type App struct {
	name string
	fwd  Forwarder
	log  *slog.Logger
}

// NewApp returns the application channel name forwarding through fwd.
func NewApp(name string, fwd Forwarder, log *slog.Logger) *App {
	return &App{name: name, fwd: fwd, log: log}
}

// Handle forwards env and sends the backend's answer to c. An answer that
// is not an envelope is dropped (and logged); a backend that cannot be
// reached is answered with unavailable.
func (a *App) Handle(ctx context.Context, c Client, env protocol.Envelope) error {
	raw, err := json.Marshal(env)
	if err != nil {
		return err
	}
	replies, err := a.fwd.Forward(ctx, c.ID(), c.User(), raw)
	if err != nil {
		a.log.Info("application backend did not answer", "channel", a.name, "conn", c.ID(), "err", err)
		return protocol.Errorf(protocol.CodeUnavailable, "the application backend did not answer; your message most likely was not processed, try again")
	}
	for _, r := range replies {
		if _, err := protocol.Decode(r); err != nil {
			a.log.Warn("application backend answered something that is not an envelope; dropped", "channel", a.name, "err", err)
			continue
		}
		var frame bytes.Buffer
		if err := json.Compact(&frame, r); err != nil {
			continue
		}
		if err := c.Send(ctx, frame.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
