// Package conndir is a directory of live connections shared by nodes, in
// which the connections of a node that stopped refreshing expire and are
// handed over to exactly one surviving node.
//
// A node registers each socket it accepts and keeps all its records alive
// with one Heartbeat every few seconds (in Redis, liveness is per node, so
// a heartbeat costs the same whatever the number of sockets). When a node
// stops (crash, SIGKILL, a shutdown that could not deliver its DELETE
// webhooks), its records expire after TTL; every node calls Sweep
// periodically, and each expired record is returned by exactly one Sweep
// (a claim), at most SweepLimit per Sweep, so a large node is taken over
// by several sweeps. The claimer sends the DELETE webhook and calls Ack. A
// claim is a lease, renewed by the claimer's heartbeats: if the claimer
// dies before Ack, another node's Sweep claims the record again once the
// lease ran out, so a takeover is never lost (it may be repeated, which
// the webhook's idempotency key covers). A node that stalled past TTL and
// comes back learns from its next Heartbeat which of its records were
// claimed meanwhile, and keeps the others.
//
// The recommended flow for a socket that closes on a live node:
// Update(id, Change{Close: &Close{code, reason}}), send the DELETE, and
// Unregister(id) once it was delivered (or failed permanently). Until then
// the heartbeat keeps the record, hidden from Get and ListByUser; if the
// node stops first, a survivor's Sweep returns it with Closed set.
package conndir

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by Get for an unknown, closed or expired
// connection, and by Update for a connection this node did not register.
var ErrNotFound = errors.New("conndir: connection not found")

// Record describes one connection.
type Record struct {
	// ID is the connection id.
	ID string
	// User is the connection's user.
	User string
	// Node names the node holding the socket.
	Node string
	// ConnectedAt is when the socket opened.
	ConnectedAt time.Time
	// Rooms lists the rooms the connection is in.
	Rooms []string
	// LastActivity is when the client last sent a frame, as of the
	// holding node's last heartbeat.
	LastActivity time.Time
	// Closed is set once the socket closed while its DELETE webhook is not
	// yet delivered; nil for a live socket.
	Closed *Close
}

// Close is how a socket closed.
type Close struct {
	// Code is the WebSocket close code.
	Code int
	// Reason is the close reason.
	Reason string
}

// Change is a partial update of a record; zero fields leave it unchanged.
type Change struct {
	// Rooms replaces the room list when SetRooms is true.
	Rooms []string
	// SetRooms says Rooms is meant, even if empty.
	SetRooms bool
	// LastActivity, if not zero, is kept locally and written at the next
	// Heartbeat (so that a busy socket costs no write per frame).
	LastActivity time.Time
	// Close, if not nil, marks the socket closed.
	Close *Close
}

// Directory is one node's handle on the shared directory. Register,
// Update and Unregister concern this node's connections; Get and
// ListByUser see every node's; Heartbeat, Sweep and Ack drive expiry and
// takeover. Implementations are safe for concurrent use.
type Directory interface {
	// Node returns the name of this node.
	Node() string
	// Register adds a connection held by this node. Node is set to this
	// node; a zero ConnectedAt is now; a zero LastActivity is ConnectedAt.
	Register(ctx context.Context, r Record) error
	// Update changes a connection this node registered.
	Update(ctx context.Context, id string, c Change) error
	// Unregister removes a connection this node registered, after a
	// graceful close. It reports whether the record was still this node's:
	// false means it never existed or another node's Sweep has already
	// claimed it (and sends its DELETE).
	Unregister(ctx context.Context, id string) (bool, error)
	// Get returns a live connection of any node, or ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)
	// ListByUser returns the live connections of a user on every node, in
	// no particular order.
	ListByUser(ctx context.Context, user string) ([]Record, error)
	// Heartbeat refreshes the expiry of this node's records, writes their
	// pending LastActivity, and renews the leases of records this node
	// claimed and has not acknowledged. It returns the ids of this node's
	// records that another node claimed because this node's heartbeats
	// stopped for longer than TTL (their DELETE was sent: the caller should
	// close those sockets); they are dropped from this node's records. Its
	// other records stay its own, including those a store lost with its
	// data, which Heartbeat writes back.
	Heartbeat(ctx context.Context) (lost []string, err error)
	// Sweep claims expired records of any node, and records whose claim's
	// lease ran out, and returns them; each is returned by exactly one
	// Sweep per lease. Records whose data already expired come back with
	// only ID set.
	Sweep(ctx context.Context) ([]Record, error)
	// Ack removes a claimed record once its DELETE was delivered.
	Ack(ctx context.Context, id string) error
	// Release gives up a claim whose DELETE could not be delivered: this
	// node stops renewing its lease, so a later Sweep (of any node)
	// claims it again once the lease ran out.
	Release(ctx context.Context, id string) error
}

// Defaults for the zero values of Options.
const (
	DefaultTTL        = 30 * time.Second
	DefaultSweepLimit = 100
)

// Options configure a Directory.
type Options struct {
	// Node names this node; required.
	Node string
	// TTL is how long a record outlives this node's last heartbeat, and how
	// long a claim outlives its claimer's. Heartbeat at most every TTL/3.
	// Default 30 s.
	TTL time.Duration
	// SweepLimit bounds the records one Sweep claims. Default 100.
	SweepLimit int
}

func (o Options) withDefaults() (Options, error) {
	if o.Node == "" {
		return o, errors.New("conndir: Options.Node is required")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.SweepLimit <= 0 {
		o.SweepLimit = DefaultSweepLimit
	}
	return o, nil
}
