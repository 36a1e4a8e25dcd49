package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded value is known within 1/64 (1.6 %).
const subBits = 6

const (
	subCount   = 1 << subBits
	numBuckets = (64 - subBits) * subCount // covers every positive int64
)

// histogram is a fixed-size, lock-free log-linear histogram of durations:
// its memory does not grow with the number of samples. Values below
// 2^subBits ns are exact.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

// bucketOf maps a value in ns to its bucket.
func bucketOf(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - 1 - subBits
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketRange returns the smallest and largest value of a bucket.
func bucketRange(b int) (lo, hi int64) {
	if b < subCount {
		return int64(b), int64(b)
	}
	shift := b/subCount - 1
	mant := int64(b%subCount + subCount)
	return mant << shift, (mant+1)<<shift - 1
}

// record adds one sample.
func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// count is the number of samples.
func (h *histogram) count() uint64 { return h.n.Load() }

// quantile returns the value below which a fraction q of the samples lie
// (the middle of its bucket), or 0 without samples.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			lo, hi := bucketRange(b)
			return time.Duration(min(lo+(hi-lo)/2, h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// maximum is the largest sample, exactly.
func (h *histogram) maximum() time.Duration { return time.Duration(h.max.Load()) }
