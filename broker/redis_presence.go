package broker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// presenceTracker remembers this node's presence entries so a heartbeat
// can refresh them before they expire. mu guards only the map: Redis calls
// happen outside it. A removal that lands while a heartbeat is in flight is
// recorded and replayed after the beat, so the beat cannot resurrect it.
type presenceTracker struct {
	mu      sync.Mutex
	local   map[presenceEntry]struct{}
	beating bool
	removed []presenceEntry // removals during the current beat
}

type presenceEntry struct{ topic, user, conn string }

func (p *presenceTracker) init() { p.local = make(map[presenceEntry]struct{}) }

func (r *Redis) presenceKeys(topic, user string) []string {
	return []string{r.key(topic, ":users"), r.key(topic, ":conns:"+user)}
}

// AddPresence records that conn (of user) is present on topic. first is
// true when user had no other live connection there, on any node.
func (r *Redis) AddPresence(ctx context.Context, topic, user, conn string) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	n, err := presenceAddScript.Run(ctx, r.client, r.presenceKeys(topic, user), user, conn, r.opts.PresenceTTL.Milliseconds()).Int()
	if err != nil {
		return false, unavailable(err)
	}
	r.presence.mu.Lock()
	r.presence.local[presenceEntry{topic, user, conn}] = struct{}{}
	r.presence.mu.Unlock()
	return n == 1, nil
}

// RemovePresence forgets conn on topic. last is true when user has no live
// connection left there.
func (r *Redis) RemovePresence(ctx context.Context, topic, user, conn string) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	e := presenceEntry{topic, user, conn}
	r.presence.mu.Lock()
	delete(r.presence.local, e)
	if r.presence.beating {
		r.presence.removed = append(r.presence.removed, e)
	}
	r.presence.mu.Unlock()
	n, err := presenceRemoveScript.Run(ctx, r.client, r.presenceKeys(topic, user), user, conn).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// SweepPresence removes the users whose every connection on topic expired
// (their node crashed, or stopped refreshing) and returns them, so the
// caller can tell the room. Each expired user is returned to one caller
// only, whichever node sweeps first.
func (r *Redis) SweepPresence(ctx context.Context, topic string) ([]string, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	users, err := presenceSweepScript.Run(ctx, r.client, []string{r.key(topic, ":users")}).StringSlice()
	return users, unavailable(err)
}

// Members lists the users with a live connection on topic, sorted.
func (r *Redis) Members(ctx context.Context, topic string) ([]string, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	users, err := membersScript.Run(ctx, r.client, []string{r.key(topic, ":users")}).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	slices.Sort(users)
	return users, nil
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
	for e := range p.local {
		entries = append(entries, e)
	}
	p.beating = true
	p.mu.Unlock()

	var firstErr error
	for start := 0; start < len(entries); start += heartbeatBatch {
		batch := entries[start:min(start+heartbeatBatch, len(entries))]
		if err := p.refresh(r, batch); err != nil && firstErr == nil {
			firstErr = err // go on: other batches may live on healthy shards
		}
	}

	p.mu.Lock()
	p.beating = false
	removed := p.removed
	p.removed = nil
	p.mu.Unlock()
	for _, e := range removed {
		ctx, cancel := context.WithTimeout(r.ctx, r.opts.OpTimeout)
		_ = presenceRemoveScript.Run(ctx, r.client, r.presenceKeys(e.topic, e.user), e.user, e.conn).Err()
		cancel()
	}
	return firstErr
}

// refresh upserts one batch of entries in a pipeline. A Redis that lost
// its scripts (restarted) gets them loaded again and the batch retried.
func (p *presenceTracker) refresh(r *Redis, batch []presenceEntry) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.OpTimeout)
	defer cancel()
	ttl := r.opts.PresenceTTL.Milliseconds()
	run := func() error {
		_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, e := range batch {
				presenceAddScript.EvalSha(ctx, pipe, r.presenceKeys(e.topic, e.user), e.user, e.conn, ttl)
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
