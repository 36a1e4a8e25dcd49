package conndir

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for the zero values of RedisOptions.
const (
	DefaultRecordTTL = 24 * time.Hour
	DefaultBatchSize = 500
)

// RedisOptions configure a Redis directory.
type RedisOptions struct {
	Options
	// Prefix starts every key. Default "switchboard:".
	Prefix string
	// RecordTTL bounds how long a record's data (and a user's index) stays
	// in Redis once nothing renews it: a safety net for records no node
	// ever claims (every node gone). A node renews the data of all its
	// records every RecordTTL/4. It must exceed TTL by far. Default 24 h.
	RecordTTL time.Duration
	// BatchSize is how many records one round trip carries when a
	// heartbeat visits many: writing last activities, renewing data TTLs,
	// checking every record after a takeover or a loss of Redis's data.
	// Default 500.
	BatchSize int
}

// Redis is a Directory in Redis, a single server or a Redis Cluster.
//
// Liveness is kept per node, not per connection: a heartbeat costs Redis a
// few commands whatever the number of the node's connections. Keys:
//
//   - "<prefix>conn:<id>", a hash per record, and "<prefix>conn-user:<user>",
//     a set of ids per user, on any shard. Their TTL is RecordTTL, renewed
//     by their node every RecordTTL/4.
//   - "<prefix>{conndir}:node:<node>", the set of a node's ids that no
//     other node has claimed.
//   - "<prefix>{conndir}:expiry", a sorted set of node names by deadline.
//   - "<prefix>{conndir}:registered", a hash counting each node's
//     registrations, by which a node tells that Redis lost some of them.
//   - "<prefix>{conndir}:pending", a sorted set of claimed ids by lease
//     deadline, and "<prefix>{conndir}:settled", of acknowledged ids by
//     time, kept for RecordTTL.
//
// Register writes a record's hash and user index and adds its id to its
// node's set; Update writes the hash when rooms change or the socket
// closes; Unregister removes the three. A record is live while its id is
// in its node's set and the node's deadline is ahead.
//
// A heartbeat runs one script that moves the node's deadline to now + TTL
// and renews the lease of each claim the node holds (few), then writes the
// last activities that changed; every RecordTTL/4 it also renews every
// record's data TTL. The node remembers the deadline it wrote. Should the
// next beat find another one (a sweep claimed some of its records; Redis
// lost its data), or Redis count fewer registrations than the node had
// confirmed (Redis lost recent writes), the node checks each of its ids,
// which is the only case a heartbeat works per connection: one that is
// pending or settled was taken over, and is reported lost; one missing
// everywhere was lost with Redis's data, and is written back.
//
// A sweep runs one script that picks nodes past their deadline and moves
// up to SweepLimit ids from their sets to the pending set, then re-leases
// pending ids whose lease ran out. A dead node with more ids is drained
// over later sweeps, keeping its place in the expiry set (deadline 0)
// until its set is empty.
//
// The {conndir} keys share a hash tag, so that each script runs
// atomically on one shard: on a Redis Cluster that shard carries every
// heartbeat and sweep (a few commands per node), a script call per
// registration and one short set member per connection. Should it run
// short, shard the keys by node group.
type Redis struct {
	client     redis.UniversalClient
	opts       RedisOptions
	expiry     string
	pending    string
	settled    string
	registered string
	nodeSets   string // key prefix of the node sets
	nodeSet    string // this node's set
	local      *local

	// confirmed counts this node's registrations that Redis acknowledged.
	confirmed atomic.Int64
	// joined is set once this node has a deadline of its own.
	joined atomic.Bool

	// beatMu runs one heartbeat at a time and guards the fields below.
	beatMu sync.Mutex
	// deadline is the node deadline this node wrote last: while Redis
	// holds that one, no sweep has claimed any of its records. 0: unknown;
	// the next heartbeat checks every record.
	deadline int64
	// lastFull is when the data TTL of every record was last renewed.
	lastFull time.Time
}

var _ Directory = (*Redis)(nil)

