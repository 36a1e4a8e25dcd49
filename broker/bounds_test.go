package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
)

// runHistoryBounds is the part of the conformance suite about what a
// stream keeps in bytes and how it is probed.
func runHistoryBounds(t *testing.T, be backend) {
	ctx := context.Background()

	t.Run("HistoryBytesEvictsOldest", func(t *testing.T) {
		opts := testOpts
		opts.HistoryBytes = 1000
		n := startNode(t, be, opts)
		var ids []string
		for i := range 30 {
			data := fmt.Appendf(nil, "%02d%s", i, strings.Repeat("x", 98)) // 100 bytes
			ids = append(ids, must[PublishResult](t)(n.Publish(ctx, Message{Topic: "cap", Data: data}, true)).ID)
		}
		all := must[HistoryPage](t)(n.History(ctx, "cap", HistoryQuery{})).Messages
		if got := idsOf(all); !slices.Equal(got, ids[20:]) {
			t.Fatalf("kept %d messages %v, want the newest 10 (1000 bytes)", len(got), got)
		}
		if page := must[HistoryPage](t)(n.History(ctx, "cap", HistoryQuery{Since: ids[5]})); page.Recovered {
			t.Errorf("resume from an evicted id: recovered = true")
		}
		if page := must[HistoryPage](t)(n.History(ctx, "cap", HistoryQuery{Since: ids[20]})); !page.Recovered || len(page.Messages) != 9 {
			t.Errorf("resume from the oldest kept id: recovered=%v with %d messages, want true with 9", page.Recovered, len(page.Messages))
		}
		// A message larger than the bound is kept alone: the newest always is.
		big := must[PublishResult](t)(n.Publish(ctx, Message{Topic: "cap", Data: []byte(strings.Repeat("y", 1500))}, true)).ID
		if got := idsOf(must[HistoryPage](t)(n.History(ctx, "cap", HistoryQuery{})).Messages); !slices.Equal(got, []string{big}) {
			t.Errorf("after a message over the bound: kept %v, want only it", got)
		}
		// The count starts again from what is kept: small messages fill
		// the bound once the big one is evicted.
		var small []string
		for i := range 10 {
			data := fmt.Appendf(nil, "%02d%s", i, strings.Repeat("z", 98))
			small = append(small, must[PublishResult](t)(n.Publish(ctx, Message{Topic: "cap", Data: data}, true)).ID)
		}
		if got := idsOf(must[HistoryPage](t)(n.History(ctx, "cap", HistoryQuery{})).Messages); !slices.Equal(got, small) {
			t.Errorf("after ten small messages: kept %v, want %v", got, small)
		}
	})

	t.Run("HistoryIDsOnly", func(t *testing.T) {
		n := startNode(t, be, testOpts)
		var ids []string
		for i := range 6 {
			data := []byte(strings.Repeat("d", 10*(i+1)))
			ids = append(ids, must[PublishResult](t)(n.Publish(ctx, Message{Topic: "probe", Data: data}, true)).ID)
		}
		for _, tc := range []struct {
			name string
			q    HistoryQuery
		}{
			{"newest", HistoryQuery{Limit: 4}},
			{"forward", HistoryQuery{Since: ids[0]}},
			{"forward within a budget", HistoryQuery{Since: ids[0], MaxBytes: 100}},
			{"backward within a budget", HistoryQuery{Before: ids[5], MaxBytes: 100}},
		} {
			full := must[HistoryPage](t)(n.History(ctx, "probe", tc.q))
			tc.q.IDsOnly = true
			probe := must[HistoryPage](t)(n.History(ctx, "probe", tc.q))
			if !slices.Equal(idsOf(probe.Messages), idsOf(full.Messages)) || probe.Complete != full.Complete || probe.Recovered != full.Recovered {
				t.Errorf("%s: probe %v complete=%v recovered=%v, read %v complete=%v recovered=%v", tc.name,
					idsOf(probe.Messages), probe.Complete, probe.Recovered, idsOf(full.Messages), full.Complete, full.Recovered)
			}
			for i, m := range probe.Messages {
				if m.Data != nil || m.Size != len(full.Messages[i].Data) || full.Messages[i].Size != len(full.Messages[i].Data) {
					t.Errorf("%s: %s probed with %d data bytes and size %d, read with size %d and %d bytes", tc.name,
						m.ID, len(m.Data), m.Size, full.Messages[i].Size, len(full.Messages[i].Data))
				}
			}
		}
	})
}

