package conndir

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// testTTL is short so that expiry tests run quickly; sweeps and
// heartbeats in the tests run several times per TTL.
const testTTL = 400 * time.Millisecond

// newNodeFunc starts one node's Directory on a backend shared by every
// node it starts.
type newNodeFunc func(t *testing.T, opts Options) Directory

// runConformance runs the contract every Directory keeps; newCluster
// returns a fresh, empty shared backend.
func runConformance(t *testing.T, newCluster func(t *testing.T) newNodeFunc) {
	tests := []struct {
		name string
		run  func(t *testing.T, newNode newNodeFunc)
	}{
		{"register, get, update, unregister", testLifecycle},
		{"list by user across nodes", testListByUser},
		{"closed records are hidden", testClosedHidden},
		{"last activity written at heartbeat", testLastActivity},
		{"live records are not swept", testLiveNotSwept},
		{"crashed node claimed exactly once by racing sweepers", testExactlyOnce},
		{"re-claim after the claimer dies", testReclaim},
		{"heartbeat reports records taken over", testLost},
		{"a released claim is claimed again", testRelease},
		{"a heartbeating node keeps every record through churn", testChurnKept},
		{"a dead node's records are claimed over several sweeps, each once", testDrain},
		{"a node back after a partial takeover keeps the rest", testPartialTakeover},
		{"a record registered after a stall is not claimed", testRegisterAfterStall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newCluster(t)) })
	}
}

func node(t *testing.T, newNode newNodeFunc, name string) Directory {
	t.Helper()
	return newNode(t, Options{Node: name, TTL: testTTL, SweepLimit: 3})
}

// heartbeatLoop heartbeats d every TTL/4 until the returned stop is called (or the
// test ends).
func heartbeatLoop(t *testing.T, d Directory) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(testTTL / 4)
		defer tick.Stop()
		for {
			if _, err := d.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s: Heartbeat: %v", d.Node(), err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func register(t *testing.T, d Directory, rs ...Record) {
	t.Helper()
	for _, r := range rs {
		if err := d.Register(context.Background(), r); err != nil {
			t.Fatalf("%s: Register %s: %v", d.Node(), r.ID, err)
		}
	}
}

// sameRecord compares the fields a directory keeps, times to the ms.
func sameRecord(a, b Record) bool {
	return a.ID == b.ID && a.User == b.User && a.Node == b.Node &&
		a.ConnectedAt.UnixMilli() == b.ConnectedAt.UnixMilli() &&
		a.LastActivity.UnixMilli() == b.LastActivity.UnixMilli() &&
		slices.Equal(a.Rooms, b.Rooms) &&
		(a.Closed == nil) == (b.Closed == nil) && (a.Closed == nil || *a.Closed == *b.Closed)
}