// NewRedis returns one node's Directory on client, which the caller owns
// and closes.
func NewRedis(client redis.UniversalClient, opts RedisOptions) (*Redis, error) {
	o, err := opts.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	opts.Options = o
	if opts.Prefix == "" {
		opts.Prefix = "switchboard:"
	}
	if opts.RecordTTL <= 0 {
		opts.RecordTTL = DefaultRecordTTL
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	tagged := opts.Prefix + "{conndir}:"
	return &Redis{
		client:     client,
		opts:       opts,
		expiry:     tagged + "expiry",
		settled:    tagged + "settled",
		pending:    tagged + "pending",
		registered: tagged + "registered",
		nodeSets:   tagged + "node:",
		nodeSet:    tagged + "node:" + opts.Node,
		local:      newLocal(),
		// Records get their data TTL when registered.
		lastFull: time.Now(),
	}, nil
}

func (d *Redis) recordKey(id string) string { return d.opts.Prefix + "conn:" + id }
func (d *Redis) userKey(user string) string { return d.opts.Prefix + "conn-user:" + user }

// Node implements Directory.
func (d *Redis) Node() string { return d.opts.Node }

// Register implements Directory.
func (d *Redis) Register(ctx context.Context, r Record) error {
	if err := d.join(ctx); err != nil {
		return err
	}
	r = normalize(r, d.opts.Node)
	rooms, err := json.Marshal(r.Rooms)
	if err != nil {
		return err
	}
	ttl := d.opts.RecordTTL
	_, err = d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		key := d.recordKey(r.ID)
		p.Del(ctx, key)
		p.HSet(ctx, key, "u", r.User, "n", r.Node, "c", r.ConnectedAt.UnixMilli(),
			"r", rooms, "a", r.LastActivity.UnixMilli())
		p.PExpire(ctx, key, ttl)
		p.SAdd(ctx, d.userKey(r.User), r.ID)
		p.PExpire(ctx, d.userKey(r.User), ttl)
		// Eval, not Run: in a pipeline, Run cannot fall back from EVALSHA.
		registerScript.Eval(ctx, p, []string{d.expiry, d.nodeSet, d.registered},
			d.opts.TTL.Milliseconds(), d.opts.Node, r.ID)
		return nil
	})
	if err != nil {
		return err
	}
	d.confirmed.Add(1)
	d.local.add(r)
	return nil
}

// join gives this node a deadline before its first record, so that its
// first heartbeat finds its records intact instead of checking each.
func (d *Redis) join(ctx context.Context) error {
	if d.joined.Load() {
		return nil
	}
	d.beatMu.Lock()
	defer d.beatMu.Unlock()
	if d.joined.Load() {
		return nil
	}
	res, err := d.beat(ctx, d.opts.Node, 0, nil)
	if err != nil {
		return err
	}
	if len(d.local.owned()) == 0 {
		d.deadline = res.deadline
	}
	d.joined.Store(true)
	return nil
}

// Update implements Directory.
func (d *Redis) Update(ctx context.Context, id string, c Change) error {
	if !c.LastActivity.IsZero() {
		if !d.local.touch(id, c.LastActivity) {
			return ErrNotFound
		}
	} else if _, ok := d.local.user(id); !ok {
		return ErrNotFound
	}
	var fields []any
	if c.SetRooms {
		rooms, err := json.Marshal(c.Rooms)
		if err != nil {
			return err
		}
		fields = append(fields, "r", rooms)
	}
	if c.Close != nil {
		fields = append(fields, "cc", c.Close.Code, "cr", c.Close.Reason)
	}
	if len(fields) == 0 {
		return nil
	}
	d.local.change(id, c)
	n, err := updateScript.Run(ctx, d.client, []string{d.recordKey(id)}, fields...).Int()
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// Unregister implements Directory.
func (d *Redis) Unregister(ctx context.Context, id string) (bool, error) {
	user, _ := d.local.remove(id)
	n, err := d.client.SRem(ctx, d.nodeSet, id).Result()
	if err != nil || n == 0 {
		// Not ours any more: a claimer needs the record's data.
		return false, err
	}
	_, err = d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, d.recordKey(id))
		p.SRem(ctx, d.userKey(user), id)
		return nil
	})
	return true, err
}

