package broker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timings of the pub/sub connections.
const (
	// healthInterval is how long a pub/sub connection may stay silent
	// before it is pinged; a second silent interval declares it dead.
	healthInterval = 5 * time.Second
	// routeInterval is how often channels waiting for a shard are retried.
	routeInterval = 500 * time.Millisecond
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
	// subscribeBatch is how many channels one SUBSCRIBE command carries
	// when a connection restores its subscriptions.
	subscribeBatch = 500
)

// pubsubDeps is what the subscription set needs from the broker. It is
// passed in, so the set holds no pointer back to Redis.
type pubsubDeps struct {
	log *slog.Logger
	// endpoint names the connection that serves a channel now: always the
	// same one with a single Redis; in a cluster the master of the
	// channel's slot (a network round trip when the slot map is stale).
	endpoint func(ctx context.Context, channel string) (endpoint, error)
	// refresh reloads the cluster's slot map before channels are routed
	// again; nil with a single Redis.
	refresh func(ctx context.Context)
	// cluster selects the cluster's retirement rules (see shard.failed).
	cluster bool
	// channel names the pub/sub channel of a topic.
	channel func(topic string) string
	// decode turns a pub/sub payload of topic into a message.
	decode func(topic, payload string) (Message, bool)
	// history reads stored messages for gap fills; nil when history is off.
	history func(ctx context.Context, topic string, q HistoryQuery) (HistoryPage, error)
	// epoch reads the data epoch of the Redis a connection was made to;
	// nil in a cluster, whose masters fail over to replicas holding the
	// data.
	epoch func(ctx context.Context) (string, error)
	// deliver receives every message of a wanted channel (set by start).
	deliver func(Message)
	// opTimeout bounds a routing round trip and a gap fill's history read.
	opTimeout time.Duration
}

// endpoint is one Redis (one cluster master) that serves channels.
type endpoint struct {
	addr string // "" for a single Redis
	dial func(ctx context.Context) *redis.PubSub
}

// subscriptions is the node's set of pub/sub subscriptions. It records
// which shard serves each channel the node wants; each shard (one per
// Redis, one per master in a cluster) is a goroutine that owns its
// connection and the state of its channels, and is told what to do by
// commands. A channel a shard gives back (its connection failed in a
// cluster, or Redis moved its slot) waits here for the router to find the
// master that serves it now.
type subscriptions struct {
	deps   pubsubDeps
	ctx    context.Context // cancelled by close; parent of every goroutine
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the router
	fills  chan struct{} // one token per gap fill running

	mu   sync.Mutex
	want map[string]*want // channel → who serves it
	// unrouted counts the wanted channels without a shard, so that the
	// router scans want only when some channel waits (an idle node with
	// many subscriptions costs nothing per tick). Changed only by
	// addWant, dropWant and setShard.
	unrouted int
	shards   map[string]*shard // by endpoint address
	health   map[string]*addrHealth
	closed   bool
}

// want is the node's intent for one channel.
type want struct {
	topic string
	// shard was asked to serve the channel; nil while it waits for a route.
	shard *shard
	// resume is, while the channel waits, the id of the newest stored
	// message delivered on it, so that its next shard fills the gap.
	resume string
}

// addrHealth remembers an endpoint's outage across the shards made for it,
// so that it is logged once and retried with a growing backoff.
type addrHealth struct {
	warned  bool
	backoff time.Duration
}

// maxFills bounds how many gap fills read history at once.
const maxFills = 4

func newSubscriptions(deps pubsubDeps) *subscriptions {
	s := &subscriptions{
		deps:   deps,
		kick:   make(chan struct{}, 1),
		fills:  make(chan struct{}, maxFills),
		want:   make(map[string]*want),
		shards: make(map[string]*shard),
		health: make(map[string]*addrHealth),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// start sets the delivery callback and starts the router.
func (s *subscriptions) start(deliver func(Message)) {
	s.deps.deliver = deliver
	s.wg.Go(s.routeLoop)
}

// close stops every shard and the router and waits for them.
func (s *subscriptions) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// shardFor returns the shard of ep, creating and starting it, or nil once
// the set is closed. Caller holds mu.
func (s *subscriptions) shardFor(ep endpoint) *shard {
	if sh := s.shards[ep.addr]; sh != nil || s.closed {
		return sh
	}
	h := s.health[ep.addr]
	var delay time.Duration
	if h != nil {
		delay = h.backoff // an endpoint that is failing is not hammered
	}
	sh := newShard(s, ep)
	s.shards[ep.addr] = sh
	s.wg.Go(func() { sh.run(delay) })
	return sh
}

// route finds the shard that serves ch now.
func (s *subscriptions) route(ctx context.Context, ch string) (*shard, error) {
	ep, err := s.deps.endpoint(ctx, ch)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh := s.shardFor(ep); sh != nil {
		return sh, nil
	}
	return nil, ErrClosed
}

// live reports whether sh still serves (it has not retired). Caller holds
// mu.
func (s *subscriptions) live(sh *shard) bool { return sh != nil && s.shards[sh.ep.addr] == sh }

// subscribe makes the node want topic and waits until Redis confirms the
// subscription. A call whose context ends first leaves the topic wanted:
// it is subscribed when Redis answers, unless unsubscribe is called. A
// call whose context has already ended changes nothing.
func (s *subscriptions) subscribe(ctx context.Context, topic string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, err)
	}
	ch := s.deps.channel(topic)
	sh, routeErr := s.route(ctx, ch)
	reply := make(chan error, 1)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	w := s.want[ch]
	if w == nil {
		w = s.addWant(ch, topic)
	}
	if w.shard != nil {
		sh = w.shard // already served (perhaps re-routed meanwhile)
	}
	if !s.live(sh) {
		// No route, or the shard retired since routing (a cluster master
		// failed): the router takes the channel over.
		s.mu.Unlock()
		s.wake()
		if routeErr != nil {
			return fail(ctx, routeErr)
		}
		return ErrUnavailable
	}
	s.setShard(w, sh)
	sh.send(subscribeCmd{channel: ch, topic: topic, resume: w.resume, reply: reply})
	w.resume = ""
	s.mu.Unlock()

	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fail(ctx, ctx.Err())
	}
}

