package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timings of the pub/sub connections.
const (
	// healthInterval is how long a pub/sub connection may stay silent
	// before it is pinged; a second silent interval declares it dead.
	healthInterval = 5 * time.Second
	// routeInterval is how often topics waiting for a shard are retried.
	routeInterval = 500 * time.Millisecond
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
	// subscribeBatch is how many channels one SUBSCRIBE command carries
	// when a connection restores its subscriptions.
	subscribeBatch = 500
)

// subscriptions owns the node's pub/sub connections: one shard per Redis
// (per master in a cluster), each with one go-redis PubSub read by one
// goroutine. It remembers every channel the node wants, so that a shard
// that reconnects restores them all, and in a cluster re-routes them to
// whichever master serves their slot now.
type subscriptions struct {
	r *Redis

	mu     sync.Mutex
	want   map[string]*shard // channel → shard serving it; nil: waiting for a route
	shards map[string]*shard // by master address; "" for a single Redis
	warned map[string]bool   // shards whose outage was logged as a warning
	closed bool
	kick   chan struct{} // wakes the router

	// The delivery path takes only lastMu (never while holding it does
	// anything take mu), so messages never wait behind a (un)subscribe
	// command being written under mu.
	lastMu sync.Mutex
	wanted map[string]bool   // mirror of want's keys
	lastID map[string]string // wanted channel → id of the newest stored message delivered
}

// shard is one pub/sub connection and what it is subscribed to. Every
// field but the constants is guarded by subscriptions.mu.
type shard struct {
	addr      string
	sharded   bool // SSUBSCRIBE rather than SUBSCRIBE
	newPubSub func(ctx context.Context) *redis.PubSub

	ps        *redis.PubSub             // nil while disconnected
	connects  int                       // connections made so far
	confirmed map[string]bool           // channels Redis confirmed on this connection
	inflight  map[string]int            // subscribe commands sent, not yet confirmed
	waiters   map[string][]chan<- error // Subscribe calls waiting for confirmation
}

func (s *subscriptions) init(r *Redis) {
	s.r = r
	s.want = make(map[string]*shard)
	s.shards = make(map[string]*shard)
	s.kick = make(chan struct{}, 1)
	s.lastID = make(map[string]string)
	s.wanted = make(map[string]bool)
	s.warned = make(map[string]bool)
}

// shardLocked returns the shard for addr, creating and starting it, or
// nil once the broker is closed.
func (s *subscriptions) shardLocked(addr string, sharded bool, newPubSub func(context.Context) *redis.PubSub) *shard {
	if sh := s.shards[addr]; sh != nil || s.closed {
		return sh
	}
	sh := &shard{
		addr: addr, sharded: sharded, newPubSub: newPubSub,
		confirmed: make(map[string]bool), inflight: make(map[string]int), waiters: make(map[string][]chan<- error),
	}
	s.shards[addr] = sh
	s.r.wg.Go(func() { s.run(sh) })
	return sh
}

// route finds the shard that serves a channel.
func (s *subscriptions) route(ctx context.Context, ch string) (*shard, error) {
	if s.r.cluster == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.shardOrClosed(s.shardLocked("", false, func(ctx context.Context) *redis.PubSub { return s.r.client.Subscribe(ctx) }))
	}
	master, err := s.r.cluster.MasterForKey(ctx, ch)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shardOrClosed(s.shardLocked(master.Options().Addr, true, func(ctx context.Context) *redis.PubSub { return master.SSubscribe(ctx) }))
}

func (s *subscriptions) shardOrClosed(sh *shard) (*shard, error) {
	if sh == nil {
		return nil, ErrClosed
	}
	return sh, nil
}

