package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"
)

// RetryPolicy bounds the retries of a DELETE: exponential backoff from
// Initial, doubled per attempt up to Max, with full jitter in [d/2, d],
// until MaxAttempts attempts or MaxElapsed since the first.
type RetryPolicy struct {
	// MaxAttempts counts attempts, the first included. Default 10.
	MaxAttempts int
	// MaxElapsed bounds the time from the first attempt to the start of
	// the last. Default 5 minutes.
	MaxElapsed time.Duration
	// Initial is the first backoff. Default 500 ms.
	Initial time.Duration
	// Max caps one backoff. Default 1 minute.
	Max time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 10
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = 5 * time.Minute
	}
	if p.Initial <= 0 {
		p.Initial = 500 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = time.Minute
	}
	return p
}

// backoff returns the wait before attempt n+1 after n failed attempts.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Disconnect sends the DELETE for a closed connection, with the connection
// id as Idempotency-Key on every attempt, and retries temporary failures
// (see Error.Temporary) with backoff until it is delivered, the retry
// policy's bound is reached, ctx ends or Close begins. It blocks until
// then; run it on a goroutine, or use DisconnectAsync. An event given up
// on is logged, counted and passed to Options.OnUndelivered.
func (c *Client) Disconnect(ctx context.Context, ev DisconnectEvent) error {
	const event = "disconnect"
	if !c.enter() {
		err := &Error{Event: event, Reason: ReasonClosed, Err: ErrClosed}
		c.undelivered(ev, err)
		return err
	}
	defer c.wg.Done()
	err := c.deliver(ctx, ev)
	if err != nil {
		c.undelivered(ev, err)
	}
	return err
}

// DisconnectAsync is Disconnect on a goroutine owned by the Client: Close
// stops its retries and waits for it. done, if not nil, receives the
// result (nil once delivered).
func (c *Client) DisconnectAsync(ev DisconnectEvent, done func(error)) {
	if !c.enter() {
		err := &Error{Event: "disconnect", Reason: ReasonClosed, Err: ErrClosed}
		c.undelivered(ev, err)
		if done != nil {
			done(err)
		}
		return
	}
	go func() {
		defer c.wg.Done()
		err := c.deliver(context.Background(), ev)
		if err != nil {
			c.undelivered(ev, err)
		}
		if done != nil {
			done(err)
		}
	}()
}

// deliver runs the attempts of one DELETE.
func (c *Client) deliver(ctx context.Context, ev DisconnectEvent) error {
	const event = "disconnect"
	body, err := json.Marshal(ev)
	if err != nil {
		return &Error{Event: event, Reason: ReasonTransport, Err: err}
	}
	p := c.opts.Retry
	first := time.Now()
	for n := 1; ; n++ {
		start := time.Now()
		_, err := c.send(ctx, event, http.MethodDelete, body, nil, ev.Connection)
		c.observe(event, start, err)
		if err == nil {
			return nil
		}
		var werr *Error
		if !errors.As(err, &werr) || !werr.Temporary() || n >= p.MaxAttempts {
			return err
		}
		wait := p.backoff(n)
		if time.Since(first)+wait > p.MaxElapsed {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &Error{Event: event, Reason: ReasonCanceled, Err: errors.Join(ctx.Err(), err)}
		case <-c.closing:
			t.Stop()
			return &Error{Event: event, Reason: ReasonClosed, Err: errors.Join(ErrClosed, err)}
		}
		c.metrics.retries.WithLabelValues(event).Inc()
	}
}

// undelivered reports a DELETE given up on.
func (c *Client) undelivered(ev DisconnectEvent, err error) {
	c.metrics.undelivered.Inc()
	c.log.Warn("webhook disconnect undelivered", "conn", ev.Connection, "user", ev.User, "err", err)
	if c.opts.OnUndelivered != nil {
		c.opts.OnUndelivered(ev, err)
	}
}
