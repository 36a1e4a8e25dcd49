// Package relay is the bench's reference point: the simplest WebSocket
// chat-room relay one would write with coder/websocket, speaking enough
// of Switchboard's protocol for the same load generator to drive it. One
// process, no Redis, no history, no presence: per connection a reader
// and a writer goroutine joined by a 256-slot channel; each published
// message is encoded once and offered to every member without blocking
// (a member whose channel is full is disconnected at once, like the
// coder/websocket chat example's closeSlow, without waiting for a close
// handshake its full socket could not carry). Comparing Switchboard with it shows what its features
// cost.
package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/protocol"
)

// queueSlots is how many frames a connection's channel holds before the
// connection is closed as too slow.
const queueSlots = 256

// readLimit is the largest frame the relay reads.
const readLimit = 1 << 20

// writeTimeout bounds one write to a client.
const writeTimeout = 10 * time.Second

// Relay is a running reference relay.
type Relay struct {
	// URL is the WebSocket URL clients dial, ws://127.0.0.1:port/websockets.
	URL string
	// Addr is the host:port it listens on; GET /readyz there answers 200.
	Addr string

	srv    *http.Server
	ctx    context.Context // cancelled by Stop; every connection's goroutines end with it
	cancel context.CancelFunc
	conns  sync.WaitGroup // connection handlers
	served chan error     // result of Serve

	mu      sync.Mutex
	rooms   map[string]map[*conn]struct{}
	stopped bool // set by Stop: no new connection is served
	ids     atomic.Uint64
	dropped atomic.Int64
}

// conn is one client connection.
type conn struct {
	user    string
	ws      *websocket.Conn
	out     chan []byte
	drop    context.CancelFunc // ends the connection: reader, writer and a blocked write
	dropped atomic.Bool        // the queue overflowed
	rooms   map[string]bool    // touched only by the connection's reader
}

// Start listens on 127.0.0.1:0 and serves until Stop (or ctx ends).
func Start(ctx context.Context) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{
		URL:    "ws://" + ln.Addr().String() + "/websockets",
		Addr:   ln.Addr().String(),
		rooms:  make(map[string]map[*conn]struct{}),
		served: make(chan error, 1),
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	mux := http.NewServeMux()
	mux.HandleFunc("/websockets", r.serveWS)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return r.ctx }}
	go func() { r.served <- r.srv.Serve(ln) }()
	go func() {
		<-r.ctx.Done()
		_ = r.srv.Close() // stop accepting; Stop waits for the handlers
	}()
	return r, nil
}

// Stop closes the listener and every connection and waits for their
// goroutines to end. It returns the error that ended serving, if any
// other than the close itself.
func (r *Relay) Stop() error {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
	err := <-r.served
	r.served <- err // a second Stop returns the same
	r.conns.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serveWS upgrades the request and serves the connection until it ends.
func (r *Relay) serveWS(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	r.conns.Add(1)
	r.mu.Unlock()
	defer r.conns.Done()
	ws, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(readLimit)
	id := strconv.FormatUint(r.ids.Add(1), 10)
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	c := &conn{user: req.URL.Query().Get("user"), ws: ws, out: make(chan []byte, queueSlots),
		drop: cancel, rooms: map[string]bool{}}
	if c.user == "" {
		c.user = "relay-" + id
	}

	var writer sync.WaitGroup
	writer.Go(func() { c.write(ctx) })
	c.send(protocol.Encode(protocol.ChannelSession, protocol.TypeAuthenticated,
		protocol.Authenticated{User: c.user, Connection: id}))
	r.read(ctx, c)
	r.leaveAll(c)
	cancel()
	writer.Wait()
	if c.dropped.Load() {
		r.dropped.Add(1)
	}
	_ = ws.CloseNow()
}

// Dropped is how many connections were disconnected because their queue
// was full.
func (r *Relay) Dropped() int64 { return r.dropped.Load() }

// read handles c's frames until the connection ends.
func (r *Relay) read(ctx context.Context, c *conn) {
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		env, err := protocol.Decode(data)
		if err != nil || env.Channel != protocol.ChannelChatRoom {
			continue // the reference relay ignores what it does not serve
		}
		switch env.Message.Type {
		case protocol.TypeJoinRoom:
			var j protocol.JoinRoom
			if protocol.DecodeContents(env.Message, &j) == nil && j.Room != "" {
				r.join(c, j.Room)
			}
		case protocol.TypeSendMessage:
			var m protocol.SendMessage
			if protocol.DecodeContents(env.Message, &m) == nil && c.rooms[m.Room] {
				r.publish(m.Room, protocol.Encode(protocol.ChannelChatRoom, protocol.TypeNewMessage, protocol.RoomMessage{
					Room: m.Room, User: c.user, Message: m.Message, PostedAt: protocol.Timestamp(time.Now()),
				}))
			}
		}
	}
}

// join adds c to room and answers it alone: the member list, then its
// own JoinedRoom (which the load generator waits for). Nobody else is told.
func (r *Relay) join(c *conn, room string) {
	r.mu.Lock()
	members := r.rooms[room]
	if members == nil {
		members = make(map[*conn]struct{})
		r.rooms[room] = members
	}
	members[c] = struct{}{}
	seen := map[string]bool{}
	users := []string{}
	for m := range members {
		if !seen[m.user] {
			seen[m.user] = true
			users = append(users, m.user)
		}
	}
	r.mu.Unlock()
	c.rooms[room] = true
	slices.Sort(users)
	c.send(protocol.Encode(protocol.ChannelChatRoom, protocol.TypeMemberList, protocol.MemberList{Room: room, Users: users}))
	c.send(protocol.Encode(protocol.ChannelChatRoom, protocol.TypeJoinedRoom, protocol.JoinedRoom{Room: room, User: c.user}))
}

// leaveAll removes c from its rooms.
func (r *Relay) leaveAll(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for room := range c.rooms {
		delete(r.rooms[room], c)
		if len(r.rooms[room]) == 0 {
			delete(r.rooms, room)
		}
	}
}

// publish offers one encoded frame to every member of room.
func (r *Relay) publish(room string, frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for m := range r.rooms[room] {
		m.send(frame)
	}
}

// send enqueues frame without blocking; a connection whose queue is full
// is dropped as too slow.
func (c *conn) send(frame []byte) {
	select {
	case c.out <- frame:
	default:
		c.dropped.Store(true)
		c.drop()
	}
}

// write sends queued frames until ctx ends or a write fails.
func (c *conn) write(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case frame := <-c.out:
			wctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err := c.ws.Write(wctx, websocket.MessageText, frame)
			cancel()
			if err != nil {
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}