// subscribe makes the node want topic and waits until Redis confirms the
// subscription. On error the topic stays wanted and is subscribed when
// Redis is back, unless unsubscribe is called.
func (s *subscriptions) subscribe(ctx context.Context, topic string) error {
	if err := ctx.Err(); err != nil {
		return fail(ctx, err)
	}
	ch := s.r.channel(topic)
	sh, routeErr := s.route(ctx, ch)
	wait := make(chan error, 1)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.setWanted(ch, true)
	if routeErr != nil {
		if _, ok := s.want[ch]; !ok {
			s.want[ch] = nil
		}
		s.mu.Unlock()
		s.wake()
		return unavailable(routeErr)
	}
	if owner := s.want[ch]; owner != nil {
		sh = owner // already served (perhaps re-routed meanwhile)
	}
	if !s.liveLocked(sh) {
		// The shard retired between routing and now (a cluster master
		// failed): leave the channel to the router.
		s.want[ch] = nil
		s.mu.Unlock()
		s.wake()
		return ErrUnavailable
	}
	s.want[ch] = sh
	sh.waiters[ch] = append(sh.waiters[ch], wait)
	if sh.ps != nil {
		// Connected: ask now. Disconnected: the shard asks for every wanted
		// channel when it reconnects, which resolves this waiter too. The
		// command is written under the broker's context, not the caller's:
		// go-redis drops a connection whose write was cancelled, and this
		// one carries every subscription of the node.
		if err := sh.send(s.r.ctx, true, ch); err != nil {
			s.r.log.Debug("subscribe command failed", "channel", ch, "err", err)
		}
	}
	s.mu.Unlock()

	select {
	case err := <-wait:
		return err
	case <-ctx.Done():
		return fail(ctx, ctx.Err())
	}
}

// setWanted records whether ch is wanted, for the delivery path; leaving
// it forgets its last id. Caller holds mu.
func (s *subscriptions) setWanted(ch string, wanted bool) {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	if wanted {
		s.wanted[ch] = true
		return
	}
	delete(s.wanted, ch)
	delete(s.lastID, ch)
}

// forget drops ch's last id: live traffic starts afresh.
func (s *subscriptions) forget(ch string) {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	delete(s.lastID, ch)
}

// liveLocked reports whether sh still serves (it is not retired).
func (s *subscriptions) liveLocked(sh *shard) bool { return s.shards[sh.addr] == sh }

// unsubscribe makes the node stop wanting topic. The command is written
// under the broker's context (see subscribe), bounded by go-redis's write
// timeout.
func (s *subscriptions) unsubscribe(topic string) error {
	ch := s.r.channel(topic)
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.want[ch]
	delete(s.want, ch)
	s.setWanted(ch, false)
	if sh == nil {
		return nil
	}
	delete(sh.confirmed, ch)
	if sh.ps == nil {
		return nil // the connection is gone, and with it the subscription
	}
	return unavailable(sh.send(s.r.ctx, false, ch))
}

// send writes a (un)subscribe command for channels. Caller holds s.mu.
func (sh *shard) send(ctx context.Context, subscribe bool, channels ...string) error {
	if subscribe {
		for _, ch := range channels {
			sh.inflight[ch]++
		}
	}
	switch {
	case subscribe && sh.sharded:
		var first error
		for _, ch := range channels { // one command per channel: channels of one SSUBSCRIBE must share a slot
			if err := sh.ps.SSubscribe(ctx, ch); err != nil && first == nil {
				first = err
			}
		}
		return first
	case subscribe:
		return sh.ps.Subscribe(ctx, channels...)
	case sh.sharded:
		return sh.ps.SUnsubscribe(ctx, channels...)
	default:
		return sh.ps.Unsubscribe(ctx, channels...)
	}
}

func (s *subscriptions) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// ready reports whether every wanted channel is confirmed.
func (s *subscriptions) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	for ch, sh := range s.want {
		if sh == nil || !sh.confirmed[ch] {
			pending++
		}
	}
	if pending > 0 {
		return fmt.Errorf("restoring subscriptions: %d not confirmed yet", pending)
	}
	return nil
}

// closeAll closes every pub/sub connection, ending the shard goroutines
// (whose context is already cancelled).
func (s *subscriptions) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, sh := range s.shards {
		if sh.ps != nil {
			_ = sh.ps.Close()
		}
	}
}

// routeLoop gives channels that wait for a shard (Redis Cluster
// unreachable, or a shard lost) to the master that serves them now.
func (s *subscriptions) routeLoop() {
	ctx := s.r.ctx
	t := time.NewTicker(routeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		s.mu.Lock()
		var unrouted []string
		for ch, sh := range s.want {
			if sh == nil {
				unrouted = append(unrouted, ch)
			}
		}
		s.mu.Unlock()
		if len(unrouted) == 0 {
			continue
		}
		if s.r.cluster != nil {
			s.r.cluster.ReloadState(ctx)
		}
		for _, ch := range unrouted {
			opCtx, cancel := context.WithTimeout(ctx, s.r.opts.OpTimeout)
			sh, err := s.route(opCtx, ch)
			cancel()
			if err != nil {
				continue
			}
			s.mu.Lock()
			if owner, ok := s.want[ch]; ok && owner == nil && s.liveLocked(sh) {
				s.want[ch] = sh
				if sh.ps != nil {
					_ = sh.send(ctx, true, ch)
				}
			}
			s.mu.Unlock()
		}
	}
}

