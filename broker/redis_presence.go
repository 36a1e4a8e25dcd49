package broker

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/spread"
)

// presenceTracker remembers this node's presence entries, with the frame
// that announces each user, so a heartbeat can refresh them before they
// expire (and announce them again after a sweep). mu guards only the map:
// Redis calls happen outside it. A removal waits for a heartbeat in flight
// (inBeat is closed when it ends), so the beat cannot re-add an entry the
// removal has just taken out; joins and other Redis calls never wait.
// Joins, leaves and sweeps go to Redis through the writers (group commit,
// redis_presence_writer.go).
type presenceTracker struct {
	mu      sync.Mutex
	local   map[presenceEntry][]byte // → JoinedRoom frame
	inBeat  chan struct{}            // non-nil while a heartbeat runs
	writers presenceWriters

	// expiry is, per topic this node refreshes, the earliest deadline of
	// any user of the topic (any node's) as of this node's last refresh
	// of it, in ms on Redis's clock. Deadlines only move later and users
	// join with later ones, so until then no user of the topic can
	// expire, and a sweep of it is skipped without asking Redis (most
	// sweeps find nothing; a node's refresh already reads the answer).
	expiry map[string]int64
}

// sweepClockMargin is how far this node's clock may be behind Redis's
// before a sweep skipped on the strength of expiry comes late.
const sweepClockMargin = time.Second

type presenceEntry struct{ topic, user, conn string }

func (p *presenceTracker) init() {
	p.local = make(map[presenceEntry][]byte)
	p.expiry = make(map[string]int64)
}

// noneExpire reports whether no user of topic can have expired yet, as of
// this node's last refresh of it.
func (p *presenceTracker) noneExpire(topic string, now time.Time) bool {
	p.mu.Lock()
	deadline, ok := p.expiry[topic]
	p.mu.Unlock()
	return ok && now.Add(sweepClockMargin).UnixMilli() < deadline
}

func (r *Redis) presenceKeys(topic, user string) []string {
	keys := []string{r.key(topic, ":users"), r.key(topic, ":conns:"+user), r.key(topic, ":swept"), r.key(topic, ":names")}
	return r.withActiveKey(keys)
}

// sweptMemory is how long a swept user is remembered, so that its node
// announces it again if it comes back from a partition.
func (r *Redis) sweptMemory() time.Duration { return 10 * r.opts.PresenceTTL }

// sweepLock is how long a sweep of a topic keeps every other sweep of it
// (by any node) from running: a little less than the interval at which
// nodes sweep (PresenceTTL/3), so that about one node does the work per
// interval, and the node that did it can do it again the next time.
func (r *Redis) sweepLock() time.Duration { return max(r.opts.PresenceTTL*3/10, time.Millisecond) }

// activeMark names topic for the writer to add to the index of active
// topics, in a cluster, where the presence scripts cannot (rooms.go).
func (r *Redis) activeMark(topic string) string {
	if r.cluster == nil {
		return ""
	}
	return topic
}

// AddPresence records that conn (of user) is present on topic. When user
// was not present on any node, joined is published on the topic (to every
// subscriber but conn) and first is true. Joins arriving together are sent
// to Redis together (see presenceWriter).
func (r *Redis) AddPresence(ctx context.Context, topic, user, conn string, joined []byte) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	cmd, err := r.presenceCall(ctx, topic, &presenceOp{
		script: presenceAddScript, keys: r.presenceKeys(topic, user), active: r.activeMark(topic),
		args: []any{user, conn, r.opts.PresenceTTL.Milliseconds(), r.channel(topic), joined, conn, r.publishCommand(), "join", r.opts.LargeRoom, topic},
	})
	if err != nil {
		return false, err
	}
	n, err := cmd.Int()
	if err != nil {
		return false, unavailable(err)
	}
	r.presence.mu.Lock()
	r.presence.local[presenceEntry{topic, user, conn}] = joined
	r.presence.mu.Unlock()
	return n == 1, nil
}

