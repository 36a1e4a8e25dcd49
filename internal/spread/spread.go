// Package spread spreads periodic work on many keys over its interval, so
// that a node with thousands of rooms refreshes or sweeps a slice of them
// at a time instead of all of them at once every interval (a burst that
// stalls Redis, and every message behind it, for milliseconds).
package spread

import "hash/fnv"

// Slices is how many slices one interval's work is cut into: the work
// runs every interval/Slices on the keys of one slice, in turn.
const Slices = 10

// SliceOf returns the slice of key, in [0, Slices): the same key always
// falls in the same slice, so each key is visited once per interval.
func SliceOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % Slices)
}