// unsubscribe makes the node stop wanting topic. Its shard writes the
// command; a failure to write it is the shard's to handle (the connection
// is broken, and with it the subscription).
func (s *subscriptions) unsubscribe(topic string) {
	ch := s.deps.channel(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.dropWant(ch)
	if w != nil && w.shard != nil {
		w.shard.send(unsubscribeCmd{channel: ch})
	}
}

// addWant records that the node wants ch, not yet served. Caller holds
// mu.
func (s *subscriptions) addWant(ch, topic string) *want {
	w := &want{topic: topic}
	s.want[ch] = w
	s.unrouted++
	return w
}

// dropWant forgets ch and returns what it was. Caller holds mu.
func (s *subscriptions) dropWant(ch string) *want {
	w := s.want[ch]
	if w == nil {
		return nil
	}
	delete(s.want, ch)
	if w.shard == nil {
		s.unrouted--
	}
	return w
}

// setShard records who serves w now (nil: nobody, the router will look).
// Caller holds mu.
func (s *subscriptions) setShard(w *want, sh *shard) {
	switch {
	case w.shard == nil && sh != nil:
		s.unrouted--
	case w.shard != nil && sh == nil:
		s.unrouted++
	}
	w.shard = sh
}

// owns reports whether sh is the shard asked to serve ch.
func (s *subscriptions) owns(sh *shard, ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.want[ch]
	return w != nil && w.shard == sh
}

// giveBack returns channels sh can no longer serve to the router, each with
// the id it left off at. Channels the node no longer wants, or that
// another shard serves by now, are dropped.
func (s *subscriptions) giveBack(sh *shard, resume map[string]string) {
	s.mu.Lock()
	for ch, last := range resume {
		if w := s.want[ch]; w != nil && w.shard == sh {
			s.setShard(w, nil)
			w.resume = last
		}
	}
	s.mu.Unlock()
	s.wake()
}

func (s *subscriptions) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// ready reports whether every wanted channel is confirmed.
func (s *subscriptions) ready(ctx context.Context) error {
	s.mu.Lock()
	pending := 0
	for _, w := range s.want {
		if w.shard == nil {
			pending++
		}
	}
	shards := make([]*shard, 0, len(s.shards))
	for _, sh := range s.shards {
		shards = append(shards, sh)
	}
	s.mu.Unlock()
	for _, sh := range shards {
		n, err := sh.unconfirmed(ctx)
		if err != nil {
			return err
		}
		pending += n
	}
	if pending > 0 {
		return fmt.Errorf("restoring subscriptions: %d not confirmed yet", pending)
	}
	return nil
}

// outage records that addr failed and returns how long to wait before
// trying it again, and whether the failure is news (so that an outage is
// logged as a warning once, not at every retry).
func (s *subscriptions) outage(addr string) (wait time.Duration, news bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health[addr]
	if h == nil {
		h = &addrHealth{}
		s.health[addr] = h
	}
	news = !h.warned
	h.warned = true
	h.backoff = min(max(2*h.backoff, minBackoff), maxBackoff)
	return h.backoff, news
}

// recovered forgets addr's outage, reporting whether it had one.
func (s *subscriptions) recovered(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health[addr]
	delete(s.health, addr)
	return h != nil && h.warned
}

// routeLoop gives channels that wait for a shard (Redis Cluster
// unreachable, a shard lost, a slot moved) to the master that serves them
// now.
func (s *subscriptions) routeLoop() {
	t := time.NewTicker(routeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		s.mu.Lock()
		var waiting []string
		if s.unrouted > 0 {
			for ch, w := range s.want {
				if w.shard == nil {
					waiting = append(waiting, ch)
				}
			}
		}
		s.mu.Unlock()
		if len(waiting) == 0 {
			continue
		}
		if s.deps.refresh != nil {
			s.deps.refresh(s.ctx)
		}
		for _, ch := range waiting {
			ctx, cancel := context.WithTimeout(s.ctx, s.deps.opTimeout)
			sh, err := s.route(ctx, ch)
			cancel()
			if err != nil {
				continue
			}
			s.mu.Lock()
			if w := s.want[ch]; w != nil && w.shard == nil && s.live(sh) {
				s.setShard(w, sh)
				sh.send(subscribeCmd{channel: ch, topic: w.topic, resume: w.resume})
				w.resume = ""
			}
			s.mu.Unlock()
		}
	}
}