// run keeps one shard connected until the broker closes: connect, restore
// the shard's channels, receive until the connection fails, back off,
// repeat. In a cluster a failed shard retires instead: its channels go
// back to the router, which may find their slots on another master.
func (s *subscriptions) run(sh *shard) {
	ctx := s.r.ctx
	log := s.r.log.With("redis", sh.addr)
	backoff := minBackoff
	for ctx.Err() == nil {
		ps := sh.newPubSub(ctx)
		err := ps.Ping(ctx)
		if err == nil {
			n := s.connected(sh, ps)
			if s.recovered(sh.addr) {
				log.Info("redis pub/sub reconnected", "restoring", n)
			}
			backoff = minBackoff
			err = s.receive(ctx, sh, ps)
		}
		_ = ps.Close()
		if ctx.Err() != nil {
			return
		}
		if s.outage(sh.addr) {
			log.Warn("redis pub/sub connection lost; reconnecting", "err", err)
		} else {
			log.Debug("redis pub/sub still unreachable", "err", err)
		}
		if retired := s.lost(sh); retired {
			return
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, maxBackoff)
		if s.idle(sh) {
			return // no channel came back to this address: it retired
		}
	}
}

// idle retires a cluster shard that never connected once the router has
// given all its channels to other masters (a failover). A shard that keeps
// its channels keeps retrying, with backoff, rather than being recreated
// in a tight loop while its master is down.
func (s *subscriptions) idle(sh *shard) bool {
	if s.r.cluster == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, owner := range s.want {
		if owner == sh {
			return false
		}
	}
	if s.shards[sh.addr] == sh {
		delete(s.shards, sh.addr)
	}
	return true
}

// outage records that addr failed, reporting whether this is news (so an
// outage is logged as a warning once, not at every retry).
func (s *subscriptions) outage(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	news := !s.warned[addr]
	s.warned[addr] = true
	return news
}

// recovered reports whether addr had an outage logged, and forgets it.
func (s *subscriptions) recovered(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.warned[addr]
	delete(s.warned, addr)
	return was
}

// connected installs a fresh connection and asks it for every channel the
// shard serves. It returns how many.
func (s *subscriptions) connected(sh *shard, ps *redis.PubSub) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh.ps = ps
	sh.connects++
	var chans []string
	for ch, owner := range s.want {
		if owner == sh {
			chans = append(chans, ch)
		}
	}
	for start := 0; start < len(chans); start += subscribeBatch {
		batch := chans[start:min(start+subscribeBatch, len(chans))]
		if err := sh.send(s.r.ctx, true, batch...); err != nil {
			s.r.log.Debug("restoring subscriptions failed", "redis", sh.addr, "err", err)
			break // the receiver sees the broken connection and starts over
		}
	}
	return len(chans)
}

// lost forgets a shard's connection: waiting Subscribe calls fail (their
// topics stay wanted). In a cluster its channels go back to the router,
// since their slots may have moved to another master; a shard that had
// connected retires (it reports true), one that never did stays to retry
// with backoff (see idle).
func (s *subscriptions) lost(sh *shard) (retired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh.ps = nil
	clear(sh.confirmed)
	clear(sh.inflight)
	for ch, ws := range sh.waiters {
		for _, w := range ws {
			w <- ErrUnavailable
		}
		delete(sh.waiters, ch)
	}
	if s.r.cluster == nil {
		return false
	}
	for ch, owner := range s.want {
		if owner == sh {
			s.want[ch] = nil
		}
	}
	s.wake()
	if sh.connects == 0 {
		return false
	}
	if s.shards[sh.addr] == sh {
		delete(s.shards, sh.addr)
	}
	return true
}

// receive reads one connection until it fails, pinging it when silent.
func (s *subscriptions) receive(ctx context.Context, sh *shard, ps *redis.PubSub) error {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
			if pinged {
				return errors.New("no answer to ping")
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			s.onSubscription(ctx, sh, m)
		case *redis.Message:
			s.onMessage(m)
		}
	}
}

