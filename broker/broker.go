// Package broker carries messages between Switchboard nodes: it publishes
// them on topics and keeps their history, with the state that must be
// shared alongside (room presence, single-use claims), in memory for a
// single node (Memory) or in Redis for many (Redis). Both keep the
// contract of the Broker interface.
package broker

import (
	"context"
	"errors"
	"time"
)

// Broker is the whole contract both implementations keep, pinned by one
// conformance suite (conformance_test.go) run against Memory, a single
// Redis and a Redis Cluster:
//
//   - Subscribe returns only once the subscription is in effect: a message
//     published after Subscribe returns reaches this node.
//   - A node holds one subscription per topic, however many local clients
//     want it; reference counting is the caller's job (package rooms).
//   - Publish reaches every node subscribed to the topic at that moment, at
//     most once. With history, storing the message and publishing it are one
//     atomic step: the id subscribers see is the stored id, and nothing is
//     published without being stored or stored without being published.
//   - Messages published to one topic are delivered to each node in the
//     order they were stored; ids increase strictly within a topic's stream.
//   - The deliver callback given to Start must not block; it may be called
//     from several goroutines, but never concurrently for one topic.
//   - Presence announcements (the frames given to AddPresence,
//     RemovePresence and SweepPresence) are published in the same atomic
//     step as the presence change they announce: a user is announced as
//     joined exactly when it becomes present and as left exactly when it
//     stops being present, in that order on the topic.
//   - Errors keep their cause. A call whose context is cancelled (or
//     passes its deadline) returns an error matching context.Canceled (or
//     context.DeadlineExceeded); a store that cannot be reached gives one
//     matching ErrUnavailable, wrapping the underlying error.
//
// Start is called once, before any other method but Close; Close ends
// every goroutine the broker started.
type Broker interface {
	Publisher
	Subscriber
	Historian
	Presence
	ActiveTopics
	Claimer
	// Start sets the callback that receives every message of a subscribed
	// topic and starts the broker's goroutines.
	Start(deliver func(Message))
	// Close stops the broker's goroutines and releases its connections.
	Close() error
	// Ready reports nil when the broker can serve traffic: its store
	// answers and every wanted subscription is in effect.
	Ready(ctx context.Context) error
}

// Publisher publishes messages on topics.
type Publisher interface {
	// Publish sends msg to every node subscribed to msg.Topic. With
	// withHistory (and history enabled) the message is stored in the
	// topic's stream in the same atomic step, and delivered with its id.
	Publish(ctx context.Context, msg Message, withHistory bool) (PublishResult, error)
}

// Subscriber makes this node receive a topic's messages.
type Subscriber interface {
	// Subscribe returns once messages of topic reach this node.
	Subscribe(ctx context.Context, topic string) error
	// Unsubscribe stops this node receiving topic's messages.
	Unsubscribe(ctx context.Context, topic string) error
}

// Historian reads stored messages.
type Historian interface {
	// History returns the page of topic's stored messages that q selects.
	History(ctx context.Context, topic string, q HistoryQuery) (HistoryPage, error)
}

// Presence records which users are present on a topic, across nodes, and
// announces their arrivals and departures on it.
type Presence interface {
	// AddPresence records conn of user on topic. When user was not present
	// there before, joined is published on the topic (to every connection
	// but conn) and first is true.
	AddPresence(ctx context.Context, topic, user, conn string, joined []byte) (first bool, err error)
	// RemovePresence forgets conn on topic. When user has no connection
	// left there, left is published on the topic and last is true.
	RemovePresence(ctx context.Context, topic, user, conn string, left []byte) (last bool, err error)
	// Members lists a page of the users present on topic, in name order,
	// with how many are present in all.
	Members(ctx context.Context, topic string, q MembersQuery) (MembersPage, error)
	// SweepPresence removes the users whose connections all expired (their
	// node stopped refreshing them), announces each with left, and returns
	// them. Each is reported once, by whichever node sweeps first. A sweep
	// that closely follows another of the topic (by any node) may do
	// nothing and return no users, leaving them to a later sweep.
	SweepPresence(ctx context.Context, topic string, left UserTemplate) ([]string, error)
}

// ActiveTopics lists the topics that have users present, with their
// counts, from an index kept with presence (never by scanning keys).
type ActiveTopics interface {
	Active(ctx context.Context, q ActiveQuery) (ActivePage, error)
}

