package main

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRange(t *testing.T) {
	tests := []struct {
		v      int64
		lo, hi int64
	}{
		{0, 0, 0},
		{-5, 0, 0}, // negative durations count as 0
		{1, 1, 1},
		{63, 63, 63},       // below 2^subBits: exact
		{64, 64, 64},       // first bucket of width 1 above the exact ones
		{127, 127, 127},    //
		{128, 128, 129},    // width 2
		{1000, 1000, 1007}, // width 8 from 512
		{1 << 40, 1 << 40, 1<<40 + 1<<34 - 1},
	}
	for _, tt := range tests {
		b := bucketOf(tt.v)
		lo, hi := bucketRange(b)
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("bucketRange(bucketOf(%d)) = [%d, %d], want [%d, %d]", tt.v, lo, hi, tt.lo, tt.hi)
		}
	}
}

// TestBucketsCoverEveryValue: each bucket's range maps back to it, the
// ranges are contiguous, and the relative width stays within 1/subCount.
func TestBucketsCoverEveryValue(t *testing.T) {
	prevHi := int64(-1)
	for b := range numBuckets {
		lo, hi := bucketRange(b)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d (contiguous)", b, lo, prevHi+1)
		}
		if bucketOf(lo) != b || bucketOf(hi) != b {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf maps its ends to %d and %d", b, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/%d of its values", b, lo, hi, subCount)
		}
		prevHi = hi
		if hi < 0 || hi == 1<<63-1 {
			break
		}
	}
	if prevHi != 1<<63-1 {
		t.Fatalf("the last bucket ends at %d, want MaxInt64", prevHi)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.count() != 0 || empty.maximum() != 0 {
		t.Fatal("an empty histogram reports samples")
	}

	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	values := make([]time.Duration, 10000)
	for i := range values {
		values[i] = time.Duration(r.Int64N(int64(50 * time.Millisecond)))
		h.record(values[i])
	}
	slices.Sort(values)
	if h.count() != uint64(len(values)) {
		t.Fatalf("count = %d, want %d", h.count(), len(values))
	}
	if h.maximum() != values[len(values)-1] {
		t.Errorf("maximum = %v, want %v", h.maximum(), values[len(values)-1])
	}
	for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(float64(len(values))*q+0.999999), 1)
		want := values[rank-1]
		got := h.quantile(q)
		if diff := (got - want).Abs(); float64(diff) > float64(want)/subCount+1 {
			t.Errorf("quantile(%g) = %v, want %v within 1/%d", q, got, want, subCount)
		}
	}
	if h.quantile(1) > h.maximum() {
		t.Errorf("quantile(1) = %v exceeds the maximum %v", h.quantile(1), h.maximum())
	}
}
