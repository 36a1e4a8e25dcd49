package broker

import (
	"container/heap"
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is the embedded single-node broker: every topic, stream, presence
// entry and claim lives in this process and is lost when it exits.
// Deliveries happen synchronously inside Publish, on the publisher's
// goroutine, in the order messages are stored.
type Memory struct {
	opts    Options
	now     func() time.Time
	deliver func(Message)

	presenceMu sync.Mutex // orders presence changes with their announcements

	mu       sync.Mutex
	topics   map[string]*memTopic
	presence map[string]map[string]map[string]struct{} // topic → user → connections
	claims   map[string]time.Time                      // key → expiry
	bytes    int                                       // data bytes stored across all topics
	oldest   topicHeap                                 // topics with stored messages, oldest head first
	closed   bool
	started  bool

	stop chan struct{}
	done chan struct{}
}

// memTopic is one topic's subscription flag and stream. publishMu
// serialises publishers of the topic so deliveries keep stream order.
type memTopic struct {
	publishMu  sync.Mutex
	subscribed bool
	entries    []Message // oldest first, at most HistorySize
	head       streamID  // id of entries[0], when there is one
	bytes      int       // data bytes in entries
	heapIndex  int       // position in Memory.oldest, -1 when not there
	last       streamID  // newest id ever assigned
	expires    time.Time
}

// NewMemory returns an embedded broker. Call Start before use.
func NewMemory(opts Options) *Memory {
	return &Memory{
		opts:     opts,
		now:      time.Now,
		topics:   make(map[string]*memTopic),
		presence: make(map[string]map[string]map[string]struct{}),
		claims:   make(map[string]time.Time),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Start sets the delivery callback and starts the janitor that drops
// expired streams and claims. Close stops it.
func (m *Memory) Start(deliver func(Message)) {
	m.mu.Lock()
	m.deliver, m.started = deliver, true
	m.mu.Unlock()
	go m.janitor()
}

// Close stops the janitor, if Start ran. Later calls fail with ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	started := m.started
	m.mu.Unlock()
	close(m.stop)
	if started {
		<-m.done
	}
	return nil
}

// Ready always reports ready: there is nothing to reach.
func (m *Memory) Ready(context.Context) error { return nil }

func (m *Memory) janitor() {
	defer close(m.done)
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.sweep()
		}
	}
}

func (m *Memory) sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for name, t := range m.topics {
		m.expireLocked(t, now)
		// A topic a publisher holds is not dropped under its feet.
		if !t.subscribed && len(t.entries) == 0 && t.last == (streamID{}) && t.publishMu.TryLock() {
			delete(m.topics, name)
			t.publishMu.Unlock()
		}
	}
	for key, exp := range m.claims {
		if !now.Before(exp) {
			delete(m.claims, key)
		}
	}
}

// expireLocked forgets a stream whose TTL passed, as Redis drops the key.
func (m *Memory) expireLocked(t *memTopic, now time.Time) {
	if !t.expires.IsZero() && !now.Before(t.expires) {
		m.dropOldestLocked(t, len(t.entries))
		t.entries, t.last, t.expires = nil, streamID{}, time.Time{}
	}
}

func (m *Memory) topicLocked(name string) *memTopic {
	t := m.topics[name]
	if t == nil {
		t = &memTopic{heapIndex: -1}
		m.topics[name] = t
	}
	return t
}

// storeLocked appends msg (its ID set) to t's stream, then evicts what the
// bounds exclude: t's oldest messages beyond HistorySize or HistoryBytes,
// then the oldest messages of any topic while the node is over
// MemoryBytes. The message just stored is never evicted.
func (m *Memory) storeLocked(t *memTopic, msg Message, id streamID) {
	msg.Size = len(msg.Data)
	t.entries = append(t.entries, msg)
	t.bytes += msg.Size
	m.bytes += msg.Size
	if t.heapIndex < 0 {
		t.head = id
		heap.Push(&m.oldest, t)
	}
	drop := max(len(t.entries)-m.opts.HistorySize, 0)
	bytes := t.bytes
	for _, e := range t.entries[:drop] {
		bytes -= e.Size
	}
	for m.opts.HistoryBytes > 0 && bytes > m.opts.HistoryBytes && drop < len(t.entries)-1 {
		bytes -= t.entries[drop].Size
		drop++
	}
	m.dropOldestLocked(t, drop)
	for m.opts.MemoryBytes > 0 && m.bytes > m.opts.MemoryBytes {
		victim := m.oldest[0]
		if victim == t && len(t.entries) == 1 {
			break
		}
		m.dropOldestLocked(victim, 1)
	}
}

