package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/conndir"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/rooms"
)

// handleWebSocket upgrades GET /websockets. Postman and browsers need
// nothing but the URL; ?user= names an open-mode connection and ?token=
// carries a ticket in authenticated mode.
func (s *Server) handleWebSocket(c echo.Context) error {
	r := c.Request()
	cr := credentials{open: s.auth == nil, remote: r.RemoteAddr, header: r.Header.Clone(), base: s.publicBase(r)}
	if cr.open {
		cr.user = r.URL.Query().Get("user")
		if cr.user != "" {
			if err := auth.ValidateUser(cr.user); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "user: "+err.Error())
			}
		}
	} else {
		cr.token = r.URL.Query().Get("token")
	}
	lim := newLimiter(limits{
		frameRate: s.cfg.RateLimit, frameBurst: s.cfg.RateBurst,
		byteRate: float64(s.cfg.RateBytes), byteBurst: s.cfg.RateBytesBurst,
		maxStrikes: s.cfg.RateLimitStrikes,
	})
	lean := &leanHijacker{ResponseWriter: c.Response()}
	mark := newReadMark()
	ws, err := websocket.Accept(lean, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.AllowedOrigins,
		OnPingReceived: lim.ping,
		OnPongReceived: mark.heard,
	})
	if err != nil {
		// Accept has answered the request (400, 403 for a foreign Origin…).
		s.log.Info("websocket handshake refused", "err", err, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return nil
	}
	// The connection is served on a goroutine of its own, so that
	// net/http's goroutine (with its grown stack) and the request are
	// released while the socket lives on.
	go s.serveConn(ws, lean.conn, mark, cr, lim)
	return nil
}

// serveConn runs one accepted connection to its end: authenticate, admit,
// serve frames, leave the channels, close. This goroutine is the
// connection's reader and worker: it reads the client's frames and
// processes each before reading the next, so an idle connection is this
// one goroutine parked in Read. Others serve the connection on demand:
//   - frames are sent by whoever produced them when the socket takes them
//     at once (sendQueue.trySend); the writer (writeLoop, writer.go) writes
//     the rest and carries out the close; the send queue starts it when
//     there is something left to write, and serveConn waits for it to
//     finish the close;
//   - server-side tasks (client.run) run on a goroutine started when one is
//     queued, never at the same time as a frame (client.work);
//   - the node's keep-alive schedule (keepAlives, keepalive.go) pings the
//     peer when it is silent, and drops it when a ping goes unanswered.
//
// While a frame is processed nothing reads the socket: a client that
// sends faster than it is served waits in TCP, and time the server spent
// (a slow broker) is credited back to its rate budget (creditFloor). So
// too while the connection is admitted: a peer that leaves meanwhile is
// noticed once admission is done, each of its steps being bounded
// (ADMIT_WAIT, OP_TIMEOUT, the connect webhook's timeout). A
// close request (client.close) is what stops it all: the writer carries
// it out, closing the socket, which ends the Read; every path ends in
// one: Read fails when the peer goes, and serveConn requests one when it
// is done.
func (s *Server) serveConn(ws *websocket.Conn, conn *leanConn, mark *readMark, cr credentials, lim *limiter) {
	cl := newClient(uuid.NewString(), ws, mark, lim, s.cfg.SendQueueBytes, s.cfg.WriteTimeout,
		frameCounters{sent: s.metrics.FramesOut, atOnce: s.metrics.FramesAtOnce}, s.log)
	cl.conn = conn
	lim.onAbuse = func() {
		cl.logger().Info("closing connection flooding with pings")
		cl.close(closeFor(causeRateLimit))
	}
	if !s.track(cl) {
		_ = ws.Close(websocket.StatusGoingAway, causeShutdown.reason())
		return
	}
	defer s.untrack(cl)
	ws.SetReadLimit(s.cfg.MaxFrameBytes)

	// ctx is the connection's: cancelled when it ends, abandoning a task's
	// broker operation in progress.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl.ctx = ctx
	s.keepAlives.add(cl)
	defer s.keepAlives.remove(cl)

	joins, err := s.authenticateAndAdmit(ctx, cl, cr)
	admitted := err == nil
	// The channels are left as soon as a close is requested, by a goroutine
	// of its own: a connection closed for being slow leaves its rooms at
	// once, while this goroutine may still wait in Read for the socket to
	// close.
	var leave sync.Once
	left := make(chan struct{})
	cl.whenClosing(func() {
		leave.Do(func() {
			cancel()       // abandons a broker operation in progress
			cl.work.Lock() // waits for the frame or task in progress; later ones see the close
			if admitted {
				s.leaveAll(cl)
			}
			cl.work.Unlock()
			close(left)
		})
	})
	if admitted {
		cl.work.Lock()
		for _, room := range joins {
			if !cl.isClosing() {
				s.runTask(ctx, cl, func(ctx context.Context) error { return s.node.Rooms.JoinFor(ctx, cl, room) })
			}
		}
		cl.work.Unlock()
		s.serve(ctx, cl)
	}
	var ref *refusal
	if errors.As(err, &ref) {
		cl.close(ref.req)
	}
	cl.close(closeFor(causePeer)) // whatever ended it, unless a cause was given
	<-left
	<-cl.written
	code, reason := cl.outcome()
	cl.logger().Info("disconnected", "cause", cl.closeReq.cause.label(), "code", code, "reason", reason)
	if admitted {
		s.node.Closed(cl.id, cl.user, code, reason)
	}
}

