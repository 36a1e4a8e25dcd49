// Package client is a Go client for Switchboard's WebSocket protocol: it
// dials a node, waits for the session greeting, sends and receives typed
// envelopes, and correlates requests with their replies.
//
// A [Conn] is one WebSocket. Its typed requests ([Conn.Join], [Conn.Leave],
// [Conn.SendMessage], [Conn.History]) carry a generated "ref" that the
// server echoes on the direct reply, so several requests may be in flight at
// once from different goroutines; every other frame (messages, presence,
// pings, inbox) is returned by [Conn.Next]. Against a server that does not
// echo refs, replies are matched by their room and order instead, and
// SendMessage returns no id.
//
// A [Reconnecting] keeps a connection up: it redials with full-jitter
// exponential backoff, re-joins the rooms it was asked to join resuming each
// from the last message id it delivered, and drops the duplicates a resume
// may replay.
package client