// TestRedisHistoryBytesBoundsStorage publishes 3 MiB into one room with a
// 1 MiB bound and asks Redis itself what the stream holds: its byte count,
// the data its entries carry, and the memory the key takes.
func TestRedisHistoryBytesBoundsStorage(t *testing.T) {
	ctx := context.Background()
	srv := testredis.Start(t)
	opts := testOpts
	opts.HistorySize = 100000
	opts.HistoryBytes = 1 << 20
	r, _ := newRedisNode(t, srv.URL(), nil, "hb:", opts)
	data := []byte(strings.Repeat("m", 16<<10))
	for range 3 << 20 / len(data) {
		if _, err := r.Publish(ctx, Message{Topic: "room:big", Data: data}, true); err != nil {
			t.Fatal(err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	counted, err := c.Get(ctx, r.streamBytesKey("room:big")).Int()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := c.XRange(ctx, r.streamKey("room:big"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, row := range rows {
		stored += len(row.Values["d"].(string))
	}
	if counted != stored || stored > opts.HistoryBytes || stored < opts.HistoryBytes-len(data) {
		t.Errorf("stream holds %d data bytes in %d entries, counted %d; want within %d of the %d bound", stored, len(rows), counted, len(data), opts.HistoryBytes)
	}
	usage, err := c.MemoryUsage(ctx, r.streamKey("room:big")).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Each entry costs some bytes beyond its data; unbounded, the stream
	// would take over 3 MiB.
	if usage > int64(opts.HistoryBytes)*3/2 {
		t.Errorf("MEMORY USAGE of the stream = %d bytes, want about the %d bound", usage, opts.HistoryBytes)
	}
	// A stream whose count was lost (or that predates it) is counted anew.
	if err := c.Del(ctx, r.streamBytesKey("room:big")).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Publish(ctx, Message{Topic: "room:big", Data: data}, true); err != nil {
		t.Fatal(err)
	}
	if recounted, err := c.Get(ctx, r.streamBytesKey("room:big")).Int(); err != nil || recounted != stored {
		t.Errorf("count after losing it = %d (%v), want %d", recounted, err, stored)
	}
}

// TestRedisFullAnswersUnavailable fills a Redis started with a small
// maxmemory and noeviction (as the compose file configures it, smaller):
// the publish that finds Redis full fails with ErrUnavailable, stores
// nothing and publishes nothing, and what was stored before stays.
func TestRedisFullAnswersUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := testredis.Start(t, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
	opts := testOpts
	opts.HistoryBytes = 64 << 20 // the bound is not what stops it here
	r, n := newRedisNode(t, srv.URL(), nil, "full:", opts)
	data := []byte(strings.Repeat("f", 32<<10))
	var published int
	var failure error
	for i := range 1000 {
		topic := fmt.Sprintf("room:%d", i%20)
		if _, err := r.Publish(ctx, Message{Topic: topic, Data: data}, true); err != nil {
			failure = err
			break
		}
		published++
	}
	if failure == nil {
		t.Fatalf("published %d × %d bytes into a 4 MB Redis without an error", published, len(data))
	}
	if !errors.Is(failure, ErrUnavailable) || !strings.Contains(failure.Error(), "OOM") {
		t.Fatalf("publish into a full Redis: %v, want ErrUnavailable wrapping Redis's OOM", failure)
	}
	// Nothing of the refused message was stored or delivered, and nothing
	// stored before was lost.
	topic := fmt.Sprintf("room:%d", published%20)
	if err := n.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	page, err := r.History(ctx, topic, HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if want := published / 20; len(page.Messages) != want {
		t.Errorf("%s keeps %d messages, want the %d stored before Redis filled up", topic, len(page.Messages), want)
	}
	if _, err := r.Publish(ctx, Message{Topic: topic, Data: data}, true); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a second publish into the full Redis: %v", err)
	}
	n.nothing(t)
}

// TestMemoryBytesEvictsOldestAcrossTopics bounds the Memory broker's total
// and checks, with an injected clock, that storing a message evicts the
// oldest messages of any topic first.
func TestMemoryBytesEvictsOldestAcrossTopics(t *testing.T) {
	ctx := context.Background()
	opts := testOpts
	opts.MemoryBytes = 400
	m := NewMemory(opts)
	defer m.Close()
	clock := time.UnixMilli(1_000_000)
	m.now = func() time.Time { return clock }
	publish := func(topic string) string {
		t.Helper()
		clock = clock.Add(time.Millisecond)
		res, err := m.Publish(ctx, Message{Topic: topic, Data: []byte(strings.Repeat("x", 100))}, true)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	kept := func(topic string) []string {
		t.Helper()
		return idsOf(must[HistoryPage](t)(m.History(ctx, topic, HistoryQuery{})).Messages)
	}
	a1, b1, a2, c1 := publish("a"), publish("b"), publish("a"), publish("c")
	if m.bytes != 400 {
		t.Fatalf("counted %d bytes for 4 × 100", m.bytes)
	}
	b2 := publish("b") // evicts a1, the oldest
	for _, tc := range []struct {
		topic string
		want  []string
	}{{"a", []string{a2}}, {"b", []string{b1, b2}}, {"c", []string{c1}}} {
		if got := kept(tc.topic); !slices.Equal(got, tc.want) {
			t.Errorf("after the 5th message %s keeps %v, want %v", tc.topic, got, tc.want)
		}
	}
	if page := must[HistoryPage](t)(m.History(ctx, "a", HistoryQuery{Since: a1})); page.Recovered {
		t.Errorf("resume from the evicted %s: recovered = true", a1)
	}
	c2, c3 := publish("c"), publish("c") // evict b1, then a2 (a empties)
	if got := kept("a"); len(got) != 0 {
		t.Errorf("a keeps %v, want nothing", got)
	}
	if got := kept("b"); !slices.Equal(got, []string{b2}) {
		t.Errorf("b keeps %v, want [%s]", got, b2)
	}
	if got := kept("c"); !slices.Equal(got, []string{c1, c2, c3}) {
		t.Errorf("c keeps %v", got)
	}
	// Expiry returns its bytes to the node's budget.
	clock = clock.Add(2 * opts.HistoryTTL)
	m.sweep()
	if m.bytes != 0 || m.oldest.Len() != 0 {
		t.Errorf("after every stream expired: %d bytes in %d topics still counted", m.bytes, m.oldest.Len())
	}
}
