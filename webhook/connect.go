package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Connect sends the POST for a new connection and reports whether the
// backend accepts it. The backend accepts by answering 2xx with
// {"code": "OK"}, optionally naming "user" and "rooms" to join; it may add
// "reason" to a refusal. Any other body, a non-2xx status, a timeout or a
// transport failure is a refusal, returned as an *Error whose CloseReason
// goes in the 1008 close frame — except that with FailOpen a timeout or
// transport failure accepts (ConnectReply.FailedOpen is then true).
func (c *Client) Connect(ctx context.Context, ev ConnectEvent) (ConnectReply, error) {
	const event = "connect"
	if !c.enter() {
		return ConnectReply{}, &Error{Event: event, Reason: ReasonClosed, Err: ErrClosed}
	}
	defer c.wg.Done()
	start := time.Now()
	reply, err := c.callConnect(ctx, ev)
	c.observe(event, start, err)
	var werr *Error
	if c.opts.FailOpen && errors.As(err, &werr) && (werr.Reason == ReasonTimeout || werr.Reason == ReasonTransport) {
		c.metrics.failOpen.Inc()
		c.log.Warn("webhook connect failed open", "conn", ev.Connection, "user", ev.User, "err", err)
		return ConnectReply{User: ev.User, FailedOpen: true}, nil
	}
	return reply, err
}

// callConnect makes the request of Connect.

func (c *Client) callConnect(ctx context.Context, ev ConnectEvent) (ConnectReply, error) {
	const event = "connect"
	body, err := json.Marshal(ev)
	if err != nil {
		return ConnectReply{}, &Error{Event: event, Reason: ReasonTransport, Err: err}
	}
	res, err := c.send(ctx, event, http.MethodPost, body, ev.Header, "")
	if err != nil {
		return ConnectReply{}, err
	}
	var a connectAnswer
	if err := json.Unmarshal(res.body, &a); err != nil || a.Code != "OK" {
		detail := a.Reason
		if detail == "" && a.Code != "" {
			detail = a.Code
		}
		e := &Error{Event: event, Reason: ReasonRefused, Status: res.status, Detail: truncate(detail, MaxCloseReason)}
		return ConnectReply{}, e
	}
	reply := ConnectReply{User: ev.User, Rooms: a.Rooms}
	if a.User != "" {
		reply.User = a.User
	}
	return reply, nil
}
