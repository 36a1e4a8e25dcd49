package broker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// shard is one pub/sub connection (one per Redis, one per master in a
// cluster) and the channels it serves. Its run goroutine owns both: other
// goroutines reach it through its inbox (commands, finished gap fills),
// its connection's reader through events. The one exception is the
// reader's fast path (applyNow): a message or subscription answer with
// nothing queued ahead of it is applied on the reader's goroutine, under
// the same lock run holds, which saves a goroutine hand-off per message.
type shard struct {
	set    *subscriptions // for routing hand-offs, retirement and limits
	ep     endpoint
	log    *slog.Logger
	inbox  inbox
	events chan any      // from the connection's reader
	done   chan struct{} // closed when run returns

	connects atomic.Int64 // connections made so far

	// own is held by whoever applies commands and events: run, or a
	// reader in applyNow. queued counts the events emitted to run and not
	// yet applied; the reader applies an event itself only when it is 0,
	// so that events are applied in the order they were read.
	own    sync.Mutex
	queued atomic.Int64
	// stopped is set once run has returned: a reader still reading drops
	// what it reads.
	stopped bool

	// Owned by whoever holds own.
	ps    *redis.PubSub // nil while disconnected
	chans map[string]*channelState
	// epoch is the data epoch of the Redis last connected to (see
	// Redis.readEpoch); lost is true on a connection to a Redis whose
	// epoch changed since: it lost its data (a restart without
	// persistence), so its streams cannot fill a gap.
	epoch string
	lost  bool
}

// Commands a shard takes through its inbox.
type (
	// subscribeCmd asks the shard to serve a channel, resuming after the
	// stored id resume; reply (if set) gets the confirmation.
	subscribeCmd struct {
		channel, topic, resume string
		reply                  chan<- error
	}
	// unsubscribeCmd asks the shard to stop serving a channel.
	unsubscribeCmd struct{ channel string }
	// unconfirmedQuery asks how many of the shard's channels wait for
	// Redis to confirm them.
	unconfirmedQuery struct{ reply chan<- int }
)

// Events of one connection, from the goroutine that reads it.
type (
	connUp struct {
		ps    *redis.PubSub
		epoch string // the Redis data epoch read on connecting; "" if unknown
	}
	connDown struct{ err error }
)

// readerBuffer is how many events a connection's reader may be ahead of
// the shard.
const readerBuffer = 1024

func newShard(set *subscriptions, ep endpoint) *shard {
	return &shard{
		set: set, ep: ep, log: set.deps.log.With("redis", ep.addr),
		inbox:  inbox{ready: make(chan struct{}, 1)},
		events: make(chan any, readerBuffer),
		done:   make(chan struct{}),
		chans:  make(map[string]*channelState),
	}
}

// send hands the shard a command. It never blocks, so it may be called
// with the set's lock held.
func (sh *shard) send(cmd any) { sh.inbox.put(cmd) }

// unconfirmed asks the shard how many of its channels Redis has not
// confirmed yet.
func (sh *shard) unconfirmed(ctx context.Context) (int, error) {
	reply := make(chan int, 1)
	sh.send(unconfirmedQuery{reply})
	select {
	case n := <-reply:
		return n, nil
	case <-sh.done:
		return 0, errors.New("restoring subscriptions: a pub/sub connection retired")
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run serves the shard until the set closes or the shard retires: it
// connects (after delay), restores the shard's channels on every new
// connection, applies commands, and delivers what the connection carries.
func (sh *shard) run(delay time.Duration) {
	defer close(sh.done)
	defer func() {
		sh.own.Lock()
		defer sh.own.Unlock()
		sh.stopped = true
		sh.stop()
	}()
	ctx := sh.set.ctx
	var retry <-chan time.Time
	dialed := false // a shard that has not tried yet keeps the channel it was made for
	dial := func() { dialed = true; sh.dial(ctx) }
	if delay > 0 {
		retry = time.After(delay)
	} else {
		dial()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.inbox.ready:
			sh.own.Lock()
			sh.handleAll()
			sh.own.Unlock()
		case ev := <-sh.events:
			sh.own.Lock()
			if down, ok := ev.(connDown); ok {
				sh.handleAll()
				retry = time.After(sh.failed(down.err))
			} else {
				sh.apply(ev)
			}
			sh.queued.Add(-1)
			sh.own.Unlock()
		case <-retry:
			retry = nil
			sh.own.Lock()
			retire := dialed && sh.retire()
			sh.own.Unlock()
			if retire {
				return
			}
			dial()
		}
	}
}

// apply applies one event of a connection other than its end, after the
// commands waiting: an Unsubscribe that returned before a message was
// published must stop its delivery. Caller holds own.
func (sh *shard) apply(ev any) {
	sh.handleAll()
	switch ev := ev.(type) {
	case connUp:
		sh.connected(ev.ps, ev.epoch)
	case *redis.Subscription:
		sh.onSubscription(ev)
	case *redis.Message:
		sh.onMessage(ev)
	}
}

// applyNow applies a message or subscription answer on the reader's
// goroutine, unless events are queued for run ahead of it (then it
// reports false and the reader emits it). Messages are delivered from
// here, not from run, so that a delivery costs no goroutine hand-off.
func (sh *shard) applyNow(ev any) bool {
	sh.own.Lock()
	defer sh.own.Unlock()
	if sh.stopped {
		return true // nobody is served any more
	}
	if sh.queued.Load() > 0 {
		return false
	}
	sh.apply(ev)
	return true
}

func (sh *shard) handleAll() {
	for _, cmd := range sh.inbox.take() {
		sh.handle(cmd)
	}
}

func (sh *shard) handle(cmd any) {
	switch c := cmd.(type) {
	case subscribeCmd:
		sh.subscribe(c)
	case unsubscribeCmd:
		sh.unsubscribe(c.channel)
	case unconfirmedQuery:
		n := 0
		for _, st := range sh.chans {
			if st.wanted && !st.confirmed {
				n++
			}
		}
		c.reply <- n
	case fillDone:
		sh.filled(c)
	}
}

// stop fails every waiting Subscribe call as the set closes.
func (sh *shard) stop() {
	for _, st := range sh.chans {
		st.release(ErrClosed)
	}
}

// dial starts a goroutine that makes one connection and reads it.
func (sh *shard) dial(ctx context.Context) {
	sh.set.wg.Go(func() { sh.connect(ctx) })
}

// connect makes one connection, hands it to run, and reads it until it
// fails, passing on what it carries. The connection's life is this
// goroutine's: it closes it when reading ends, or at once when ctx ends.
func (sh *shard) connect(ctx context.Context) {
	ps := sh.ep.dial(ctx)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		stop()
		_ = ps.Close()
	}()
	err := ps.Ping(ctx)
	epoch := ""
	if err == nil && sh.set.deps.epoch != nil {
		epoch, err = sh.set.deps.epoch(ctx)
	}
	if err == nil {
		if !sh.emit(ctx, connUp{ps, epoch}) {
			return
		}
		err = receive(ctx, ps, func(ev any) bool {
			if ctx.Err() == nil && sh.applyNow(ev) {
				return true
			}
			return sh.emit(ctx, ev)
		})
	}
	sh.emit(ctx, connDown{err})
}

