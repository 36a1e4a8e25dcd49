package spread

import (
	"fmt"
	"testing"
)

func TestSliceOfIsStableAndSpreads(t *testing.T) {
	counts := make([]int, Slices)
	for i := range 10000 {
		key := fmt.Sprintf("room:#r%d", i)
		s := SliceOf(key)
		if s < 0 || s >= Slices {
			t.Fatalf("SliceOf(%q) = %d, out of range", key, s)
		}
		if SliceOf(key) != s {
			t.Fatalf("SliceOf(%q) changed", key)
		}
		counts[s]++
	}
	for s, n := range counts {
		if n < 800 || n > 1200 { // 1,000 each, give or take
			t.Errorf("slice %d holds %d of 10,000 keys", s, n)
		}
	}
}
