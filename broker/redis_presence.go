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
// can refresh them before they expire. mu serialises removals against the
// heartbeat, so a refresh never resurrects an entry just removed.
type presenceTracker struct {
	mu    sync.Mutex
	local map[presenceEntry]struct{}
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
	r.presence.mu.Lock()
	defer r.presence.mu.Unlock()
	n, err := presenceAddScript.Run(ctx, r.client, r.presenceKeys(topic, user), user, conn, r.opts.PresenceTTL.Milliseconds()).Int()
	if err != nil {
		return false, unavailable(err)
	}
	r.presence.local[presenceEntry{topic, user, conn}] = struct{}{}
	return n == 1, nil
}

// RemovePresence forgets conn on topic. last is true when user has no live
// connection left there.
func (r *Redis) RemovePresence(ctx context.Context, topic, user, conn string) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	r.presence.mu.Lock()
	defer r.presence.mu.Unlock()
	delete(r.presence.local, presenceEntry{topic, user, conn})
	n, err := presenceRemoveScript.Run(ctx, r.client, r.presenceKeys(topic, user), user, conn).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
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
	defer p.mu.Unlock()
	if len(p.local) == 0 {
		return nil
	}
	entries := make([]presenceEntry, 0, len(p.local))
	for e := range p.local {
		entries = append(entries, e)
	}
	ttl := r.opts.PresenceTTL.Milliseconds()
	for start := 0; start < len(entries); start += heartbeatBatch {
		batch := entries[start:min(start+heartbeatBatch, len(entries))]
		ctx, cancel := context.WithTimeout(r.ctx, r.opts.OpTimeout)
		cmds, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, e := range batch {
				presenceAddScript.EvalSha(ctx, pipe, r.presenceKeys(e.topic, e.user), e.user, e.conn, ttl)
			}
			return nil
		})
		if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
			// A restarted Redis forgot the script: run each once, loading it.
			err = nil
			for i, cmd := range cmds {
				if cmd.Err() != nil {
					e := batch[i]
					if err = presenceAddScript.Run(ctx, r.client, r.presenceKeys(e.topic, e.user), e.user, e.conn, ttl).Err(); err != nil {
						break
					}
				}
			}
		}
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