// RemovePresence forgets conn on topic. When user has no live connection
// left there, on any node, left is published on the topic and last is
// true. Leaves arriving together are sent to Redis together.
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
	cmd, err := r.presenceCall(ctx, topic, &presenceOp{
		script: presenceRemoveScript, keys: r.presenceKeys(topic, user),
		args: []any{user, conn, r.channel(topic), left, r.publishCommand(), r.sweptMemory().Milliseconds(), r.opts.LargeRoom, topic},
	})
	if err != nil {
		return false, err
	}
	n, err := cmd.Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// SweepPresence removes the users whose every connection on topic expired
// (their node crashed, or stopped refreshing), publishing left's frame for
// each, and returns them. Each expired user is removed, and announced,
// once, by whichever node sweeps first. A sweep takes a short lock on the
// topic in Redis (sweepLock): while another sweep of the topic, by any
// node, holds it, a sweep does nothing and returns no users, leaving them
// to the next one. Sweeps of many topics at once share round trips. A
// sweep of a topic whose users cannot have expired yet, as this node's
// last refresh of it found, costs no round trip at all.
func (r *Redis) SweepPresence(ctx context.Context, topic string, left UserTemplate) ([]string, error) {
	if r.presence.noneExpire(topic, time.Now()) {
		return nil, nil
	}
	ctx, cancel := r.op(ctx)
	defer cancel()
	keys := r.withActiveKey([]string{r.key(topic, ":users"), r.key(topic, ":swept"), r.key(topic, ":names"), r.key(topic, ":sweeping")})
	cmd, err := r.presenceCall(ctx, topic, &presenceOp{
		script: presenceSweepScript, keys: keys,
		args: []any{r.channel(topic), left.Head, left.Tail, r.publishCommand(), r.sweptMemory().Milliseconds(), left.Middle, r.opts.LargeRoom, topic, r.sweepLock().Milliseconds()},
	})
	if err != nil {
		return nil, err
	}
	users, err := cmd.StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	return users, nil
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
// their TTL, a slice of the topics at a time (spread.Slices per third),
// so that the refresh of thousands of rooms is a steady trickle rather
// than a burst that stalls Redis. Entries are upserted, so presence lost
// with a Redis restart comes back within a third of the TTL.
func (p *presenceTracker) heartbeatLoop(r *Redis) func() {
	return func() {
		t := time.NewTicker(max(r.opts.PresenceTTL/3/spread.Slices, time.Millisecond))
		defer t.Stop()
		for slice := 0; ; slice = (slice + 1) % spread.Slices {
			select {
			case <-r.ctx.Done():
				return
			case <-t.C:
				if err := p.beatSlice(r, slice); err != nil {
					r.log.Warn("presence heartbeat failed; entries expire unless the next one succeeds", "err", err)
				}
			}
		}
	}
}

// heartbeatBatch is how many entries one pipeline refreshes and
// heartbeatCalls how many script calls it carries at most, so that Redis,
// which runs a client's pipelined commands back to back, serves other
// clients' publishes between two short pipelines instead of stalling
// them behind one long one; refreshChunk is how many entries one script
// call refreshes (bounding how long one call holds Redis in a big room).
const (
	heartbeatBatch = 1000
	heartbeatCalls = 16
	refreshChunk   = 500
)

// roomBeat is what one refresh script call renews: some of this node's
// users of one topic, each with its connections and JoinedRoom frame.
type roomBeat struct {
	topic   string
	users   []string
	conns   [][]string
	joined  [][]byte
	entries int
}

// beat refreshes every entry of this node (see beatSlice).
func (p *presenceTracker) beat(r *Redis) error { return p.beatSlice(r, -1) }

// beatSlice refreshes this node's entries of the topics in one slice
// (spread.SliceOf), or of every topic when slice is -1: one script call
// per topic (per refreshChunk entries of it), pipelined across topics
// heartbeatBatch entries or heartbeatCalls calls at a time.
func (p *presenceTracker) beatSlice(r *Redis, slice int) error {
	p.mu.Lock()
	type userKey struct{ topic, user string }
	type slot struct {
		beat *roomBeat
		i    int
	}
	byUser := make(map[userKey]slot) // where each user's connections go
	byTopic := make(map[string][]*roomBeat)
	for e, frame := range p.local {
		if slice >= 0 && spread.SliceOf(e.topic) != slice {
			continue
		}
		s, ok := byUser[userKey{e.topic, e.user}]
		if !ok {
			beats := byTopic[e.topic]
			if len(beats) == 0 || beats[len(beats)-1].entries >= refreshChunk {
				beats = append(beats, &roomBeat{topic: e.topic})
				byTopic[e.topic] = beats
			}
			b := beats[len(beats)-1]
			b.users = append(b.users, e.user)
			b.conns = append(b.conns, nil)
			b.joined = append(b.joined, frame)
			s = slot{b, len(b.users) - 1}
			byUser[userKey{e.topic, e.user}] = s
		}
		s.beat.conns[s.i] = append(s.beat.conns[s.i], e.conn)
		s.beat.entries++
	}
	for topic := range p.expiry { // topics this node no longer refreshes
		if _, ok := byTopic[topic]; !ok && (slice < 0 || spread.SliceOf(topic) == slice) {
			delete(p.expiry, topic)
		}
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
	var lot []*roomBeat
	entries := 0
	flush := func() {
		if len(lot) == 0 {
			return
		}
		if err := p.refresh(r, lot); err != nil && firstErr == nil {
			firstErr = err // go on: other lots may live on healthy shards
		}
		lot, entries = nil, 0
	}
	for _, beats := range byTopic {
		for _, b := range beats {
			lot = append(lot, b)
			entries += b.entries
			if entries >= heartbeatBatch || len(lot) >= heartbeatCalls {
				flush()
			}
		}
	}
	flush()
	return firstErr
}

// refresh upserts a lot of rooms' entries in one pipeline; a user Redis no
// longer had that a sweep had announced gone (a partition outlasted the
// TTL) is announced again. A Redis that lost its scripts gets them loaded
// again and the lot retried (refreshing is idempotent).
func (p *presenceTracker) refresh(r *Redis, lot []*roomBeat) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.OpTimeout)
	defer cancel()
	ttl := r.opts.PresenceTTL.Milliseconds()
	cmds := make([]*redis.Cmd, len(lot))
	run := func() error {
		_, err := r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, b := range lot {
				keys := make([]string, 0, 4+len(b.users))
				keys = append(keys, r.key(b.topic, ":users"), r.key(b.topic, ":swept"), r.key(b.topic, ":names"))
				args := make([]any, 0, 6+2*len(b.users)+b.entries)
				args = append(args, ttl, r.channel(b.topic), r.publishCommand(), r.opts.LargeRoom, b.topic, len(b.users))
				for i, user := range b.users {
					keys = append(keys, r.key(b.topic, ":conns:"+user))
					args = append(args, user, len(b.conns[i]))
					for _, conn := range b.conns[i] {
						args = append(args, conn)
					}
					args = append(args, b.joined[i])
				}
				cmds[i] = presenceRefreshScript.EvalSha(ctx, pipe, r.withActiveKey(keys), args...)
				_ = r.markActive(ctx, pipe, b.topic)
			}
			return nil
		})
		return err
	}
	err := run()
	if isNoScript(err) {
		if err = presenceRefreshScript.Load(ctx, r.client).Err(); err == nil {
			err = run()
		}
	}
	p.noteExpiry(lot, cmds)
	return err
}

// noteExpiry records, from a refresh's replies, each topic's earliest
// deadline (see expiry); a topic whose reply failed is forgotten, so that
// its sweeps ask Redis.
func (p *presenceTracker) noteExpiry(lot []*roomBeat, cmds []*redis.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range lot {
		reply, err := cmds[i].Slice()
		var deadline int64
		if err == nil && len(reply) == 2 {
			deadline, _ = reply[1].(int64)
		}
		if deadline > 0 {
			p.expiry[b.topic] = deadline
		} else {
			delete(p.expiry, b.topic)
		}
	}
}
