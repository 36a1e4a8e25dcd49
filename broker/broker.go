// Package broker carries the state Switchboard nodes share — published
// messages, their history, room presence and single-use ticket claims —
// in memory for a single node (Memory) or in Redis for many (Redis).
//
// Both implementations keep the same contract, pinned by one conformance
// suite (conformance_test.go):
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
//   - The deliver callback is called from one goroutine per subscription
//     connection and must not block.
//   - Presence announcements (the frames given to AddPresence,
//     RemovePresence and SweepPresence) are published in the same atomic
//     step as the presence change they announce: a user is announced as
//     joined exactly when it becomes present and as left exactly when it
//     stops being present, in that order on the topic.
package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
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
// many bytes (a page always holds at least one message).
type HistoryQuery struct {
	Since    string
	Before   string
	Limit    int
	MaxBytes int
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
var DefaultOptions = Options{HistorySize: 1000, HistoryTTL: 24 * time.Hour, PresenceTTL: 30 * time.Second}

// streamID is a parsed message id "<milliseconds>-<sequence>", the format of
// Redis stream ids, used by both implementations.
type streamID struct{ ms, seq uint64 }

func parseID(s string) (streamID, error) {
	msPart, seqPart, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	ms, err1 := strconv.ParseUint(msPart, 10, 64)
	seq, err2 := strconv.ParseUint(seqPart, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	return streamID{ms, seq}, nil
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || (id.ms == o.ms && id.seq < o.seq)
}

// CompareIDs orders two message ids of one topic: -1 if a is older than b,
// 0 if equal, +1 if newer. An id that does not parse sorts before every
// valid one.
func CompareIDs(a, b string) int {
	ia, errA := parseID(a)
	ib, errB := parseID(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	case ia.less(ib):
		return -1
	case ib.less(ia):
		return 1
	default:
		return 0
	}
}

// ValidID reports whether s is a well-formed message id.
func ValidID(s string) bool {
	_, err := parseID(s)
	return err == nil
}

func validateQuery(q HistoryQuery) error {
	for _, bound := range []string{q.Since, q.Before} {
		if bound != "" && !ValidID(bound) {
			return fmt.Errorf("%w: %q", ErrInvalidID, bound)
		}
	}
	return nil
}
