package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// RedisOptions configures the Redis broker.
type RedisOptions struct {
	Options
	// URL of a single Redis (redis://host:port/db). Exactly one of URL and
	// ClusterAddrs is set.
	URL string
	// ClusterAddrs are seed nodes of a Redis Cluster; sharded pub/sub
	// (SSUBSCRIBE/SPUBLISH, Redis >= 7) is used.
	ClusterAddrs []string
	// Prefix namespaces every key and channel.
	Prefix string
	// OpTimeout bounds each operation a client is waiting for. Default 5s.
	OpTimeout time.Duration
	// Log receives the broker's logs; nil discards them.
	Log *slog.Logger
}

// Redis is the broker for many nodes. Each node holds one pub/sub
// connection per Redis (per shard master in a cluster) multiplexing all its
// subscriptions, publishes through a Lua script that stores and publishes
// atomically, keeps presence in sorted sets with expiry refreshed by a
// heartbeat, and restores its subscriptions by itself after Redis comes
// back.
//
// Keys and channels of a topic T are named Prefix + "{" + T + "}" + suffix
// (braces in T escaped), so that in a cluster they all live in T's hash
// slot.
type Redis struct {
	opts    RedisOptions
	log     *slog.Logger
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil with a single Redis

	ctx    context.Context // cancelled by Close; bounds every operation and the heartbeat
	cancel context.CancelFunc
	wg     sync.WaitGroup // the heartbeat

	subs     *subscriptions // the pub/sub connections, with their own goroutines
	presence presenceTracker
}

// NewRedis connects a broker to Redis. It does not wait for Redis to be
// reachable: a node starts while Redis is down and becomes ready when it
// comes back (see Ready). Call Start before use.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 5 * time.Second
	}
	r := &Redis{opts: opts, log: opts.Log}
	switch {
	case opts.URL != "" && len(opts.ClusterAddrs) > 0:
		return nil, errors.New("redis broker: set a URL or cluster addresses, not both")
	case opts.URL != "":
		o, err := redis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("redis broker: %w", err)
		}
		tune(&o.MinRetryBackoff, &o.MaxRetryBackoff, &o.DialTimeout)
		o.ContextTimeoutEnabled = true
		o.Dialer = rawDialer(redis.NewDialer(o))
		r.client = redis.NewClient(o)
	case len(opts.ClusterAddrs) > 0:
		o := &redis.ClusterOptions{Addrs: opts.ClusterAddrs, ContextTimeoutEnabled: true}
		tune(&o.MinRetryBackoff, &o.MaxRetryBackoff, &o.DialTimeout)
		o.Dialer = rawDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Read at each dial, so that the dialer follows the options as set.
			return redis.NewDialer(&redis.Options{DialTimeout: o.DialTimeout, TLSConfig: o.TLSConfig})(ctx, network, addr)
		})
		r.cluster = redis.NewClusterClient(o)
		r.client = r.cluster
	default:
		return nil, errors.New("redis broker: no URL or cluster addresses")
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.subs = newSubscriptions(r.pubsubDeps())
	r.presence.init()
	return r, nil
}

// tune shortens go-redis's dial timeout so that an unreachable Redis is
// reported to clients within an operation timeout rather than after it.
// (ContextTimeoutEnabled, set by the callers, makes go-redis honour each
// operation's OP_TIMEOUT deadline instead of its own 3 s read timeout.)
func tune(minBackoff, maxBackoff, dial *time.Duration) {
	*minBackoff, *maxBackoff, *dial = 50*time.Millisecond, 500*time.Millisecond, 2*time.Second
}

// pubsubDeps gives the subscription set what it needs of the broker.
func (r *Redis) pubsubDeps() pubsubDeps {
	d := pubsubDeps{log: r.log, channel: r.channel, decode: decodePayload, opTimeout: r.opts.OpTimeout}
	if r.opts.HistorySize > 0 {
		d.history = r.History
	}
	if r.cluster == nil {
		client := r.client
		single := endpoint{dial: func(ctx context.Context) *redis.PubSub { return client.Subscribe(ctx) }}
		d.endpoint = func(context.Context, string) (endpoint, error) { return single, nil }
		d.epoch = r.readEpoch
		return d
	}
	cluster := r.cluster
	d.cluster, d.refresh = true, cluster.ReloadState
	d.endpoint = func(ctx context.Context, ch string) (endpoint, error) {
		master, err := cluster.MasterForKey(ctx, ch)
		if err != nil {
			return endpoint{}, err
		}
		return endpoint{addr: master.Options().Addr, dial: func(ctx context.Context) *redis.PubSub { return master.SSubscribe(ctx) }}, nil
	}
	return d
}