// dropOldestLocked removes t's n oldest messages (none if n <= 0).
func (m *Memory) dropOldestLocked(t *memTopic, n int) {
	if n <= 0 {
		return
	}
	for _, e := range t.entries[:n] {
		t.bytes -= e.Size
		m.bytes -= e.Size
	}
	t.entries = slices.Delete(t.entries, 0, n)
	if len(t.entries) == 0 {
		if t.heapIndex >= 0 {
			heap.Remove(&m.oldest, t.heapIndex)
		}
		return
	}
	t.head, _ = parseID(t.entries[0].ID)
	heap.Fix(&m.oldest, t.heapIndex)
}

// topicHeap orders the topics that store messages by their oldest one's
// id, so that the node-wide bound evicts the oldest message of any topic.
type topicHeap []*memTopic

func (h topicHeap) Len() int           { return len(h) }
func (h topicHeap) Less(i, j int) bool { return h[i].head.less(h[j].head) }
func (h topicHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}

// Push adds a topic; it is heap.Interface's, not for direct use.
func (h *topicHeap) Push(x any) {
	t := x.(*memTopic)
	t.heapIndex = len(*h)
	*h = append(*h, t)
}

// Pop removes the last topic; it is heap.Interface's, not for direct use.
func (h *topicHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.heapIndex = -1
	*h = old[:len(old)-1]
	return t
}

// Subscribe makes Publish on topic deliver to this node.
func (m *Memory) Subscribe(ctx context.Context, topic string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.topicLocked(topic).subscribed = true
	return nil
}

// Unsubscribe stops deliveries of topic.
func (m *Memory) Unsubscribe(_ context.Context, topic string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.topics[topic]; t != nil {
		t.subscribed = false
	}
	return nil
}

// Publish stores msg when history is asked for and enabled, then delivers
// it if this node subscribes to its topic.
func (m *Memory) Publish(ctx context.Context, msg Message, withHistory bool) (PublishResult, error) {
	if err := ctx.Err(); err != nil {
		return PublishResult{}, err
	}
	t, err := m.lockTopic(msg.Topic)
	if err != nil {
		return PublishResult{}, err
	}
	defer t.publishMu.Unlock()

	m.mu.Lock()
	msg.ID = ""
	if withHistory && m.opts.HistorySize > 0 {
		now := m.now()
		m.expireLocked(t, now)
		id := streamID{ms: uint64(now.UnixMilli())}
		if !t.last.less(id) {
			id = streamID{ms: t.last.ms, seq: t.last.seq + 1}
		}
		t.last = id
		msg.ID = id.String()
		msg.Data = slices.Clone(msg.Data)
		m.storeLocked(t, msg, id)
		t.expires = now.Add(m.opts.HistoryTTL)
	}
	subscribed := t.subscribed
	m.mu.Unlock()

	res := PublishResult{ID: msg.ID}
	if subscribed {
		res.Receivers = 1
		m.deliver(msg)
	}
	return res, nil
}

// lockTopic returns topic's state with its publishMu held. It checks again
// after locking that the janitor did not drop the topic meanwhile.
func (m *Memory) lockTopic(name string) (*memTopic, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		t := m.topicLocked(name)
		m.mu.Unlock()
		t.publishMu.Lock()
		m.mu.Lock()
		current := m.topics[name] == t
		m.mu.Unlock()
		if current {
			return t, nil
		}
		t.publishMu.Unlock()
	}
}

