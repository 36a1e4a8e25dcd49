package broker

import (
	"context"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// ActiveQuery selects topics with at least one present user, in name
// order: those after After ("" for the first), at most Limit of them
// (0: all).
type ActiveQuery struct {
	After string
	Limit int
}

// TopicCount is a topic with how many users are present on it.
type TopicCount struct {
	Topic string
	Count int
}

// ActivePage is a page of active topics, in name order. Next is the After
// of the following page, "" on the last one.
type ActivePage struct {
	Topics []TopicCount
	Next   string
}

// activeBatch is how many index entries one round trip examines.
const activeBatch = 200

// Active lists the topics that have present users, with their counts,
// without scanning the keyspace: an index of active topics (one sorted set
// by name, "<prefix>active-topics") is kept beside presence.
//
// With a single Redis the presence scripts keep the index exact and
// atomic with presence: a topic enters with its first user and leaves
// with its last. In a Redis Cluster a script cannot touch the index (it
// lives in another slot), so a topic is added after each presence change
// and heartbeat instead, and never removed by them. In both, a topic whose
// users all expired (their node crashed and nobody swept the room) stays
// listed until a read finds it empty: Active skips such topics and prunes
// them (atomically with a single Redis; in a cluster a prune racing a
// join is undone by that join's node's next heartbeat).
func (r *Redis) Active(ctx context.Context, q ActiveQuery) (ActivePage, error) {
	ctx, cancel := r.op(ctx)
	defer cancel()
	now, err := r.client.Time(ctx).Result()
	if err != nil {
		return ActivePage{}, unavailable(err)
	}
	nowMS := now.UnixMilli()
	lo := "-"
	if q.After != "" {
		lo = "(" + q.After
	}
	var page ActivePage
	for {
		want := activeBatch
		if q.Limit > 0 {
			want = min(want, q.Limit+1-len(page.Topics))
		}
		topics, err := r.client.ZRangeArgs(ctx, redis.ZRangeArgs{
			Key: r.activeKey(), Start: lo, Stop: "+", ByLex: true, Count: int64(want),
		}).Result()
		if err != nil {
			return ActivePage{}, unavailable(err)
		}
		counts := make([]*redis.IntCmd, len(topics))
		_, err = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, topic := range topics {
				counts[i] = p.ZCount(ctx, r.key(topic, ":users"), "("+strconv.FormatInt(nowMS, 10), "+inf")
			}
			return nil
		})
		if err != nil {
			return ActivePage{}, unavailable(err)
		}
		for i, topic := range topics {
			n := int(counts[i].Val())
			if n == 0 {
				r.pruneActive(ctx, topic, nowMS)
				continue
			}
			page.Topics = append(page.Topics, TopicCount{Topic: topic, Count: n})
		}
		if q.Limit > 0 && len(page.Topics) > q.Limit {
			page.Topics = page.Topics[:q.Limit]
			page.Next = page.Topics[q.Limit-1].Topic
			return page, nil
		}
		if len(topics) < want {
			return page, nil
		}
		lo = "(" + topics[len(topics)-1]
	}
}

// pruneActiveScript removes a topic from the index if it still has no live
// user. KEYS[1] index, KEYS[2] the topic's users; ARGV[1] topic, ARGV[2]
// now in ms.
var pruneActiveScript = redis.NewScript(`
if redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf') == 0 then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`)

// pruneActive drops an index entry whose users all expired. Failures are
// harmless: the next read tries again.
func (r *Redis) pruneActive(ctx context.Context, topic string, nowMS int64) {
	if r.cluster != nil {
		_ = r.client.ZRem(ctx, r.activeKey(), topic).Err()
		return
	}
	_ = pruneActiveScript.Run(ctx, r.client, []string{r.activeKey(), r.key(topic, ":users")}, topic, nowMS).Err()
}

// activeKey is the index of active topics.
func (r *Redis) activeKey() string { return r.opts.Prefix + "active-topics" }

// withActiveKey appends the index of active topics to a presence script's
// keys with a single Redis; a cluster's scripts cannot reach it.
func (r *Redis) withActiveKey(keys []string) []string {
	if r.cluster != nil {
		return keys
	}
	return append(keys, r.activeKey())
}

// markActive adds topic to the index in a cluster, where the presence
// scripts cannot (with a single Redis it does nothing: they did).
func (r *Redis) markActive(ctx context.Context, c redis.Cmdable, topic string) error {
	if r.cluster == nil {
		return nil
	}
	return c.ZAdd(ctx, r.activeKey(), redis.Z{Member: topic}).Err()
}

// Active lists the topics that have present users, with their counts.
func (m *Memory) Active(_ context.Context, q ActiveQuery) (ActivePage, error) {
	m.mu.Lock()
	topics := make([]TopicCount, 0, len(m.presence))
	for topic, users := range m.presence {
		if topic > q.After && len(users) > 0 {
			topics = append(topics, TopicCount{Topic: topic, Count: len(users)})
		}
	}
	m.mu.Unlock()
	sort.Slice(topics, func(i, j int) bool { return topics[i].Topic < topics[j].Topic })
	page := ActivePage{Topics: topics}
	if q.Limit > 0 && len(topics) > q.Limit {
		page.Topics = topics[:q.Limit]
		page.Next = topics[q.Limit-1].Topic
	}
	return page, nil
}
