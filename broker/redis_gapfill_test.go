package broker

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/internal/wait"
)

// TestGapFillAfterPubSubDrop kills only the node's pub/sub connection
// (Redis stays up), publishes while it reconnects, and expects the stored
// messages to be delivered once, in order.
func TestGapFillAfterPubSubDrop(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, na := newRedisNode(t, srv.URL(), nil, "g:", testOpts)
	b, _ := newRedisNode(t, srv.URL(), nil, "g:", testOpts)
	if err := a.Subscribe(ctx, "room:#g"); err != nil {
		t.Fatal(err)
	}
	first, err := b.Publish(ctx, Message{Topic: "room:#g", Data: []byte("0")}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); got.ID != first.ID {
		t.Fatalf("delivered %+v", got)
	}
	if err := b.client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 1; i <= 20; i++ {
		res, err := b.Publish(ctx, Message{Topic: "room:#g", Data: []byte{byte('0' + i%10)}}, true)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res.ID)
	}
	for i, id := range want {
		if got := na.next(t); got.ID != id {
			t.Fatalf("delivery %d: id %s, want %s", i, got.ID, id)
		}
	}
	na.nothing(t)
}

// TestLargeGapAsksToResync: when more was stored while the node's pub/sub
// connection was down than it replays by itself, it delivers a Gap
// instead (its clients then resume from history), and live traffic goes
// on afterwards.
func TestLargeGapAsksToResync(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, na := newRedisNode(t, srv.URL(), nil, "lg:", testOpts)
	b, _ := newRedisNode(t, srv.URL(), nil, "lg:", testOpts)
	const topic = "room:#big"
	if err := a.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, Message{Topic: topic, Data: []byte("seen")}, true); err != nil {
		t.Fatal(err)
	}
	na.next(t)
	// Stored, never published: what a node misses while disconnected.
	big := strings.Repeat("x", 1024)
	for range (gapFillBytes / 1024) + 10 {
		if err := b.client.XAdd(ctx, &redis.XAddArgs{Stream: b.streamKey(topic), Values: []string{"d", big}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); !got.Gap || got.Topic != topic || got.Data != nil {
		t.Fatalf("after a large gap delivered %+v, want a Gap", got)
	}
	if _, err := b.Publish(ctx, Message{Topic: topic, Data: []byte("live")}, true); err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); string(got.Data) != "live" {
		t.Fatalf("then delivered %q", got.Data)
	}
}

