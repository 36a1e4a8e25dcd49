package client

import (
	"context"
	"fmt"

	"github.com/coder/websocket"
)

// This file holds what a Conn offers below the envelope protocol, for
// tests of how a server treats the WebSocket itself: frames that are not
// envelopes, binary frames, pings, and closes with a chosen code.

// WriteFrame writes p unchanged as one WebSocket message of type typ
// (Switchboard reads binary messages as text), e.g. to see how a server
// answers a frame that is not an envelope. Send is the way to write a
// well-formed envelope.
func (c *Conn) WriteFrame(ctx context.Context, typ websocket.MessageType, p []byte) error {
	return c.write(ctx, typ, p)
}

// Ping sends a WebSocket ping and waits for the server's pong or ctx.
func (c *Conn) Ping(ctx context.Context) error {
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.ws.Ping(ctx); err != nil {
		if cerr := c.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("client: ping: %w", err)
	}
	return nil
}

// CloseWith closes the connection with code and reason (which the server
// sees, e.g. in its webhooks) and waits for the reader to return. Like
// Close, it leaves the frames already received to Next, after which Next
// returns ErrClosed. Only the first of Close, CloseWith and CloseNow has an
// effect.
func (c *Conn) CloseWith(code websocket.StatusCode, reason string) error {
	c.closeOnce.Do(func() {
		c.markClosing()
		if err := c.ws.Close(code, reason); err != nil {
			_ = c.ws.CloseNow()
		}
	})
	<-c.done
	return nil
}

// CloseNow drops the connection without the closing handshake, as a
// crashed client would, and waits for the reader to return.
func (c *Conn) CloseNow() error {
	c.closeOnce.Do(func() {
		c.markClosing()
		_ = c.ws.CloseNow()
	})
	<-c.done
	return nil
}

// markClosing records that the connection ends on purpose, so that its
// reason becomes ErrClosed.
func (c *Conn) markClosing() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
}