// onSubscription counts confirmations. When every subscribe command sent
// for a channel is confirmed, its waiters are released; if it was already
// carrying stored messages before, the ones published while it was
// disconnected are delivered first (gap fill).
func (s *subscriptions) onSubscription(ctx context.Context, sh *shard, m *redis.Subscription) {
	switch m.Kind {
	case "subscribe", "ssubscribe":
		s.mu.Lock()
		if sh.inflight[m.Channel]--; sh.inflight[m.Channel] > 0 {
			s.mu.Unlock()
			return
		}
		delete(sh.inflight, m.Channel)
		wanted := s.want[m.Channel] == sh
		if wanted {
			sh.confirmed[m.Channel] = true
		}
		waiters := sh.waiters[m.Channel]
		delete(sh.waiters, m.Channel)
		s.mu.Unlock()
		if wanted {
			s.fillGap(ctx, m.Channel)
		}
		for _, w := range waiters {
			w <- nil
		}
	case "unsubscribe", "sunsubscribe":
		// Redis unsubscribes shard channels by itself when their slot moves
		// to another master: if the node still wants one, re-route it.
		s.mu.Lock()
		if s.want[m.Channel] == sh && sh.inflight[m.Channel] == 0 && sh.confirmed[m.Channel] {
			delete(sh.confirmed, m.Channel)
			s.want[m.Channel] = nil
			s.r.log.Info("redis moved a subscription; re-routing", "channel", m.Channel)
			s.wake()
		}
		s.mu.Unlock()
	}
}

// onMessage delivers one pub/sub message, skipping stored messages
// already delivered by a gap fill and messages of channels the node no
// longer wants (still in flight when it unsubscribed).
func (s *subscriptions) onMessage(m *redis.Message) {
	topic, ok := s.r.topicOf(m.Channel)
	if !ok {
		return
	}
	msg, ok := s.r.decodePayload(topic, m.Payload)
	if !ok {
		s.r.log.Error("dropping malformed pub/sub payload", "channel", m.Channel)
		return
	}
	if !s.advance(m.Channel, msg.ID) {
		return
	}
	s.r.deliver(msg)
}

// advance records id as the newest stored message delivered on a wanted
// channel. It reports false for an unwanted channel, or for a stored
// message not newer than the last one delivered (a duplicate).
func (s *subscriptions) advance(ch, id string) bool {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	if !s.wanted[ch] {
		return false
	}
	if id == "" {
		return true
	}
	if last, ok := s.lastID[ch]; ok && CompareIDs(id, last) <= 0 {
		return false
	}
	s.lastID[ch] = id
	return true
}

// Bounds of a gap fill: what a node replays by itself after its pub/sub
// connection came back. Small enough that its members' send queues take it
// on top of live traffic; a larger gap is handed to them as a Gap message.
const (
	gapFillMessages = 1000
	gapFillBytes    = 256 << 10
)

// fillGap delivers the stored messages of a re-subscribed channel that
// were published after the last one this node delivered, so that a broken
// pub/sub connection loses nothing that Redis kept. It runs on the
// receiving goroutine, before any later message of the connection, which
// keeps every topic in order; the cost is one bounded history read per
// restored channel that had carried stored messages. A gap beyond the
// bounds is not replayed: a Gap message tells the topic's subscribers to
// catch up from history themselves (their clients resume with since).
func (s *subscriptions) fillGap(ctx context.Context, ch string) {
	s.lastMu.Lock()
	last, ok := s.lastID[ch]
	s.lastMu.Unlock()
	if !ok || s.r.opts.HistorySize == 0 {
		return
	}
	topic, _ := s.r.topicOf(ch)
	page, err := s.r.History(ctx, topic, HistoryQuery{Since: last, Limit: gapFillMessages, MaxBytes: gapFillBytes})
	trimmed := err == nil && len(page.Messages) > 0 && !page.Recovered
	if err != nil || !page.Complete || trimmed {
		// Too much to replay here, some of it already trimmed, or no way to
		// read it: the clients catch up from history themselves.
		s.r.log.Warn("messages were missed while disconnected; asking the topic's clients to catch up",
			"topic", topic, "err", err, "trimmed", trimmed)
		s.forget(ch)
		s.r.deliver(Message{Topic: topic, Gap: true})
		return
	}
	if len(page.Messages) > 0 {
		s.r.log.Info("delivering messages published while disconnected", "topic", topic, "count", len(page.Messages))
	}
	for _, m := range page.Messages {
		if s.advance(ch, m.ID) {
			s.r.deliver(m)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
