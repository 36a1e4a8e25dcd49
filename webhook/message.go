package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Message sends the PUT for an envelope on an application channel and
// returns the envelopes to send back to that client. The backend answers
// 2xx with a JSON array of envelopes, or with an empty body (or 204) when
// it has nothing to send; each array element is returned as it was
// written. Other answers are an *Error; Message never retries.
func (c *Client) Message(ctx context.Context, ev MessageEvent) ([]json.RawMessage, error) {
	const event = "message"
	if !c.enter() {
		return nil, &Error{Event: event, Reason: ReasonClosed, Err: ErrClosed}
	}
	defer c.wg.Done()
	start := time.Now()
	res, err := c.callMessage(ctx, ev)
	c.observe(event, start, err)
	return res, err
}

// callMessage makes the request of Message.
func (c *Client) callMessage(ctx context.Context, ev MessageEvent) ([]json.RawMessage, error) {
	const event = "message"
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, &Error{Event: event, Reason: ReasonTransport, Err: err}
	}
	res, err := c.send(ctx, event, http.MethodPut, body, nil, "")
	if err != nil {
		return nil, err
	}
	data := bytes.TrimSpace(res.body)
	if len(data) == 0 {
		return nil, nil
	}
	var envs []json.RawMessage
	if err := json.Unmarshal(data, &envs); err != nil {
		return nil, &Error{Event: event, Reason: ReasonBadReply, Status: res.status, Detail: "want a JSON array of envelopes", Err: err}
	}
	return envs, nil
}
