package server

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/rooms"
)

// handleWebSocket upgrades GET /websockets. Postman and browsers need
// nothing but the URL; ?user= names an open-mode connection and ?token=
// carries a ticket in authenticated mode.
func (s *Server) handleWebSocket(c echo.Context) error {
	r := c.Request()
	cr := credentials{open: s.auth == nil, remote: r.RemoteAddr}
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
	ws, err := websocket.Accept(c.Response(), r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.AllowedOrigins,
		OnPingReceived: lim.ping,
	})
	if err != nil {
		// Accept has answered the request (400, 403 for a foreign Origin…).
		s.log.Info("websocket handshake refused", "err", err, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return nil
	}
	s.serveConn(ws, cr, lim)
	return nil
}

// serveConn runs one accepted connection to its end: authenticate, admit,
// serve frames, leave the channels, close. This goroutine is the worker:
// it processes the client's frames one at a time, in order. Three more
// goroutines serve the connection, started here and waited for before
// serveConn returns:
//   - the reader (read, reader.go) reads frames and hands them to the
//     worker, so that pings and close frames are read even while the worker
//     waits for the broker;
//   - the writer (writeLoop, writer.go) writes the queued frames and carries
//     out the close;
//   - the keep-alive (keepAlive, keepalive.go) pings the peer.
//
// A close request (client.close) is what stops them all: the worker, the
// writer and the keep-alive stop on it, the writer carries it out, and
// the reader stops when the closed socket fails its Read (or on the
// request itself while it waits for the worker). Every path ends in one:
// the reader requests one when the peer goes, and serveConn when the
// worker is done.
func (s *Server) serveConn(ws *websocket.Conn, cr credentials, lim *limiter) {
	cl := newClient(uuid.NewString(), ws, lim, s.cfg.SendQueueBytes, s.cfg.WriteTimeout, s.metrics.FramesOut, s.log)
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

	// ctx is the worker's and the keep-alive's: the reader cancels it when
	// the peer is gone, abandoning the broker operation in progress.
	ctx, peerGone := context.WithCancel(context.Background())
	defer peerGone()
	// Frames read, waiting for the worker. When it is full the reader
	// waits: the client sends faster than the server processes.
	frames := make(chan inboxFrame, inboxFrames)
	var wg sync.WaitGroup
	wg.Go(cl.writeLoop)
	wg.Go(func() { cl.keepAlive(ctx, s.cfg.WSTimeout/2) })
	wg.Go(func() { s.read(ctx, cl, frames, peerGone) })

	err := s.authenticateAndAdmit(ctx, cl, frames, cr)
	if err == nil {
		s.serve(ctx, cl, frames)
		s.leaveAll(cl)
	}
	var ref *refusal
	if errors.As(err, &ref) {
		cl.close(ref.req)
	}
	cl.close(closeFor(causePeer)) // whatever ended it, unless a cause was given
	wg.Wait()
	cl.logger().Info("disconnected", "cause", cl.closeReq.cause.label(), "code", int(cl.closeReq.code), "reason", cl.closeReq.reason)
}

// authenticateAndAdmit runs the steps before serving: it takes what the
// connection presents (waiting for an Authenticate frame if need be),
// then, within an admission slot, verifies the ticket and admits the
// connection. Only the steps that cost broker round trips hold a slot, so
// clients slow to authenticate cannot starve the others.
func (s *Server) authenticateAndAdmit(ctx context.Context, cl *client, frames <-chan inboxFrame, cr credentials) error {
	ident, token, err := s.credentialsOf(ctx, cl, frames, cr)
	if err != nil {
		return err
	}
	if !s.admission.enter(ctx) {
		cl.logger().Info("admission refused: too many connections being admitted", "remote", cr.remote)
		return &refusal{req: s.admission.busy()}
	}
	defer s.admission.leave()
	if token != "" {
		if ident, err = s.verify(ctx, cl, token, cr.remote); err != nil {
			return err
		}
	}
	return s.admit(ctx, cl, ident, cr.remote)
}

// next waits for the client's next frame. It fails once a close is
// requested or ctx ends.
func (c *client) next(ctx context.Context, frames <-chan inboxFrame) (inboxFrame, error) {
	select {
	case in := <-frames:
		return in, nil
	case <-c.closing:
		return inboxFrame{}, errConnClosing
	case <-ctx.Done():
		return inboxFrame{}, ctx.Err()
	}
}

// serve processes an admitted connection's frames until a close is
// requested, the peer is gone, or the client floods.
func (s *Server) serve(ctx context.Context, cl *client, frames <-chan inboxFrame) {
	for {
		in, err := cl.next(ctx, frames)
		switch {
		case err != nil:
			return
		case in.flooded:
			cl.close(closeFor(causeRateLimit))
			return
		case in.refused:
			s.answer(ctx, cl, "", "", s.rateLimited())
		case !s.handle(ctx, cl, in.data):
			return
		}
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
		err = s.router.Dispatch(ctx, cl, env)
	}
	if err == nil {
		return true
	}
	return s.answer(ctx, cl, env.Channel, env.Ref, err)
}

// admit gives the connection its identity, subscribes it to its channels
// and tells the client who it is with session/Authenticated (in open mode
// too): from that frame on, the client receives every broadcast. It fails
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
