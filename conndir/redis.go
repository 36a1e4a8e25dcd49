package conndir

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
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
	// in Redis without a heartbeat or an Ack: a safety net for records no
	// node ever claims (every node gone). It must exceed TTL by far.
	// Default 24 h.
	RecordTTL time.Duration
	// BatchSize is how many records one heartbeat round trip refreshes.
	// Default 500.
	BatchSize int
}

// Redis is a Directory in Redis, a single server or a Redis Cluster.
//
// Keys: a hash per record, "<prefix>conn:<id>", and a set per user,
// "<prefix>conn-user:<user>", which live on any shard; and two sorted sets
// of ids, "<prefix>{conndir}:expiry" (deadline of each live record) and
// "<prefix>{conndir}:pending" (lease of each claimed record), which share
// a hash tag so that one script claims atomically. On a Redis Cluster the
// two sets therefore live on one shard, which carries every heartbeat and
// sweep: the trade-off of an atomic, exactly-once claim without a scan of
// every shard. Each set holds one short member per connection, so one
// shard copes with hundreds of thousands of connections; past that, shard
// the sets by node group.
type Redis struct {
	client  redis.UniversalClient
	opts    RedisOptions
	expiry  string
	pending string
	settled string
	local   *local

	// lastFull is when a heartbeat last renewed every record's data TTL
	// (RecordTTL); between such beats only records with new activity are
	// written, so an idle connection costs one member of one script call.
	lastFull atomic.Int64
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
	return &Redis{
		client:  client,
		opts:    opts,
		expiry:  opts.Prefix + "{conndir}:expiry",
		settled: opts.Prefix + "{conndir}:settled",
		pending: opts.Prefix + "{conndir}:pending",
		local:   newLocal(),
	}, nil
}

func (d *Redis) recordKey(id string) string { return d.opts.Prefix + "conn:" + id }
func (d *Redis) userKey(user string) string { return d.opts.Prefix + "conn-user:" + user }

// Node implements Directory.
func (d *Redis) Node() string { return d.opts.Node }

// Register implements Directory.
func (d *Redis) Register(ctx context.Context, r Record) error {
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
		touchScript.Eval(ctx, p, []string{d.expiry, d.pending, d.settled}, d.opts.TTL.Milliseconds(), "add", 1, r.ID)
		return nil
	})
	if err != nil {
		return err
	}
	d.local.add(r)
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
	n, err := d.client.ZRem(ctx, d.expiry, id).Result()
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
// record, and, when liveOnly, for one that is closed, claimed or past its
// deadline.
func (d *Redis) fetch(ctx context.Context, ids []string, liveOnly bool) ([]*Record, error) {
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	scores := make([]*redis.FloatCmd, len(ids))
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			hashes[i] = p.HGetAll(ctx, d.recordKey(id))
			if liveOnly {
				scores[i] = p.ZScore(ctx, d.expiry, id)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	now := time.Now().UnixMilli()
	out := make([]*Record, len(ids))
	for i, id := range ids {
		h, err := hashes[i].Result()
		if err != nil {
			return nil, err
		}
		if len(h) == 0 {
			continue
		}
		r := decode(id, h)
		if liveOnly {
			deadline, err := scores[i].Result()
			if errors.Is(err, redis.Nil) || (err == nil && int64(deadline) <= now) || r.Closed != nil {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		out[i] = r
	}
	return out, nil
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

// Heartbeat implements Directory. Each batch of BatchSize records costs one
// pipelined round trip (per shard on a Redis Cluster).
func (d *Redis) Heartbeat(ctx context.Context) ([]string, error) {
	b := d.local.snapshot()
	var lost, lostClaims []string
	own, claimed := b.own, b.claimed
	now := time.Now()
	full := now.Sub(time.UnixMilli(d.lastFull.Load())) > d.opts.RecordTTL/4
	for len(own) > 0 || len(claimed) > 0 {
		n := min(len(own), d.opts.BatchSize)
		m := min(len(claimed), d.opts.BatchSize-n)
		l, lc, err := d.beat(ctx, own[:n], claimed[:m], full)
		if err != nil {
			d.local.restore(beat{own: own})
			d.local.drop(lost, lostClaims)
			return lost, err
		}
		lost, lostClaims = append(lost, l...), append(lostClaims, lc...)
		own, claimed = own[n:], claimed[m:]
	}
	d.local.drop(lost, lostClaims)
	if full {
		d.lastFull.Store(now.UnixMilli())
	}
	return lost, nil
}

// beat refreshes one batch in one pipeline: every deadline, the data of
// records with new activity, and, on a full beat, every record's data TTL.
func (d *Redis) beat(ctx context.Context, own []ownBeat, claimed []string, full bool) (lost, lostClaims []string, err error) {
	args := make([]any, 0, 3+len(own)+len(claimed))
	args = append(args, d.opts.TTL.Milliseconds(), "refresh", len(own))
	for _, ob := range own {
		args = append(args, ob.id)
	}
	for _, id := range claimed {
		args = append(args, id)
	}
	var touch *redis.Cmd
	_, err = d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		touch = touchScript.Eval(ctx, p, []string{d.expiry, d.pending, d.settled}, args...)
		users := map[string]bool{}
		for _, ob := range own {
			if ob.activity.IsZero() && !full {
				continue
			}
			activity := ""
			if !ob.activity.IsZero() {
				activity = strconv.FormatInt(ob.activity.UnixMilli(), 10)
			}
			recordScript.Eval(ctx, p, []string{d.recordKey(ob.id)}, d.opts.RecordTTL.Milliseconds(), activity)
			if full && !users[ob.user] {
				users[ob.user] = true
				p.PExpire(ctx, d.userKey(ob.user), d.opts.RecordTTL)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	res, err := touch.Slice()
	if err != nil || len(res) != 3 {
		return nil, nil, errors.Join(errors.New("conndir: bad heartbeat reply"), err)
	}
	if restored := stringSlice(res[2]); len(restored) > 0 {
		if err := d.rewrite(ctx, restored); err != nil {
			return nil, nil, err
		}
	}
	return stringSlice(res[0]), stringSlice(res[1]), nil
}

// rewrite writes back the records of own connections that Redis lost with
// its data: the sockets are alive, so nothing is closed or announced.
func (d *Redis) rewrite(ctx context.Context, ids []string) error {
	_, err := d.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			r, ok := d.local.record(id)
			if !ok {
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
	res, err := sweepScript.Run(ctx, d.client, []string{d.expiry, d.pending},
		d.opts.TTL.Milliseconds(), d.opts.SweepLimit).Slice()
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