// Start sets the delivery callback and starts the pub/sub, routing and
// presence heartbeat goroutines. Close stops them.
func (r *Redis) Start(deliver func(Message)) {
	r.subs.start(deliver)
	r.wg.Go(r.presence.heartbeatLoop(r))
}

// Close stops every goroutine and closes the connections. Presence entries
// of this node are left to expire, as after a crash; callers remove them
// first when they shut down gracefully.
func (r *Redis) Close() error {
	r.cancel()
	r.presence.writers.close()
	r.subs.close()
	r.wg.Wait()
	return r.client.Close()
}

// Ready reports nil when Redis answers and every subscription this node
// wants is confirmed.
func (r *Redis) Ready(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis unreachable: %w", err)
	}
	return r.subs.ready(ctx)
}

// key names a Redis key (or channel) of topic. The topic goes inside a
// hash tag, with its own braces escaped so that the tag always ends where
// the topic does: two topics never share a key, whatever their names.
func (r *Redis) key(topic, suffix string) string {
	return r.opts.Prefix + "{" + tagEscaper.Replace(topic) + "}" + suffix
}

var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// channel is the Redis pub/sub channel of a topic.
func (r *Redis) channel(topic string) string { return r.key(topic, "") }

func (r *Redis) streamKey(topic string) string { return r.key(topic, ":history") }

// streamBytesKey counts the data bytes of topic's stream (publishScript).
func (r *Redis) streamBytesKey(topic string) string { return r.key(topic, ":history:bytes") }

// errOpTimeout is the cause of an operation that ran past OpTimeout.
var errOpTimeout = errors.New("redis operation timed out")

// op bounds one Redis operation by OpTimeout and the broker's life. The
// returned context's cause tells why it ended (see fail).
func (r *Redis) op(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, closed := context.WithCancelCause(ctx)
	ctx, cancel := context.WithTimeoutCause(ctx, r.opts.OpTimeout, errOpTimeout)
	stop := context.AfterFunc(r.ctx, func() { closed(ErrClosed) })
	return ctx, func() { stop(); cancel(); closed(nil) }
}

// fail turns the error of an operation run under ctx (from op) into the
// broker's: the caller's own cancellation or deadline when that is why it
// failed (so errors.Is(err, context.Canceled) holds for a caller that left),
// ErrClosed when the broker was closed under it, and otherwise
// ErrUnavailable. Each wraps the underlying error too.
func fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case cause == nil || errors.Is(cause, errOpTimeout):
		return unavailable(err)
	case errors.Is(err, cause):
		return err
	default:
		return fmt.Errorf("%w: %w", cause, err)
	}
}

// unavailable wraps a Redis failure so callers can tell it from bad input,
// keeping the failure itself as a cause.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// publishCommand is PUBLISH, or SPUBLISH in a cluster.
func (r *Redis) publishCommand() string {
	if r.cluster != nil {
		return "spublish"
	}
	return "publish"
}

// Publish sends msg to every node subscribed to its topic; with history it
// is appended to the topic's stream in the same atomic step.
func (r *Redis) Publish(ctx context.Context, msg Message, withHistory bool) (PublishResult, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	ch := r.channel(msg.Topic)
	if withHistory && r.opts.HistorySize > 0 {
		keys := []string{r.streamKey(msg.Topic), r.streamBytesKey(msg.Topic)}
		res, err := publishScript.Run(ctx, r.client, keys, ch, msg.Data, msg.Except,
			r.opts.HistorySize, r.opts.HistoryTTL.Milliseconds(), r.publishCommand(), r.opts.HistoryBytes).Slice()
		if err != nil {
			return PublishResult{}, fail(ctx, err)
		}
		id, _ := res[0].(string)
		n, _ := res[1].(int64)
		return PublishResult{ID: id, Receivers: int(n)}, nil
	}
	msg.ID = ""
	payload := appendPayload(make([]byte, 0, len(msg.Except)+len(msg.Data)+2), msg)
	var cmd *redis.IntCmd
	if r.cluster != nil {
		cmd = r.client.SPublish(ctx, ch, payload)
	} else {
		cmd = r.client.Publish(ctx, ch, payload)
	}
	n, err := cmd.Result()
	if err != nil {
		return PublishResult{}, fail(ctx, err)
	}
	return PublishResult{Receivers: int(n)}, nil
}