func testLifecycle(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	at := time.UnixMilli(time.Now().UnixMilli() - 5000)
	register(t, a, Record{ID: "c1", User: "alice", Node: "ignored", ConnectedAt: at, Rooms: []string{"#x"}})

	want := Record{ID: "c1", User: "alice", Node: "a", ConnectedAt: at, LastActivity: at, Rooms: []string{"#x"}}
	for _, d := range []Directory{a, b} {
		got, err := d.Get(ctx, "c1")
		if err != nil || !sameRecord(got, want) {
			t.Fatalf("%s: Get = %+v, %v; want %+v", d.Node(), got, err, want)
		}
	}
	if err := a.Update(ctx, "c1", Change{Rooms: []string{"#x", "#y"}, SetRooms: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, "c1"); !slices.Equal(got.Rooms, []string{"#x", "#y"}) {
		t.Fatalf("rooms after Update = %v", got.Rooms)
	}
	if err := a.Update(ctx, "c1", Change{SetRooms: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, "c1"); len(got.Rooms) != 0 {
		t.Fatalf("rooms after clearing = %v", got.Rooms)
	}
	if err := b.Update(ctx, "c1", Change{SetRooms: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update from another node = %v, want ErrNotFound", err)
	}
	if _, err := a.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown = %v, want ErrNotFound", err)
	}
	for i, want := range []bool{true, false} {
		if ok, err := a.Unregister(ctx, "c1"); err != nil || ok != want {
			t.Fatalf("Unregister #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if _, err := b.Get(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Unregister = %v, want ErrNotFound", err)
	}
	if rs, err := b.ListByUser(ctx, "alice"); err != nil || len(rs) != 0 {
		t.Fatalf("ListByUser after Unregister = %v, %v", rs, err)
	}
}

func testListByUser(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	register(t, a, Record{ID: "a1", User: "alice"}, Record{ID: "a2", User: "bob"})
	register(t, b, Record{ID: "b1", User: "alice"}, Record{ID: "b2", User: "alice"})
	if _, err := b.Unregister(ctx, "b2"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user string
		want []string
	}{
		{"alice", []string{"a1", "b1"}},
		{"bob", []string{"a2"}},
		{"carol", nil},
	}
	for _, tc := range cases {
		for _, d := range []Directory{a, b} {
			rs, err := d.ListByUser(ctx, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range rs {
				ids = append(ids, r.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tc.want) {
				t.Errorf("%s: ListByUser(%s) = %v, want %v", d.Node(), tc.user, ids, tc.want)
			}
		}
	}
}

func testClosedHidden(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a := node(t, newNode, "a")
	register(t, a, Record{ID: "c1", User: "alice"})
	if err := a.Update(ctx, "c1", Change{Close: &Close{Code: 1001, Reason: "going away"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get closed = %v, want ErrNotFound", err)
	}
	if rs, _ := a.ListByUser(ctx, "alice"); len(rs) != 0 {
		t.Fatalf("ListByUser lists a closed record: %v", rs)
	}
	if ok, err := a.Unregister(ctx, "c1"); !ok || err != nil {
		t.Fatalf("Unregister closed = %v, %v; want true", ok, err)
	}
}

func testLastActivity(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	start := time.UnixMilli(time.Now().UnixMilli() - 1000)
	register(t, a, Record{ID: "c1", User: "u", ConnectedAt: start})
	later := start.Add(700 * time.Millisecond)
	if err := a.Update(ctx, "c1", Change{LastActivity: later}); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, "c1", Change{LastActivity: start.Add(time.Millisecond)}); err != nil {
		t.Fatal(err) // older: ignored
	}
	if got, _ := b.Get(ctx, "c1"); !got.LastActivity.Equal(start) {
		t.Fatalf("last activity before heartbeat = %v, want %v", got.LastActivity, start)
	}
	if _, err := a.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, "c1"); got.LastActivity.UnixMilli() != later.UnixMilli() {
		t.Fatalf("last activity after heartbeat = %v, want %v", got.LastActivity, later)
	}
}

func testLiveNotSwept(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	for i := range 20 { // several heartbeat batches
		register(t, a, Record{ID: fmt.Sprintf("c%d", i), User: "u"})
	}
	heartbeatLoop(t, a)
	deadline := time.Now().Add(3 * testTTL)
	for time.Now().Before(deadline) {
		if rs, err := b.Sweep(ctx); err != nil || len(rs) != 0 {
			t.Fatalf("Sweep of a live node = %v, %v", rs, err)
		}
		time.Sleep(testTTL / 8)
	}
	if rs, err := b.ListByUser(ctx, "u"); err != nil || len(rs) != 20 {
		t.Fatalf("ListByUser after 3 TTLs of heartbeats = %d records, %v; want 20", len(rs), err)
	}
}

func testExactlyOnce(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	crashed, survivor := node(t, newNode, "crashed"), node(t, newNode, "survivor")
	const n = 20
	want := map[string]Record{}
	connected := time.UnixMilli(time.Now().UnixMilli() - 60_000)
	for i := range n {
		r := Record{ID: fmt.Sprintf("x%02d", i), User: fmt.Sprintf("u%d", i%4), Node: "crashed",
			ConnectedAt: connected, LastActivity: connected, Rooms: []string{fmt.Sprintf("#r%d", i%3)}}
		register(t, crashed, r)
		want[r.ID] = r
	}
	closing := want["x07"]
	closing.Closed = &Close{Code: 1000, Reason: "bye"}
	want["x07"] = closing
	if err := crashed.Update(ctx, "x07", Change{Close: closing.Closed}); err != nil {
		t.Fatal(err)
	}
	register(t, survivor, Record{ID: "live1", User: "u0"}, Record{ID: "live2", User: "u1"})
	heartbeatLoop(t, survivor)
	// crashed never heartbeats: its records expire after testTTL.

	sweepers := []Directory{survivor, node(t, newNode, "s2"), node(t, newNode, "s3"), node(t, newNode, "s4")}
	for _, s := range sweepers[1:] {
		heartbeatLoop(t, s) // keeps the leases of what it claims
	}
	var mu sync.Mutex
	got := map[string][]string{} // id → sweepers that claimed it
	var wg sync.WaitGroup
	stopAt := time.Now().Add(3 * testTTL)
	for _, s := range sweepers {
		wg.Go(func() {
			for time.Now().Before(stopAt) {
				rs, err := s.Sweep(ctx)
				if err != nil {
					t.Errorf("%s: Sweep: %v", s.Node(), err)
					return
				}
				mu.Lock()
				for _, r := range rs {
					got[r.ID] = append(got[r.ID], s.Node())
					if w, ok := want[r.ID]; !ok || !sameRecord(r, w) {
						t.Errorf("%s claimed %+v, want %+v", s.Node(), r, w)
					}
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	for id := range want {
		if len(got[id]) != 1 {
			t.Errorf("%s claimed by %v, want exactly one sweeper", id, got[id])
		}
	}
	for _, id := range []string{"live1", "live2"} {
		if len(got[id]) != 0 {
			t.Errorf("live record %s claimed by %v", id, got[id])
		}
		if _, err := survivor.Get(ctx, id); err != nil {
			t.Errorf("Get live %s = %v", id, err)
		}
	}
	for id := range want {
		if _, err := survivor.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get claimed %s = %v, want ErrNotFound", id, err)
		}
	}
	if rs, _ := survivor.ListByUser(ctx, "u0"); len(rs) != 1 || rs[0].ID != "live1" {
		t.Errorf("ListByUser(u0) = %v, want only live1", rs)
	}
	// Each claimer acknowledges; nothing comes back afterwards.
	byNode := map[string]Directory{}
	for _, s := range sweepers {
		byNode[s.Node()] = s
	}
	for id, claimers := range got {
		for _, c := range claimers {
			if err := byNode[c].Ack(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(testTTL + testTTL/2)
	if rs, err := survivor.Sweep(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("Sweep after Ack = %v, %v; want nothing", rs, err)
	}
}

func testReclaim(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	crashed := node(t, newNode, "crashed")
	register(t, crashed, Record{ID: "x1", User: "u", Rooms: []string{"#a"}}, Record{ID: "x2", User: "u"})
	time.Sleep(testTTL + testTTL/4)

	// The first claimer claims both, then dies without Ack or heartbeat.
	claimer, heir := node(t, newNode, "claimer"), node(t, newNode, "heir")
	first := sweepAll(t, claimer, 2)
	if rs, _ := heir.Sweep(ctx); len(rs) != 0 {
		t.Fatalf("heir swept %v within the lease", rs)
	}
	time.Sleep(testTTL + testTTL/4)
	second := sweepAll(t, heir, 2)
	slices.SortFunc(first, func(a, b Record) int { return cmpID(a, b) })
	slices.SortFunc(second, func(a, b Record) int { return cmpID(a, b) })
	for i := range first {
		if !sameRecord(first[i], second[i]) || first[i].Node != "crashed" {
			t.Fatalf("re-claimed %+v, first claimed %+v", second[i], first[i])
		}
	}
	for _, r := range second {
		if err := heir.Ack(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := claimer.Ack(ctx, "x1"); err != nil { // a late Ack is harmless
		t.Fatal(err)
	}
	time.Sleep(testTTL + testTTL/4)
	if rs, err := heir.Sweep(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("Sweep after Ack = %v, %v", rs, err)
	}
	if rs, _ := heir.ListByUser(ctx, "u"); len(rs) != 0 {
		t.Fatalf("ListByUser after Ack = %v", rs)
	}
}

func cmpID(a, b Record) int {
	switch {
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// sweepAll sweeps with d until it has claimed n records.
func sweepAll(t *testing.T, d Directory, n int) []Record {
	t.Helper()
	var out []Record
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		rs, err := d.Sweep(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rs...)
	}
	if len(out) != n {
		t.Fatalf("%s swept %d records, want %d", d.Node(), len(out), n)
	}
	return out
}

func testLost(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	register(t, a, Record{ID: "c1", User: "u"}, Record{ID: "c2", User: "u"})
	time.Sleep(testTTL + testTTL/4) // a stalls past its TTL
	sweepAll(t, b, 2)
	register(t, a, Record{ID: "c3", User: "u"})

	lost, err := a.Heartbeat(ctx)
	slices.Sort(lost)
	if err != nil || !slices.Equal(lost, []string{"c1", "c2"}) {
		t.Fatalf("Heartbeat = %v, %v; want [c1 c2] lost", lost, err)
	}
	if lost, err := a.Heartbeat(ctx); err != nil || len(lost) != 0 {
		t.Fatalf("second Heartbeat = %v, %v; want nothing lost", lost, err)
	}
	if ok, err := a.Unregister(ctx, "c1"); ok || err != nil {
		t.Fatalf("Unregister of a record taken over = %v, %v; want false", ok, err)
	}
	if _, err := b.Get(ctx, "c3"); err != nil {
		t.Fatalf("Get c3 = %v", err)
	}
}

func testRelease(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	crashed := node(t, newNode, "crashed")
	register(t, crashed, Record{ID: "x1", User: "u"})
	time.Sleep(testTTL + testTTL/4)
	claimer, other := node(t, newNode, "claimer"), node(t, newNode, "other")
	sweepAll(t, claimer, 1)
	stop := heartbeatLoop(t, claimer)
	time.Sleep(testTTL + testTTL/4) // the heartbeats renew the lease
	if rs, err := other.Sweep(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("Sweep of a renewed claim = %v, %v", rs, err)
	}
	if err := claimer.Release(ctx, "x1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testTTL + testTTL/4) // heartbeats go on, without x1
	stop()
	if rs := sweepAll(t, other, 1); rs[0].ID != "x1" || rs[0].User != "u" {
		t.Fatalf("re-claimed %+v", rs[0])
	}
}

// testChurnKept: a node with more records than a heartbeat batch or a
// sweep's limit, registering and unregistering while it heartbeats, keeps
// every record it holds while others sweep.
func testChurnKept(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	for i := range 30 {
		register(t, a, Record{ID: fmt.Sprintf("c%02d", i), User: "u"})
	}
	heartbeatLoop(t, a)
	want := map[string]bool{}
	for i := range 30 {
		want[fmt.Sprintf("c%02d", i)] = true
	}
	next := 30
	deadline := time.Now().Add(3 * testTTL)
	for time.Now().Before(deadline) {
		if rs, err := b.Sweep(ctx); err != nil || len(rs) != 0 {
			t.Fatalf("Sweep of a live node = %v, %v", rs, err)
		}
		id := fmt.Sprintf("c%02d", next)
		register(t, a, Record{ID: id, User: "u"})
		want[id] = true
		gone := fmt.Sprintf("c%02d", next-30)
		if ok, err := a.Unregister(ctx, gone); !ok || err != nil {
			t.Fatalf("Unregister %s = %v, %v; want true", gone, ok, err)
		}
		delete(want, gone)
		next++
		time.Sleep(testTTL / 8)
	}
	rs, err := b.ListByUser(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rs {
		got[r.ID] = true
	}
	if len(got) != len(want) {
		t.Fatalf("ListByUser after 3 TTLs of churn = %d records, want %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("%s missing from ListByUser", id)
		}
	}
}

// testDrain: a dead node with many more records than SweepLimit is drained
// by successive sweeps, never more than SweepLimit at a time, each record
// exactly once; the sweeper's own records stay.
func testDrain(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	crashed := node(t, newNode, "crashed")
	const n = 25
	for i := range n {
		register(t, crashed, Record{ID: fmt.Sprintf("x%02d", i), User: "u"})
	}
	survivor := node(t, newNode, "survivor")
	register(t, survivor, Record{ID: "live", User: "u"})
	heartbeatLoop(t, survivor)
	time.Sleep(testTTL + testTTL/4)
	got := map[string]int{}
	sweeps := 0
	for deadline := time.Now().Add(5 * time.Second); len(got) < n && time.Now().Before(deadline); {
		rs, err := survivor.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 3 {
			t.Fatalf("one Sweep claimed %d records, more than SweepLimit 3", len(rs))
		}
		if len(rs) > 0 {
			sweeps++
		}
		for _, r := range rs {
			got[r.ID]++
			if r.User != "u" || r.Node != "crashed" {
				t.Errorf("claimed %+v", r)
			}
			if err := survivor.Ack(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(got) != n || sweeps < n/3 {
		t.Fatalf("claimed %d records in %d sweeps, want %d in at least %d", len(got), sweeps, n, n/3)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("%s claimed %d times", id, c)
		}
	}
	if rs, err := survivor.Sweep(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("Sweep once drained = %v, %v; want nothing", rs, err)
	}
	if _, err := survivor.Get(ctx, "live"); err != nil {
		t.Fatalf("the sweeper's own record: %v", err)
	}
}

// testPartialTakeover: a node that stalled past TTL while another node
// claimed some of its records learns at its next heartbeat exactly which
// ones it lost, and keeps the others for good.
func testPartialTakeover(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	const n = 10
	for i := range n {
		register(t, a, Record{ID: fmt.Sprintf("c%d", i), User: "u"})
	}
	time.Sleep(testTTL + testTTL/4) // a stalls
	rs, err := b.Sweep(ctx)
	if err != nil || len(rs) != 3 {
		t.Fatalf("Sweep = %v, %v; want 3 records (SweepLimit)", rs, err)
	}
	var claimed []string
	for _, r := range rs {
		claimed = append(claimed, r.ID)
	}
	slices.Sort(claimed)
	lost, err := a.Heartbeat(ctx)
	slices.Sort(lost)
	if err != nil || !slices.Equal(lost, claimed) {
		t.Fatalf("Heartbeat = %v, %v; want %v lost", lost, err, claimed)
	}
	heartbeatLoop(t, a)
	heartbeatLoop(t, b) // keeps the leases of its claims
	for deadline := time.Now().Add(testTTL + testTTL/2); time.Now().Before(deadline); time.Sleep(testTTL / 8) {
		if rs, err := b.Sweep(ctx); err != nil || len(rs) != 0 {
			t.Fatalf("Sweep after a came back = %v, %v; want nothing", rs, err)
		}
	}
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		_, err := b.Get(ctx, id)
		if slices.Contains(claimed, id) {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("Get claimed %s = %v, want ErrNotFound", id, err)
			}
			if ok, err := a.Unregister(ctx, id); ok || err != nil {
				t.Errorf("Unregister claimed %s = %v, %v; want false", id, ok, err)
			}
		} else if err != nil {
			t.Errorf("Get kept %s = %v", id, err)
		}
	}
	for _, id := range claimed {
		if err := b.Ack(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := a.Unregister(ctx, "c9"); ok != !slices.Contains(claimed, "c9") || err != nil {
		t.Errorf("Unregister c9 = %v, %v", ok, err)
	}
}

// testRegisterAfterStall: a record registered by a node whose heartbeats
// stopped for longer than TTL is not claimed while the node heartbeats
// again, and the node reports lost exactly what other nodes claimed.
func testRegisterAfterStall(t *testing.T, newNode newNodeFunc) {
	ctx := context.Background()
	a, b := node(t, newNode, "a"), node(t, newNode, "b")
	register(t, a, Record{ID: "old1", User: "u"}, Record{ID: "old2", User: "u"})
	time.Sleep(testTTL + testTTL/4) // a stalls
	register(t, a, Record{ID: "new", User: "u"})
	claimed := map[string]bool{}
	var lost []string
	for deadline := time.Now().Add(2 * testTTL); time.Now().Before(deadline); time.Sleep(testTTL / 8) {
		rs, err := b.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if claimed[r.ID] {
				t.Errorf("%s claimed twice", r.ID)
			}
			claimed[r.ID] = true
			if err := b.Ack(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		l, err := a.Heartbeat(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lost = append(lost, l...)
	}
	if claimed["new"] {
		t.Fatal("the record registered after the stall was claimed")
	}
	if _, err := b.Get(ctx, "new"); err != nil {
		t.Fatalf("Get new = %v", err)
	}
	slices.Sort(lost)
	var want []string
	for id := range claimed {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(lost, want) {
		t.Fatalf("a reported %v lost, b claimed %v", lost, want)
	}
}
