package conndir

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestRun: a node running Run keeps its own records alive, claims those
// of a node that stopped, reports each once, and returns when its context
// ends.
func TestRun(t *testing.T) {
	store := NewMemoryStore()
	newNode := func(name string) *Memory {
		d, err := NewMemory(store, Options{Node: name, TTL: testTTL})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	crashed, survivor := newNode("crashed"), newNode("survivor")
	for i := range 5 {
		register(t, crashed, Record{ID: fmt.Sprintf("x%d", i), User: "u"})
	}
	register(t, survivor, Record{ID: "live", User: "u"})

	var mu sync.Mutex
	claimed := map[string]int{}
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, survivor, RunOptions{
			Heartbeat: testTTL / 4,
			Sweep:     testTTL / 8,
			OnClaimed: func(r Record) {
				mu.Lock()
				defer mu.Unlock()
				claimed[r.ID]++
				if err := survivor.Ack(ctx, r.ID); err != nil {
					t.Error(err)
				}
				if len(claimed) == 5 {
					close(all)
				}
			},
		})
	}()
	select {
	case <-all:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not claim the crashed node's records")
	}
	time.Sleep(testTTL) // more sweeps: nothing is claimed twice
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for id, n := range claimed {
		if n != 1 || id == "live" {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
	if _, err := survivor.Get(context.Background(), "live"); err != nil {
		t.Errorf("survivor's own record expired under Run: %v", err)
	}
}