// History returns stored messages of topic.
func (m *Memory) History(ctx context.Context, topic string, q HistoryQuery) (HistoryPage, error) {
	if err := ctx.Err(); err != nil {
		return HistoryPage{}, err
	}
	if err := validateQuery(q); err != nil {
		return HistoryPage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var entries []Message
	if t := m.topics[topic]; t != nil {
		m.expireLocked(t, m.now())
		entries = t.entries
	}
	return pageOf(entries, q), nil
}

// pageOf cuts the page q asks for out of a stream's retained entries
// (oldest first). Redis answers the same questions with XRANGE/XREVRANGE;
// this is the reference for what the answers must be.
func pageOf(entries []Message, q HistoryQuery) HistoryPage {
	lo, hi := 0, len(entries)
	if q.Since != "" {
		lo = sort.Search(len(entries), func(i int) bool { return CompareIDs(entries[i].ID, q.Since) > 0 })
	}
	if q.Before != "" {
		hi = sort.Search(len(entries), func(i int) bool { return CompareIDs(entries[i].ID, q.Before) >= 0 })
	}
	if hi < lo {
		hi = lo
	}
	page := HistoryPage{Complete: true}
	if q.Limit > 0 && hi-lo > q.Limit {
		page.Complete = false
		if q.Since != "" {
			hi = lo + q.Limit
		} else {
			lo = hi - q.Limit
		}
	}
	if q.MaxBytes > 0 {
		// Keep the messages nearest the page's anchor (since, or the end).
		bytes := 0
		if q.Since != "" {
			for i := lo; i < hi; i++ {
				if bytes += len(entries[i].Data); bytes > q.MaxBytes && i > lo {
					hi, page.Complete = i, false
					break
				}
			}
		} else {
			for i := hi - 1; i >= lo; i-- {
				if bytes += len(entries[i].Data); bytes > q.MaxBytes && i < hi-1 {
					lo, page.Complete = i+1, false
					break
				}
			}
		}
	}
	page.Messages = slices.Clone(entries[lo:hi])
	if q.IDsOnly {
		for i := range page.Messages {
			page.Messages[i].Data = nil
		}
	}
	if q.Since != "" && len(entries) > 0 {
		since, _ := parseID(q.Since)
		first, _ := parseID(entries[0].ID)
		page.Recovered = recovered(since, first)
	}
	return page
}

// recovered reports whether a stream whose oldest retained message is
// first still holds every message after since. Streams lose messages only
// from their head (trimming, or expiry of the whole stream), so this holds
// exactly when since is not older than first. When since is the very
// message trimmed last, nothing was lost but this cannot be told from the
// stream: the answer errs towards reporting a gap.
func recovered(since, first streamID) bool { return !since.less(first) }

// AddPresence records that conn (of user) is present on topic. When user
// had no other connection there, joined is published on the topic (to
// every subscriber but conn) and first is true.
func (m *Memory) AddPresence(ctx context.Context, topic, user, conn string, joined []byte) (first bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.presenceMu.Lock() // held across the change and its announcement
	defer m.presenceMu.Unlock()
	m.mu.Lock()
	users := m.presence[topic]
	if users == nil {
		users = make(map[string]map[string]struct{})
		m.presence[topic] = users
	}
	conns := users[user]
	if conns == nil {
		conns = make(map[string]struct{})
		users[user] = conns
	}
	conns[conn] = struct{}{}
	first = len(conns) == 1
	announce := m.announces(len(users) - 1)
	m.mu.Unlock()
	if first && announce && len(joined) > 0 {
		_, err = m.Publish(ctx, Message{Topic: topic, Except: conn, Data: joined}, false)
	}
	return first, err
}

// RemovePresence forgets conn on topic. When user has no connection left
// there, left is published on the topic and last is true.
func (m *Memory) RemovePresence(ctx context.Context, topic, user, conn string, left []byte) (last bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.presenceMu.Lock()
	defer m.presenceMu.Unlock()
	m.mu.Lock()
	conns := m.presence[topic][user]
	_, had := conns[conn]
	if had {
		delete(conns, conn)
	}
	announce := m.announces(len(m.presence[topic]))
	if last = had && len(conns) == 0; last {
		delete(m.presence[topic], user)
		if len(m.presence[topic]) == 0 {
			delete(m.presence, topic)
		}
	}
	m.mu.Unlock()
	if last && announce && len(left) > 0 {
		_, err = m.Publish(ctx, Message{Topic: topic, Data: left}, false)
	}
	return last, err
}

// announces reports whether a presence change in a topic of count users
// (before the change) is announced.
func (m *Memory) announces(count int) bool {
	return m.opts.LargeRoom == 0 || count < m.opts.LargeRoom
}

// Members lists a page of the users present on topic, in name order.
func (m *Memory) Members(ctx context.Context, topic string, q MembersQuery) (MembersPage, error) {
	if err := ctx.Err(); err != nil {
		return MembersPage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	users := make([]string, 0, len(m.presence[topic]))
	for u := range m.presence[topic] {
		if u > q.After {
			users = append(users, u)
		}
	}
	sort.Strings(users)
	if q.Limit > 0 && len(users) > q.Limit {
		users = users[:q.Limit]
	}
	return MembersPage{Users: users, Count: len(m.presence[topic])}, nil
}

// SweepPresence finds no expired users: in one process, presence ends
// only with a leave or a disconnect.
func (m *Memory) SweepPresence(ctx context.Context, _ string, _ UserTemplate) ([]string, error) {
	return nil, ctx.Err()
}

// Claim records key for ttl and reports whether it was new: the first
// caller gets true, every later caller false until ttl passes.
func (m *Memory) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if exp, ok := m.claims[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.claims[key] = now.Add(ttl)
	return true, nil
}
