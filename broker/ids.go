package broker

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

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

// IDBefore returns the greatest id older than id: a Since bound that reads
// from id itself. It reports false for an invalid id or "0-0", which has
// none before it.
func IDBefore(id string) (string, bool) {
	p, err := parseID(id)
	switch {
	case err != nil || p == (streamID{}):
		return "", false
	case p.seq > 0:
		p.seq--
	default:
		p.ms, p.seq = p.ms-1, math.MaxUint64
	}
	return p.String(), true
}