// History reads stored messages of topic.
func (r *Redis) History(ctx context.Context, topic string, q HistoryQuery) (HistoryPage, error) {
	if err := validateQuery(q); err != nil {
		return HistoryPage{}, err
	}
	ctx, cancel := r.op(ctx)
	defer cancel()
	dir, start, end := "rev", "-", "+"
	if q.Since != "" {
		dir, start = "fwd", "("+q.Since
	}
	if q.Before != "" {
		end = "(" + q.Before
	}
	count := 0
	if q.Limit > 0 {
		count = q.Limit + 1 // one more tells whether the page is complete
	}
	mode := "data"
	if q.IDsOnly {
		mode = "ids"
	}
	res, err := historyScript.Run(ctx, r.client, []string{r.streamKey(topic)}, dir, start, end, count, q.MaxBytes, mode).Slice()
	if err != nil {
		return HistoryPage{}, fail(ctx, err)
	}
	return parseHistory(topic, res, q)
}

func parseHistory(topic string, res []any, q HistoryQuery) (HistoryPage, error) {
	bad := func() (HistoryPage, error) {
		return HistoryPage{}, fmt.Errorf("%w: unexpected history reply %v", ErrUnavailable, res)
	}
	if len(res) != 3 {
		return bad()
	}
	first, _ := res[0].(string)
	rows, _ := res[1].([]any)
	full, _ := res[2].(int64)
	page := HistoryPage{Complete: full == 0, Messages: make([]Message, 0, len(rows))}
	for _, row := range rows {
		entry, ok := row.([]any)
		if !ok || len(entry) != 3 {
			return bad()
		}
		id, _ := entry[0].(string)
		data, _ := entry[1].(string)
		size, _ := entry[2].(int64)
		m := Message{Topic: topic, ID: id, Size: int(size)}
		if !q.IDsOnly {
			m.Data = []byte(data)
		}
		page.Messages = append(page.Messages, m)
	}
	if q.Limit > 0 && len(page.Messages) > q.Limit {
		page.Complete = false
		page.Messages = page.Messages[:q.Limit]
	}
	if q.Since == "" {
		slices.Reverse(page.Messages) // read newest first
	}
	if q.Since != "" && first != "" {
		since, _ := parseID(q.Since)
		firstID, err := parseID(first)
		if err != nil {
			return bad()
		}
		page.Recovered = recovered(since, firstID)
	}
	return page, nil
}

// Claim records key for ttl with SET NX, reporting whether it was new.
func (r *Redis) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	ok, err := r.client.SetNX(ctx, r.opts.Prefix+"claim:"+key, 1, ttl).Result()
	return ok, fail(ctx, err)
}

// Subscribe makes this node receive topic's messages, returning once Redis
// has confirmed the subscription. If it fails, the topic stays wanted and
// is subscribed when Redis is back; call Unsubscribe to give it up. A call
// whose context has already ended changes nothing.
func (r *Redis) Subscribe(ctx context.Context, topic string) error {
	ctx, cancel := r.op(ctx)
	defer cancel()
	return r.subs.subscribe(ctx, topic)
}

// Unsubscribe stops this node receiving topic's messages: none published
// after it returns is delivered. The command reaches Redis through the
// topic's pub/sub connection without waiting; if that connection is
// broken, the subscription went with it.
func (r *Redis) Unsubscribe(_ context.Context, topic string) error {
	r.subs.unsubscribe(topic)
	return nil
}

// epochScript returns the data epoch of a Redis: a random value stored
// once, under a key that lives as long as the data does. A different
// epoch after a reconnection means Redis lost its data (it restarted
// without persistence, or was flushed). KEYS[1] the epoch key; ARGV[1] a
// fresh random value, kept if there is none. A Redis too full to store it
// answers "" (unknown): subscriptions must not depend on free memory.
var epochScript = redis.NewScript(`
local e = redis.call('GET', KEYS[1])
if not e then
  local ok = redis.pcall('SET', KEYS[1], ARGV[1])
  if type(ok) == 'table' and ok.err then return '' end
  e = ARGV[1]
end
return e
`)

// readEpoch reads (or starts) the data epoch of the single Redis.
func (r *Redis) readEpoch(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.OpTimeout)
	defer cancel()
	return epochScript.Run(ctx, r.client, []string{r.opts.Prefix + "epoch"}, uuid.NewString()).Text()
}