// TestTrimmedGapAsksToResync: if messages missed while disconnected were
// already trimmed from the stream, replaying what is left would hide the
// loss: the node delivers a Gap instead.
func TestTrimmedGapAsksToResync(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	opts := testOpts
	opts.HistorySize = 50
	a, na := newRedisNode(t, srv.URL(), nil, "tg:", opts)
	b, _ := newRedisNode(t, srv.URL(), nil, "tg:", opts)
	const topic = "room:#trim"
	if err := a.Subscribe(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, Message{Topic: topic, Data: []byte("seen")}, true); err != nil {
		t.Fatal(err)
	}
	na.next(t)
	for range 300 { // stored while a was not listening, and trimmed
		if err := b.client.XAdd(ctx, &redis.XAddArgs{Stream: b.streamKey(topic), MaxLen: 50, Approx: true, Values: []string{"d", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	if got := na.next(t); !got.Gap {
		t.Fatalf("after a trimmed gap delivered %+v, want a Gap", got)
	}
}

// heldFillNode starts a Redis node whose gap fills of topic wait, once
// started (reported on started), until release is closed.
func heldFillNode(t *testing.T, url, prefix, topic string) (a *Redis, na *node, started <-chan struct{}, release chan struct{}) {
	t.Helper()
	a, err := NewRedis(RedisOptions{Options: testOpts, URL: url, Prefix: prefix, OpTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	began, release := make(chan struct{}, 1), make(chan struct{})
	read := a.subs.deps.history
	a.subs.deps.history = func(ctx context.Context, tp string, q HistoryQuery) (HistoryPage, error) {
		if tp == topic {
			select {
			case began <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-ctx.Done():
				return HistoryPage{}, ctx.Err()
			}
		}
		return read(ctx, tp, q)
	}
	na = &node{Broker: a, got: make(chan Message, 2*gapHoldMessages)}
	na.Start(func(m Message) { na.got <- m })
	t.Cleanup(func() { _ = a.Close() })
	return a, na, began, release
}

// dropPubSub subscribes na to topics, has each carry one stored message,
// then kills the pub/sub connections so that na restores them and fills
// their gaps. It returns how to publish through pub.
func dropPubSub(t *testing.T, a *Redis, na *node, pub *Redis, topics ...string) func(topic, data string) string {
	t.Helper()
	ctx := context.Background()
	publish := func(topic, data string) string {
		t.Helper()
		res, err := pub.Publish(ctx, Message{Topic: topic, Data: []byte(data)}, true)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	for _, topic := range topics {
		if err := a.Subscribe(ctx, topic); err != nil {
			t.Fatal(err)
		}
		publish(topic, "seen")
		na.next(t)
	}
	if err := pub.client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	return publish
}

func awaitFill(t *testing.T, started <-chan struct{}) {
	t.Helper()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the gap fill did not start")
	}
}

// TestSlowGapFillDoesNotDelayOtherTopics: while one topic's missed
// messages are read from history (a read the test holds), another topic's
// live messages are delivered, and the held topic's live message follows
// its missed one, in order, once the read ends.
func TestSlowGapFillDoesNotDelayOtherTopics(t *testing.T) {
	srv := testredis.Start(t)
	const slow, fast = "room:#slow", "room:#fast"
	a, na, started, release := heldFillNode(t, srv.URL(), "sf:", slow)
	b, _ := newRedisNode(t, srv.URL(), nil, "sf:", testOpts)
	publish := dropPubSub(t, a, na, b, slow, fast)
	missed := publish(slow, "missed")
	awaitFill(t, started)
	slowLive := publish(slow, "slow live")
	fastLive := publish(fast, "fast live")
	if got := na.next(t); got.ID != fastLive {
		t.Fatalf("while the slow topic's gap is read, delivered %q on %s, want the fast topic's live message", got.Data, got.Topic)
	}
	close(release)
	for _, want := range []string{missed, slowLive} {
		if got := na.next(t); got.Topic != slow || got.ID != want {
			t.Fatalf("after the read delivered %q (%s), want id %s", got.Data, got.ID, want)
		}
	}
	na.nothing(t)
}

// TestGapFillHoldOverflowAsksToResync: more live traffic during a gap fill
// than a node holds ends the fill with a Gap; live traffic goes on after.
func TestGapFillHoldOverflowAsksToResync(t *testing.T) {
	srv := testredis.Start(t)
	const topic, marker = "room:#busy", "room:#marker"
	a, na, started, release := heldFillNode(t, srv.URL(), "ho:", topic)
	b, _ := newRedisNode(t, srv.URL(), nil, "ho:", testOpts)
	publish := dropPubSub(t, a, na, b, topic, marker)
	awaitFill(t, started)
	for i := range gapHoldMessages + 1 { // not stored: only the hold can overflow
		if _, err := b.Publish(context.Background(), Message{Topic: topic, Data: []byte(strconv.Itoa(i))}, false); err != nil {
			t.Fatal(err)
		}
	}
	// One connection carries both topics, in publish order: once the
	// marker is delivered, the node has taken every message before it.
	after := publish(marker, "after")
	if got := na.next(t); got.ID != after {
		t.Fatalf("delivered %q on %s, want the marker", got.Data, got.Topic)
	}
	close(release)
	if got := na.next(t); !got.Gap || got.Topic != topic {
		t.Fatalf("after the hold overflowed delivered %+v, want a Gap", got)
	}
	live := publish(topic, "live")
	if got := na.next(t); got.ID != live {
		t.Fatalf("then delivered %q, want the live message", got.Data)
	}
}

// TestUnroutedCountsWaitingChannels checks the router's count of channels
// without a shard, which lets an idle node skip scanning its
// subscriptions: zero once every channel is served, up while a dropped
// connection's channels wait, zero again once they are restored, and
// unchanged by unsubscribing a served channel.
func TestUnroutedCountsWaitingChannels(t *testing.T) {
	srv := testredis.Start(t)
	ctx := context.Background()
	a, _ := newRedisNode(t, srv.URL(), nil, "u:", testOpts)
	unrouted := func() int {
		a.subs.mu.Lock()
		defer a.subs.mu.Unlock()
		n := 0
		for _, w := range a.subs.want {
			if w.shard == nil {
				n++
			}
		}
		if n != a.subs.unrouted {
			t.Fatalf("unrouted = %d, but %d channels have no shard", a.subs.unrouted, n)
		}
		return n
	}
	for i := range 5 {
		if err := a.Subscribe(ctx, "room:#u"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := unrouted(); n != 0 {
		t.Fatalf("after subscribing: %d unrouted", n)
	}
	a.Unsubscribe(ctx, "room:#u4")
	if n := unrouted(); n != 0 {
		t.Fatalf("after unsubscribing: %d unrouted", n)
	}
	// Give the shard's channels back as a failed connection does.
	a.subs.mu.Lock()
	var sh *shard
	for _, w := range a.subs.want {
		sh = w.shard
	}
	a.subs.mu.Unlock()
	resume := map[string]string{}
	for i := range 4 {
		resume[a.subs.deps.channel("room:#u"+strconv.Itoa(i))] = ""
	}
	a.subs.giveBack(sh, resume)
	if n := unrouted(); n != 4 {
		t.Fatalf("after giveBack: %d unrouted, want 4", n)
	}
	a.Unsubscribe(ctx, "room:#u3") // a waiting channel no longer wanted
	if n := unrouted(); n != 3 {
		t.Fatalf("after unsubscribing a waiting channel: %d unrouted, want 3", n)
	}
	wait.For(t, 10*time.Second, "channels routed again", func() bool { return unrouted() == 0 })
}