// authenticateAndAdmit runs the steps before serving: it takes what the
// connection presents (waiting for an Authenticate frame if need be),
// verifies the ticket, asks the backend (the connect webhook, when
// API_URI is set) and admits the connection, reporting the rooms the
// backend asked it to join. Verifying and admitting cost broker round
// trips: each runs within an admission slot. Waiting for the client or
// for the backend holds none, so neither a slow client nor a slow backend
// starves the others.
func (s *Server) authenticateAndAdmit(ctx context.Context, cl *client, cr credentials) ([]string, error) {
	ident, token, err := s.credentialsOf(ctx, cl, cr)
	if err != nil {
		return nil, err
	}
	if !cr.open { // every ticket is verified, an empty one too
		err = s.admitted(ctx, cl, cr, func() (err error) {
			ident, err = s.verify(ctx, cl, token, cr.remote)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	ident, joins, err := s.consult(ctx, cl, ident, cr)
	if err != nil {
		return nil, err
	}
	return joins, s.admitted(ctx, cl, cr, func() error { return s.admit(ctx, cl, ident, cr.remote) })
}

// admitted runs step within an admission slot, or refuses the connection
// with 1013 and a retry hint when none comes free in time.
func (s *Server) admitted(ctx context.Context, cl *client, cr credentials, step func() error) error {
	if !s.admission.enter(ctx) {
		cl.logger().Info("admission refused: too many connections being admitted", "remote", cr.remote)
		return &refusal{req: s.admission.busy()}
	}
	defer s.admission.leave()
	return step()
}

// serve processes an admitted connection's frames, one at a time, until
// a close is requested, the peer is gone, or the client floods.
func (s *Server) serve(ctx context.Context, cl *client) {
	cl.beginTasks()
	for !cl.isClosing() {
		data, refused, ok := s.nextFrame(cl)
		if !ok {
			return
		}
		start := time.Now()
		cl.work.Lock()
		if cl.isClosing() { // the connection has left its channels, or is leaving them
			cl.work.Unlock()
			return
		}
		s.noteActivity(ctx, cl)
		keep := true
		if refused {
			s.answer(ctx, cl, "", "", s.rateLimited())
		} else {
			keep = s.handle(ctx, cl, data)
		}
		if keep && cl.roomsDirty {
			s.noteRooms(ctx, cl)
		}
		cl.work.Unlock()
		if took := time.Since(start); took > creditFloor {
			cl.limits.credit(took)
		}
		if !keep {
			return
		}
	}
}

// activityGrain is how precisely the connection directory knows when a
// client last sent a frame: a busy client costs one note per grain, not
// one per frame.
const activityGrain = time.Second

// noteActivity tells the connection directory that the client sent a
// frame, at most once per activityGrain (the directory keeps it locally
// until its next heartbeat).
func (s *Server) noteActivity(ctx context.Context, cl *client) {
	now := time.Now()
	if now.Sub(cl.activityNoted) < activityGrain {
		return
	}
	cl.activityNoted = now
	_ = s.node.Dir.Update(ctx, cl.id, conndir.Change{LastActivity: now})
}

// runTask runs a server-side request (holding work), answering its error
// to the client as the matching client request would have been.
func (s *Server) runTask(ctx context.Context, cl *client, task func(context.Context) error) {
	if err := task(ctx); err != nil {
		s.answer(ctx, cl, protocol.ChannelChatRoom, "", err)
	}
	s.noteRooms(ctx, cl)
}

// noteRooms tells the connection directory the connection's rooms when
// they changed (GET /connections/{id} shows them). The worker calls it
// after every server-side task and after the client frames that may
// change rooms (handle sets roomsDirty), not after every frame.
func (s *Server) noteRooms(ctx context.Context, cl *client) {
	cl.roomsDirty = false
	prefix := channels.RoomTopic("")
	topics := s.node.Hub.TopicsOf(cl.id, prefix)
	rooms := make([]string, len(topics))
	for i, t := range topics {
		rooms[i] = t[len(prefix):]
	}
	slices.Sort(rooms)
	if slices.Equal(rooms, cl.dirRooms) {
		return
	}
	cl.dirRooms = rooms
	uctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if err := s.node.Dir.Update(uctx, cl.id, conndir.Change{Rooms: rooms, SetRooms: true}); err != nil {
		cl.logger().Debug("rooms not updated in the connection directory", "err", err)
	}
}

// surcharge charges a broadcast to everyone (a chat message) CHAT_COST
// times its size in all, reporting false when the budget does not have it.
// A client that keeps trying is closed as flooding, after the answers to
// what it sent before.
func (s *Server) surcharge(cl *client, env protocol.Envelope, size int) bool {
	if env.Channel != protocol.ChannelChat || env.Message.Type != protocol.TypeSubmitMessage {
		return true
	}
	ok, abusive := cl.limits.surcharge((s.cfg.ChatCost - 1) * size)
	if abusive {
		cl.logger().Info("closing flooding connection")
		cl.close(closeFor(causeRateLimit))
	}
	return ok
}

// rateLimited is the answer to a frame the rate limiter dropped.
func (s *Server) rateLimited() error {
	return protocol.Errorf(protocol.CodeRateLimited, "over your budget: at most %g frames and %d bytes per second (chat messages count %d times their size), bursts of %d frames and %d bytes; this frame was dropped",
		s.cfg.RateLimit, s.cfg.RateBytes, s.cfg.ChatCost, s.cfg.RateBurst, s.cfg.RateBytesBurst)
}

// handle processes one frame of an admitted connection. It reports false
// when the connection must end.
func (s *Server) handle(ctx context.Context, cl *client, data []byte) bool {
	env, err := protocol.Decode(data)
	s.countFrame(env.Channel)
	switch {
	case err != nil:
	case !s.surcharge(cl, env, len(data)):
		err = s.rateLimited()
	case env.Channel == protocol.ChannelSession && env.Message.Type == protocol.TypeAuthenticate:
		err = protocol.Errorf(protocol.CodeAlreadyAuthed, "this connection is already authenticated as %q", cl.user)
	case env.Channel == protocol.ChannelSession:
		err = protocol.Errorf(protocol.CodeUnknownType, "channel %q has no message type %q", env.Channel, env.Message.Type)
	default:
		cl.roomsDirty = cl.roomsDirty || changesRooms(env)
		err = s.router.Dispatch(ctx, cl, env)
	}
	if err == nil {
		return true
	}
	return s.answer(ctx, cl, env.Channel, env.Ref, err)
}

// changesRooms reports whether a client frame may change the rooms the
// connection is in.
func changesRooms(env protocol.Envelope) bool {
	return env.Channel == protocol.ChannelChatRoom &&
		(env.Message.Type == protocol.TypeJoinRoom || env.Message.Type == protocol.TypeLeaveRoom)
}

// admit gives the connection its identity, subscribes it to its channels,
// records it in the connection directory and tells the client who it is
// with session/Authenticated (in open mode too): from that frame on, the
// client receives every broadcast. It fails
// with a *refusal when the connection cannot be subscribed.
func (s *Server) admit(ctx context.Context, cl *client, ident auth.Identity, remote string) error {
	cl.user = ident.User
	if ident.Rooms != nil {
		cl.rooms = make(map[string]bool, len(ident.Rooms))
		for _, r := range ident.Rooms {
			cl.rooms[r] = true
		}
	}
	cl.setLogger(cl.logger().With("user", cl.user))
	connectCtx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	err := s.router.Connect(connectCtx, cl)
	cancel()
	if err != nil {
		cl.logger().Warn("cannot subscribe new connection", "err", err)
		return &refusal{req: closeFor(causeUnavailable), err: err}
	}
	// Recorded in the directory before the client learns it is admitted:
	// once it has its Authenticated frame, a crash of this node gets its
	// DELETE sent by a survivor.
	s.node.Opened(ctx, conndir.Record{ID: cl.id, User: cl.user})
	cl.logger().Info("connected", "remote", remote)
	cl.greet(protocol.Encode(protocol.ChannelSession, protocol.TypeAuthenticated,
		protocol.Authenticated{User: cl.user, Connection: cl.id}))
	return nil
}

// answer tells the client why its frame failed, echoing the frame's ref,
// and logs it at the level its cause deserves. It reports false when the connection must end.
func (s *Server) answer(ctx context.Context, cl *client, channel, ref string, err error) bool {
	switch {
	case errors.Is(err, rooms.ErrHoldOverflow):
		cl.logger().Info("closing slow connection during replay")
		cl.close(closeFor(causeSlow))
		return false
	case errors.Is(err, errConnClosing), errors.Is(err, context.Canceled):
		return false
	}
	if channel != "" && !s.router.Known(channel) && channel != protocol.ChannelSession {
		channel = "" // unknown channel: answer on "error"
	}
	perr, serverSide := channels.ClientError(err)
	s.metrics.Errors.WithLabelValues(string(perr.Code)).Inc()
	switch {
	case perr.Code == protocol.CodeInternal:
		cl.logger().Error("frame failed", "channel", channel, "err", err)
	case serverSide:
		// The broker logs the outage itself, once; a line per frame would
		// flood the log while it lasts.
		cl.logger().Info("frame failed", "channel", channel, "code", perr.Code, "err", err)
	default:
		cl.logger().Debug("frame refused", "channel", channel, "code", perr.Code, "err", err)
	}
	_ = cl.Send(ctx, protocol.EncodeErrorReply(channel, ref, perr))
	return true
}

// countFrame counts a received frame under its channel, or "unknown".
func (s *Server) countFrame(channel string) {
	if channel != protocol.ChannelSession && !s.router.Known(channel) {
		channel = "unknown"
	}
	s.metrics.FramesIn.WithLabelValues(channel).Inc()
}

// leaveAll runs every channel's Disconnect. Each broker operation is
// bounded by OP_TIMEOUT on its own, so one slow room does not starve the
// clean-up of the others.
func (s *Server) leaveAll(cl *client) {
	s.router.Disconnect(context.Background(), cl)
}
