package broker

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// presenceTracker remembers this node's presence entries, with the frame
// that announces each user, so a heartbeat can refresh them before they
// expire (and announce them again after a sweep). mu guards only the map:
// Redis calls happen outside it. A removal waits for a heartbeat in flight
// (inBeat is closed when it ends), so the beat cannot re-add an entry the
// removal has just taken out; joins and other Redis calls never wait.
type presenceTracker struct {
	mu     sync.Mutex
	local  map[presenceEntry][]byte // → JoinedRoom frame
	inBeat chan struct{}            // non-nil while a heartbeat runs
}

type presenceEntry struct{ topic, user, conn string }

func (p *presenceTracker) init() { p.local = make(map[presenceEntry][]byte) }

func (r *Redis) presenceKeys(topic, user string) []string {
	keys := []string{r.key(topic, ":users"), r.key(topic, ":conns:"+user), r.key(topic, ":swept"), r.key(topic, ":names")}
	return r.withActiveKey(keys)
}

// sweptMemory is how long a swept user is remembered, so that its node
// announces it again if it comes back from a partition.
func (r *Redis) sweptMemory() time.Duration { return 10 * r.opts.PresenceTTL }

// AddPresence records that conn (of user) is present on topic. When user
// was not present on any node, joined is published on the topic (to every
// subscriber but conn) and first is true.
func (r *Redis) AddPresence(ctx context.Context, topic, user, conn string, joined []byte) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	n, err := presenceAddScript.Run(ctx, r.client, r.presenceKeys(topic, user),
		user, conn, r.opts.PresenceTTL.Milliseconds(), r.channel(topic), joined, conn, r.publishCommand(), "join", r.opts.LargeRoom, topic).Int()
	if err != nil {
		return false, fail(ctx, err)
	}
	if err := r.markActive(ctx, r.client, topic); err != nil {
		return false, unavailable(err)
	}
	r.presence.mu.Lock()
	r.presence.local[presenceEntry{topic, user, conn}] = joined
	r.presence.mu.Unlock()
	return n == 1, nil
}

// RemovePresence forgets conn on topic. When user has no live connection
// left there, on any node, left is published on the topic and last is
// true.
func (r *Redis) RemovePresence(ctx context.Context, topic, user, conn string, left []byte) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	r.presence.mu.Lock()
	delete(r.presence.local, presenceEntry{topic, user, conn})
	beat := r.presence.inBeat
	r.presence.mu.Unlock()
	if beat != nil {
		select {
		case <-beat:
		case <-ctx.Done():
			return false, fail(ctx, ctx.Err())
		}
	}
	n, err := presenceRemoveScript.Run(ctx, r.client, r.presenceKeys(topic, user),
		user, conn, r.channel(topic), left, r.publishCommand(), r.sweptMemory().Milliseconds(), r.opts.LargeRoom, topic).Int()
	if err != nil {
		return false, fail(ctx, err)
	}
	return n == 1, nil
}

// SweepPresence removes the users whose every connection on topic expired
// (their node crashed, or stopped refreshing), publishing left's frame for
// each, and returns them. Each expired user is removed, and announced,
// once, by whichever node sweeps first.
func (r *Redis) SweepPresence(ctx context.Context, topic string, left UserTemplate) ([]string, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	users, err := presenceSweepScript.Run(ctx, r.client, r.withActiveKey([]string{r.key(topic, ":users"), r.key(topic, ":swept"), r.key(topic, ":names")}),
		r.channel(topic), left.Head, left.Tail, r.publishCommand(), r.sweptMemory().Milliseconds(), left.Middle, r.opts.LargeRoom, topic).StringSlice()
	return users, fail(ctx, err)
}

// Members lists a page of the users with a live connection on topic, in
// name order.
func (r *Redis) Members(ctx context.Context, topic string, q MembersQuery) (MembersPage, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	res, err := membersScript.Run(ctx, r.client, []string{r.key(topic, ":users"), r.key(topic, ":names")}, q.After, max(q.Limit, 0)).Slice()
	if err != nil {
		return MembersPage{}, fail(ctx, err)
	}
	count, _ := res[0].(int64)
	rows, _ := res[1].([]any)
	page := MembersPage{Count: int(count), Users: make([]string, 0, len(rows))}
	for _, row := range rows {
		user, _ := row.(string)
		page.Users = append(page.Users, user)
	}
	return page, nil
}

// heartbeatLoop refreshes this node's presence entries every third of
// their TTL. Entries are upserted, so presence lost with a Redis restart
// comes back at the next beat.
func (p *presenceTracker) heartbeatLoop(r *Redis) func() {
	return func() {
		t := time.NewTicker(r.opts.PresenceTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-r.ctx.Done():
				return
			case <-t.C:
				if err := p.beat(r); err != nil {
					r.log.Warn("presence heartbeat failed; entries expire unless the next one succeeds", "err", err)
				}
			}
		}
	}
}

// heartbeatBatch is how many entries one pipeline refreshes.
const heartbeatBatch = 1000

func (p *presenceTracker) beat(r *Redis) error {
	p.mu.Lock()
	entries := make([]presenceEntry, 0, len(p.local))
	joined := make([][]byte, 0, len(p.local))
	for e, frame := range p.local {
		entries = append(entries, e)
		joined = append(joined, frame)
	}
	done := make(chan struct{})
	p.inBeat = done
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inBeat = nil
		p.mu.Unlock()
		close(done)
	}()

	var firstErr error
	for start := 0; start < len(entries); start += heartbeatBatch {
		end := min(start+heartbeatBatch, len(entries))
		if err := p.refresh(r, entries[start:end], joined[start:end]); err != nil && firstErr == nil {
			firstErr = err // go on: other batches may live on healthy shards
		}
	}

	return firstErr
}

// refresh upserts one batch of entries in a pipeline; a user Redis no
// longer had (swept during a partition, or lost in a restart) is announced
// again. A Redis that lost its scripts gets them loaded again and the
// batch retried.
func (p *presenceTracker) refresh(r *Redis, batch []presenceEntry, joined [][]byte) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.OpTimeout)
	defer cancel()
	ttl := r.opts.PresenceTTL.Milliseconds()
	run := func() error {
		_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, e := range batch {
				presenceAddScript.EvalSha(ctx, pipe, r.presenceKeys(e.topic, e.user),
					e.user, e.conn, ttl, r.channel(e.topic), joined[i], e.conn, r.publishCommand(), "refresh", r.opts.LargeRoom, e.topic)
				_ = r.markActive(ctx, pipe, e.topic)
			}
			return nil
		})
		return err
	}
	err := run()
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		if err = presenceAddScript.Load(ctx, r.client).Err(); err == nil {
			err = run()
		}
	}
	return err
}
