package conndir

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) newNodeFunc {
		store := NewMemoryStore()
		return func(t *testing.T, opts Options) Directory {
			d, err := NewMemory(store, opts)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	})
}
