package broker

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Presence changes (joins, leaves, sweeps) go to Redis by group commit:
// callers queue them with their node's writer for the topic's Redis (one
// per master in a cluster), and the writer sends everything queued as one
// pipeline, answers each caller with its own reply, and takes the next
// lot. A join storm of N connections thus costs a few round trips, not N
// blocking ones, and a call arriving alone still goes out at once.
//
// A pipeline keeps the order of its commands, and a writer sends one
// pipeline at a time, so changes of one topic reach Redis in the order
// they were queued (a topic's keys all live on one master, served by one
// writer).

// presenceBatch bounds the changes one pipeline carries.
const presenceBatch = 512

// presenceOp is one presence script call waiting for its writer.
type presenceOp struct {
	ctx    context.Context // the caller's: an op whose caller left before its lot is sent is dropped
	script *redis.Script
	keys   []string
	args   []any
	active string             // in a cluster, the topic to add to the index of active topics, or ""
	done   chan presenceReply // buffered: the writer never waits for the caller
}

// presenceReply is a writer's answer to one op: the script's reply, or
// why it could not run.
type presenceReply struct {
	cmd *redis.Cmd
	err error
}

// presenceWriter sends the queued presence changes of one Redis (one
// cluster master). Its run goroutine, owned by the broker, ends when the
// broker closes.
type presenceWriter struct {
	r     *Redis
	inbox inbox
}

// presenceWriters holds a node's writers by Redis address ("" with a
// single Redis), each started on first use.
type presenceWriters struct {
	mu     sync.Mutex
	byAddr map[string]*presenceWriter
	closed bool // set by Close: no writer starts after it
}

// presenceCall queues op with the writer for topic and waits for its
// reply, or for ctx (from op) to end. A cancelled caller stops waiting
// but does not disturb the lot its op went out in.
func (r *Redis) presenceCall(ctx context.Context, topic string, op *presenceOp) (*redis.Cmd, error) {
	if err := ctx.Err(); err != nil {
		return nil, fail(ctx, err)
	}
	w := r.presenceWriter(ctx, topic)
	if w == nil {
		return nil, ErrClosed
	}
	op.ctx, op.done = ctx, make(chan presenceReply, 1)
	w.inbox.put(op)
	select {
	case rep := <-op.done:
		if rep.err != nil {
			return nil, fail(ctx, rep.err)
		}
		return rep.cmd, nil
	case <-ctx.Done():
		return nil, fail(ctx, ctx.Err())
	}
}

// presenceWriter returns the writer serving topic's keys, starting it if
// needed, or nil once the broker is closed. In a cluster, a topic whose
// master is not known yet goes through the writer for "": its pipeline
// is routed by the cluster client all the same.
func (r *Redis) presenceWriter(ctx context.Context, topic string) *presenceWriter {
	addr := ""
	if r.cluster != nil {
		if master, err := r.cluster.MasterForKey(ctx, r.key(topic, ":users")); err == nil {
			addr = master.Options().Addr
		}
	}
	ws := &r.presence.writers
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return nil
	}
	w := ws.byAddr[addr]
	if w == nil {
		if ws.byAddr == nil {
			ws.byAddr = make(map[string]*presenceWriter)
		}
		w = &presenceWriter{r: r, inbox: inbox{ready: make(chan struct{}, 1)}}
		ws.byAddr[addr] = w
		r.wg.Go(w.run)
	}
	return w
}

// close keeps new writers from starting; the running ones end with the
// broker's context. Close calls it before waiting for the goroutines.
func (ws *presenceWriters) close() {
	ws.mu.Lock()
	ws.closed = true
	ws.mu.Unlock()
}

// run sends queued lots until the broker closes, then fails what is left.
func (w *presenceWriter) run() {
	for {
		select {
		case <-w.r.ctx.Done():
			for _, item := range w.inbox.take() {
				item.(*presenceOp).done <- presenceReply{err: ErrClosed}
			}
			return
		case <-w.inbox.ready:
		}
		items := w.inbox.take()
		for len(items) > 0 {
			n := min(len(items), presenceBatch)
			ops := make([]*presenceOp, 0, n)
			for _, item := range items[:n] {
				op := item.(*presenceOp)
				if err := op.ctx.Err(); err != nil {
					op.done <- presenceReply{err: err} // the caller left: nothing to do for it
					continue
				}
				ops = append(ops, op)
			}
			w.send(ops)
			items = items[n:]
		}
	}
}

// send runs ops as one pipeline under the broker's own deadline (not a
// caller's) and answers each with its own reply. A Redis that lost its
// scripts (a restart) gets them loaded again and the ops it refused sent
// again, in order.
func (w *presenceWriter) send(ops []*presenceOp) {
	if len(ops) == 0 {
		return
	}
	r := w.r
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.OpTimeout)
	defer cancel()
	cmds, mark := w.pipeline(ctx, ops)
	var again []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		retry := make([]*presenceOp, len(again))
		for j, i := range again {
			retry[j] = ops[i]
		}
		if err := loadScripts(ctx, r.client, retry); err != nil {
			for _, i := range again {
				cmds[i].SetErr(err)
			}
		} else {
			redone, _ := w.pipeline(ctx, retry)
			for j, i := range again {
				cmds[i] = redone[j]
			}
		}
	}
	for i, op := range ops {
		err := cmds[i].Err()
		if err == nil && op.active != "" && mark != nil {
			err = mark.Err() // the index of active topics must hold the topic too
		}
		op.done <- presenceReply{cmd: cmds[i], err: err}
	}
}

// pipeline sends ops, and in a cluster one ZADD of their topics to the
// index of active topics (mark, nil when none), in one pipeline. Each
// command carries its own error.
func (w *presenceWriter) pipeline(ctx context.Context, ops []*presenceOp) (cmds []*redis.Cmd, mark *redis.IntCmd) {
	r := w.r
	cmds = make([]*redis.Cmd, len(ops))
	_, _ = r.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		var active []redis.Z
		seen := make(map[string]bool)
		for i, op := range ops {
			cmds[i] = op.script.EvalSha(ctx, pipe, op.keys, op.args...)
			if op.active != "" && !seen[op.active] {
				seen[op.active] = true
				active = append(active, redis.Z{Member: op.active})
			}
		}
		if len(active) > 0 {
			mark = pipe.ZAdd(ctx, r.activeKey(), active...)
		}
		return nil
	})
	return cmds, mark
}

// isNoScript tells a reply of a Redis that does not have the script.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// loadScripts loads the scripts ops use (on every master, in a cluster).
func loadScripts(ctx context.Context, c redis.UniversalClient, ops []*presenceOp) error {
	loaded := make(map[*redis.Script]bool)
	for _, op := range ops {
		if loaded[op.script] {
			continue
		}
		loaded[op.script] = true
		if err := op.script.Load(ctx, c).Err(); err != nil {
			return err
		}
	}
	return nil
}