// emit hands an event to run.
func (sh *shard) emit(ctx context.Context, ev any) bool {
	sh.queued.Add(1)
	select {
	case sh.events <- ev:
		return true
	case <-ctx.Done():
		sh.queued.Add(-1)
		return false
	}
}

// receive reads one connection until it fails, pinging it when silent,
// and emits its subscription events and messages.
func receive(ctx context.Context, ps *redis.PubSub, emit func(any) bool) error {
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
		switch msg.(type) {
		case *redis.Subscription, *redis.Message:
			if !emit(msg) {
				return ctx.Err()
			}
		}
	}
}

// connected installs a fresh connection and asks it for every channel the
// shard serves.
func (sh *shard) connected(ps *redis.PubSub, epoch string) {
	sh.ps = ps
	sh.connects.Add(1)
	sh.lost = sh.epoch != "" && epoch != "" && epoch != sh.epoch
	if sh.lost {
		sh.log.Warn("redis lost its data (its epoch changed): every restored topic with history gets a Gap notice")
	}
	if epoch != "" {
		sh.epoch = epoch
	}
	var chans []string
	for ch := range sh.chans {
		chans = append(chans, ch)
	}
	if sh.set.recovered(sh.ep.addr) {
		sh.log.Info("redis pub/sub reconnected", "restoring", len(chans))
	}
	for start := 0; start < len(chans); start += subscribeBatch {
		if err := sh.write(true, chans[start:min(start+subscribeBatch, len(chans))]...); err != nil {
			sh.log.Debug("restoring subscriptions failed", "err", err)
			return // the reader sees the broken connection, and run starts over
		}
	}
}

// failed forgets a connection that broke and returns how long to wait
// before the next one. Waiting Subscribe calls fail (their channels stay
// wanted), and a gap fill under way is dropped (the next connection's
// covers it). The retirement rules are here and in retire:
//
//   - With a single Redis the shard keeps its channels, reconnects with
//     backoff and restores them all. It never retires.
//   - In a cluster it gives every channel back to the router, since their
//     slots may have moved to another master (a failover), and waits out
//     its backoff. Then it reconnects if the router has given it channels
//     again meanwhile (their master is still this one), and retires if not.
//     Its endpoint's backoff outlives it, so a master that stays down is
//     retried ever more slowly, not in a tight loop of new shards.
func (sh *shard) failed(err error) time.Duration {
	sh.ps = nil
	wait, news := sh.set.outage(sh.ep.addr)
	if news {
		sh.log.Warn("redis pub/sub connection lost; reconnecting", "err", err)
	} else {
		sh.log.Debug("redis pub/sub still unreachable", "err", err)
	}
	resume := make(map[string]string)
	for ch, st := range sh.chans {
		st.confirmed, st.pending, st.fill = false, 0, nil
		st.release(ErrUnavailable)
		if !st.wanted || sh.set.deps.cluster {
			delete(sh.chans, ch)
		}
		if st.wanted && sh.set.deps.cluster {
			resume[ch] = st.lastID
		}
	}
	if len(resume) > 0 {
		sh.set.giveBack(sh, resume)
	}
	return wait
}

// retire reports whether the shard retires, and if so removes it from the
// set: in a cluster, when it has no channel and no command waiting.
func (sh *shard) retire() bool {
	if !sh.set.deps.cluster {
		return false
	}
	s := sh.set
	s.mu.Lock() // commands that give channels are sent under it
	defer s.mu.Unlock()
	if len(sh.chans) > 0 || !sh.inbox.empty() {
		return false
	}
	if s.shards[sh.ep.addr] == sh {
		delete(s.shards, sh.ep.addr)
	}
	return true
}

// inbox is a shard's queue of commands: unbounded, so that senders never
// wait for the shard.
type inbox struct {
	mu    sync.Mutex
	items []any
	ready chan struct{} // gets a token at every put, if it has none
}

func (b *inbox) put(item any) {
	b.mu.Lock()
	b.items = append(b.items, item)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

func (b *inbox) take() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.items
	b.items = nil
	return items
}

func (b *inbox) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items) == 0
}