// Claimer records single-use keys, such as ticket ids, for every node.
type Claimer interface {
	// Claim records key for ttl and reports whether it was new: the first
	// caller gets true, every later one false until ttl passes.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

var (
	_ Broker = (*Redis)(nil)
	_ Broker = (*Memory)(nil)
)

// Message is what travels between nodes on a topic.
type Message struct {
	// Topic is the logical topic, e.g. "chat" or "room:#haskell".
	Topic string
	// ID is the message's id in the topic's history stream, or "" when it
	// was published without history.
	ID string
	// Except names a connection that must not receive the message, or "".
	// It lets a node answer one client directly and everyone else by
	// broadcast without the client seeing both.
	Except string
	// Data is the encoded envelope. Subscribers must not modify it.
	Data []byte
	// Size is the length of the stored data. History sets it on every
	// message it returns, also when HistoryQuery.IDsOnly leaves Data nil.
	Size int
	// Gap, with no Data, tells a node's subscribers that stored messages of
	// the topic were published while the node could not receive them, more
	// than it replays by itself: they must catch up from history.
	Gap bool
}

// PublishResult reports what Publish did.
type PublishResult struct {
	// ID is the stored message's id ("" without history).
	ID string
	// Receivers is how many nodes were subscribed to the topic.
	Receivers int
}

// HistoryQuery selects stored messages. Since and Before are exclusive
// bounds. With Since the page runs forward from it; otherwise it holds the
// newest messages before Before (or before the end). Limit <= 0 means all.
// MaxBytes > 0 also ends the page before its messages' data passes that
// many bytes (a page always holds at least one message). IDsOnly returns
// the same page with each message's ID and Size but no Data: a cheap probe
// of what a range holds before reading it.
type HistoryQuery struct {
	Since    string
	Before   string
	Limit    int
	MaxBytes int
	IDsOnly  bool
}

// HistoryPage holds stored messages, oldest first.
type HistoryPage struct {
	Messages []Message
	// Complete is true when the page holds every retained message of the
	// asked range, false when Limit or MaxBytes cut it short.
	Complete bool
	// Recovered is true when Since is set and the stream still holds every
	// message after it (Since is not older than the oldest one retained):
	// the page continues exactly where Since left off. False means messages
	// may have been trimmed or expired in between.
	Recovered bool
}

// MembersQuery selects present users of a topic in name order: those after
// After ("" for the first), at most Limit of them (0: all).
type MembersQuery struct {
	After string
	Limit int
}

// MembersPage is a page of present users, in name order, with how many
// users are present in all.
type MembersPage struct {
	Users []string
	Count int
}

// UserTemplate builds a message about one user: Head, the user's name,
// Middle, the name as a JSON string, Tail. The broker completes it for
// users it removes on its own (expired presence), whose names only it
// knows.
type UserTemplate struct {
	Head, Middle, Tail []byte
}

// Errors shared by both implementations.
var (
	// ErrUnavailable means the backing store cannot be reached; the
	// operation did not happen and may be retried.
	ErrUnavailable = errors.New("broker unavailable")
	// ErrInvalidID means a history bound is not a message id.
	ErrInvalidID = errors.New("invalid message id")
	// ErrClosed means the broker was closed.
	ErrClosed = errors.New("broker closed")
)

// Options configures either implementation.
type Options struct {
	// HistorySize bounds each topic's stream; 0 turns history off.
	HistorySize int
	// HistoryBytes bounds the data bytes of each topic's stream: storing a
	// message evicts the topic's oldest ones while the stream is over it
	// (the newest message is always kept). 0: no byte bound.
	HistoryBytes int
	// MemoryBytes bounds the data bytes the Memory broker keeps across all
	// topics: storing a message evicts the oldest messages of any topic
	// (by id time) while the total is over it. Redis ignores it: its
	// maxmemory bounds the whole store. 0: no bound.
	MemoryBytes int
	// HistoryTTL drops a topic's stream this long after its last message.
	HistoryTTL time.Duration
	// PresenceTTL is how long a presence entry lives without a heartbeat;
	// members of a crashed node vanish after it.
	PresenceTTL time.Duration
	// LargeRoom is the user count from which a topic's presence changes are
	// no longer announced (the frames given to AddPresence, RemovePresence
	// and SweepPresence are not published); 0: always announce.
	LargeRoom int
}

// DefaultOptions are the documented defaults.
var DefaultOptions = Options{
	HistorySize: 1000, HistoryBytes: 4 << 20, MemoryBytes: 256 << 20,
	HistoryTTL: 24 * time.Hour, PresenceTTL: 30 * time.Second,
}