// Get implements Directory.
func (d *Redis) Get(ctx context.Context, id string) (Record, error) {
	rs, err := d.fetch(ctx, []string{id}, true)
	if err != nil {
		return Record{}, err
	}
	if len(rs) == 0 || rs[0] == nil {
		return Record{}, ErrNotFound
	}
	return *rs[0], nil
}

// ListByUser implements Directory.
func (d *Redis) ListByUser(ctx context.Context, user string) ([]Record, error) {
	ids, err := d.client.SMembers(ctx, d.userKey(user)).Result()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	rs, err := d.fetch(ctx, ids, true)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range rs {
		if r != nil && r.User == user {
			out = append(out, *r)
		}
	}
	return out, nil
}

// fetch reads records in one pipeline; an entry is nil for a missing
// record, and, when liveOnly, for one that is not live (see live).
func (d *Redis) fetch(ctx context.Context, ids []string, liveOnly bool) ([]*Record, error) {
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			hashes[i] = p.HGetAll(ctx, d.recordKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	out := make([]*Record, len(ids))
	for i, id := range ids {
		h, err := hashes[i].Result()
		if err != nil {
			return nil, err
		}
		if len(h) != 0 {
			out[i] = decode(id, h)
		}
	}
	if liveOnly {
		if err := d.live(ctx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// live sets to nil the records of rs that are closed, claimed (no longer
// in their node's set) or whose node's deadline passed, in one pipeline.
func (d *Redis) live(ctx context.Context, rs []*Record) error {
	members := make([]*redis.BoolCmd, len(rs))
	deadlines := map[string]*redis.FloatCmd{}
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range rs {
			if r == nil || r.Closed != nil {
				continue
			}
			members[i] = p.SIsMember(ctx, d.nodeSets+r.Node, r.ID)
			if deadlines[r.Node] == nil {
				deadlines[r.Node] = p.ZScore(ctx, d.expiry, r.Node)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	now := time.Now().UnixMilli()
	for i, r := range rs {
		if r == nil {
			continue
		}
		if members[i] == nil {
			rs[i] = nil
			continue
		}
		member, err := members[i].Result()
		if err != nil {
			return err
		}
		deadline, err := deadlines[r.Node].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if !member || err != nil || int64(deadline) <= now {
			rs[i] = nil
		}
	}
	return nil
}

// decode turns a record hash into a Record.
func decode(id string, h map[string]string) *Record {
	r := &Record{ID: id, User: h["u"], Node: h["n"]}
	if ms, err := strconv.ParseInt(h["c"], 10, 64); err == nil {
		r.ConnectedAt = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(h["a"], 10, 64); err == nil {
		r.LastActivity = time.UnixMilli(ms)
	}
	_ = json.Unmarshal([]byte(h["r"]), &r.Rooms)
	if code, ok := h["cc"]; ok {
		c, _ := strconv.Atoi(code)
		r.Closed = &Close{Code: c, Reason: h["cr"]}
	}
	return r
}

// Heartbeat implements Directory. While this node's records are intact
// it costs Redis one script call of a few commands, plus one write per
// record with new activity; see Redis.
func (d *Redis) Heartbeat(ctx context.Context) ([]string, error) {
	d.beatMu.Lock()
	defer d.beatMu.Unlock()
	b := d.local.changes()
	lost, err := d.liveness(ctx, b.claimed)
	if err == nil {
		err = d.writeActivity(ctx, b.own)
	}
	if err != nil {
		d.local.restore(b)
		return lost, err
	}
	if now := time.Now(); now.Sub(d.lastFull) > d.opts.RecordTTL/4 {
		if err := d.renewAll(ctx); err != nil {
			return lost, err
		}
		d.lastFull = now
	}
	return lost, nil
}

// liveness moves this node's deadline and renews the leases of its claims;
// if its records are not intact, it checks each. It returns the own ids
// another node took over. d.beatMu is held.
func (d *Redis) liveness(ctx context.Context, claimed []string) ([]string, error) {
	n := min(len(claimed), d.opts.BatchSize)
	res, err := d.beat(ctx, d.opts.Node, d.deadline, claimed[:n])
	if err != nil {
		return nil, err
	}
	d.joined.Store(true)
	d.deadline = 0 // until every record is known to be in place
	if res.intact {
		d.deadline = res.deadline
	}
	lostClaims := res.lostClaims
	for claimed = claimed[n:]; len(claimed) > 0; claimed = claimed[n:] {
		n = min(len(claimed), d.opts.BatchSize)
		more, err := d.beat(ctx, "", 0, claimed[:n])
		if err != nil {
			d.local.drop(nil, lostClaims)
			return nil, err
		}
		lostClaims = append(lostClaims, more.lostClaims...)
	}
	d.local.drop(nil, lostClaims)
	if res.intact {
		return nil, nil
	}
	lost, err := d.check(ctx)
	if err == nil {
		d.deadline = res.deadline
	}
	return lost, err
}

// beatReply is what beatScript returns.
type beatReply struct {
	deadline   int64
	intact     bool
	lostClaims []string
}

// beat runs beatScript: for node, unless "", the deadline expected of
// it; then the leases of claimed.
func (d *Redis) beat(ctx context.Context, node string, expected int64, claimed []string) (beatReply, error) {
	args := make([]any, 0, 4+len(claimed))
	args = append(args, d.opts.TTL.Milliseconds(), node, expected, d.confirmed.Load())
	for _, id := range claimed {
		args = append(args, id)
	}
	res, err := beatScript.Run(ctx, d.client, []string{d.expiry, d.pending, d.registered}, args...).Slice()
	if err != nil {
		return beatReply{}, err
	}
	if len(res) != 3 {
		return beatReply{}, errors.New("conndir: bad heartbeat reply")
	}
	deadline, _ := res[0].(int64)
	intact, _ := res[1].(int64)
	return beatReply{deadline: deadline, intact: intact == 1, lostClaims: stringSlice(res[2])}, nil
}

// check sorts out every own record, BatchSize per script call, after a
// heartbeat found them not intact: it returns (and forgets) those another
// node took over, and writes back those Redis lost. d.beatMu is held.
func (d *Redis) check(ctx context.Context) ([]string, error) {
	var lost []string
	for own := d.local.owned(); len(own) > 0; {
		n := min(len(own), d.opts.BatchSize)
		ids := make([]any, n)
		for i, ob := range own[:n] {
			ids[i] = ob.id
		}
		own = own[n:]
		res, err := checkScript.Run(ctx, d.client, []string{d.nodeSet, d.pending, d.settled}, ids...).Slice()
		if err == nil && len(res) != 2 {
			err = errors.New("conndir: bad check reply")
		}
		if err != nil {
			return lost, err
		}
		l := stringSlice(res[0])
		d.local.drop(l, nil)
		lost = append(lost, l...)
		if restored := stringSlice(res[1]); len(restored) > 0 {
			if err := d.rewrite(ctx, restored); err != nil {
				return lost, err
			}
		}
	}
	return lost, nil
}

// rewrite writes back the records of own connections that Redis lost with
// its data: the sockets are alive, so nothing is closed or announced. An
// id unregistered meanwhile leaves the node's set again.
func (d *Redis) rewrite(ctx context.Context, ids []string) error {
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			r, ok := d.local.record(id)
			if !ok {
				p.SRem(ctx, d.nodeSet, id)
				continue
			}
			rooms, err := json.Marshal(r.Rooms)
			if err != nil {
				return err
			}
			key := d.recordKey(id)
			fields := []any{"u", r.User, "n", r.Node, "c", r.ConnectedAt.UnixMilli(), "r", rooms, "a", r.LastActivity.UnixMilli()}
			if r.Closed != nil {
				fields = append(fields, "cc", r.Closed.Code, "cr", r.Closed.Reason)
			}
			p.HSet(ctx, key, fields...)
			p.PExpire(ctx, key, d.opts.RecordTTL)
			p.SAdd(ctx, d.userKey(r.User), id)
			p.PExpire(ctx, d.userKey(r.User), d.opts.RecordTTL)
		}
		return nil
	})
	return err
}

// activityBatch bounds the script calls of one activity round trip: Redis
// runs a pipeline's commands back to back, and other clients' commands
// (publishes) wait behind a long one.
const activityBatch = 64

// writeActivity writes the last activities in own, activityBatch (at most
// BatchSize) per round trip, skipping records no longer this node's.
func (d *Redis) writeActivity(ctx context.Context, own []ownBeat) error {
	for len(own) > 0 {
		n := min(len(own), d.opts.BatchSize, activityBatch)
		_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, ob := range own[:n] {
				if d.local.has(ob.id) {
					recordScript.Eval(ctx, p, []string{d.recordKey(ob.id)},
						d.opts.RecordTTL.Milliseconds(), ob.activity.UnixMilli())
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		own = own[n:]
	}
	return nil
}

// renewAll renews the data TTL of every own record and of its user's
// index, BatchSize records per round trip: a live node's only work per
// connection without a change, every RecordTTL/4. PEXPIRE creates no
// key, so it cannot resurrect a record removed meanwhile.
func (d *Redis) renewAll(ctx context.Context) error {
	users := map[string]bool{}
	for own := d.local.owned(); len(own) > 0; {
		n := min(len(own), d.opts.BatchSize)
		_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, ob := range own[:n] {
				p.PExpire(ctx, d.recordKey(ob.id), d.opts.RecordTTL)
				if !users[ob.user] {
					users[ob.user] = true
					p.PExpire(ctx, d.userKey(ob.user), d.opts.RecordTTL)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		own = own[n:]
	}
	return nil
}

// stringSlice converts a script's array of strings.
func stringSlice(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Sweep implements Directory.
func (d *Redis) Sweep(ctx context.Context) ([]Record, error) {
	res, err := sweepScript.Run(ctx, d.client, []string{d.expiry, d.pending, d.registered},
		d.opts.TTL.Milliseconds(), d.opts.SweepLimit, d.nodeSets).Slice()
	if err != nil {
		return nil, err
	}
	ids := stringSlice(res)
	if len(ids) == 0 {
		return nil, nil
	}
	rs, err := d.fetch(ctx, ids, false)
	if err != nil {
		// The claims are not renewed, so another Sweep takes them over
		// once their lease ran out.
		return nil, err
	}
	out := make([]Record, len(ids))
	for i, id := range ids {
		out[i] = Record{ID: id}
		if rs[i] != nil {
			out[i] = *rs[i]
		}
		d.local.claim(id, out[i].User)
	}
	return out, nil
}

// Ack implements Directory.
func (d *Redis) Ack(ctx context.Context, id string) error {
	user, _ := d.local.unclaim(id)
	if user == "" {
		u, err := d.client.HGet(ctx, d.recordKey(id), "u").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		user = u
	}
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, d.pending, id)
		// Remembered for a record's lifetime, so that the node that lost it
		// (if it still runs) knows it was settled, not lost with Redis's data.
		now := time.Now()
		p.ZAdd(ctx, d.settled, redis.Z{Score: float64(now.UnixMilli()), Member: id})
		p.ZRemRangeByScore(ctx, d.settled, "-inf", strconv.FormatInt(now.Add(-d.opts.RecordTTL).UnixMilli(), 10))
		p.Del(ctx, d.recordKey(id))
		if user != "" {
			p.SRem(ctx, d.userKey(user), id)
		}
		return nil
	})
	return err
}

// Release implements Directory.
func (d *Redis) Release(_ context.Context, id string) error {
	d.local.unclaim(id)
	return nil
}
