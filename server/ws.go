package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

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
	var ident *auth.Identity
	if s.auth == nil {
		user := r.URL.Query().Get("user")
		if user != "" {
			if err := auth.ValidateUser(user); err != nil {
				return echo.NewHTTPError(http.StatusBadRequest, "user: "+err.Error())
			}
		}
		ident = &auth.Identity{User: user}
	}
	ws, err := websocket.Accept(c.Response(), r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		// Accept has answered the request (400, 403 for a foreign Origin…).
		s.log.Info("websocket handshake refused", "err", err, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		return nil
	}
	s.serveConn(ws, ident, r.URL.Query().Get("token"), r.RemoteAddr)
	return nil
}

// serveConn runs one connection to its end. This goroutine is the
// reader: it only reads and rate-limits frames, so that pings are answered
// even while a slow operation (Redis) is being waited for. A worker
// goroutine processes the frames in order; a writer goroutine writes; a
// pinger keeps the connection alive. serveConn owns all three and waits for
// them.
func (s *Server) serveConn(ws *websocket.Conn, ident *auth.Identity, token, remote string) {
	cl := newClient(uuid.NewString(), ws, s.cfg.SendQueueBytes, s.cfg.WriteTimeout, s.metrics.FramesOut, s.log)
	if !s.track(cl) {
		_ = ws.Close(websocket.StatusGoingAway, reasonShutdown)
		return
	}
	defer s.untrack(cl)
	ws.SetReadLimit(s.cfg.MaxFrameBytes)

	ctx, cancel := context.WithCancel(context.Background())
	// Frames read, waiting for the worker. When it is full the reader
	// waits: the client sends faster than the server processes.
	inbox := make(chan inboxFrame, inboxFrames)
	var wg sync.WaitGroup
	worked := make(chan struct{})
	wg.Go(cl.writeLoop)
	wg.Go(func() { cl.pingLoop(ctx, s.cfg.WSTimeout/2) })
	wg.Go(func() { defer close(worked); s.work(ctx, cl, inbox, ident, token, remote) })

	if drain := s.read(ctx, cl, inbox); drain {
		<-worked // it answers what was read, then closes the connection
	}
	cancel() // the worker abandons what it was doing; its clean-up does not depend on ctx
	wg.Wait()
	cl.logger().Info("disconnected", "code", int(cl.closeReq.code), "reason", cl.closeReq.reason)
}

// inboxFrames is how many read frames may wait for a connection's worker.
// Small on purpose: it is per connection, and the rate limit, not this
// buffer, is what bounds a client.
const inboxFrames = 16

// inboxFrame is a frame read from the client; refused means the rate
// limiter dropped it and the worker answers rate_limited; flooded means
// the reader stopped: the worker answers what came before, then closes.
type inboxFrame struct {
	data    []byte
	refused bool
	flooded bool
}

// read reads frames until the connection ends or closes, applying the
// rate limit, and hands them to the worker in order. It reports true when
// it stopped for flooding and the worker must finish the connection.
func (s *Server) read(ctx context.Context, cl *client, inbox chan<- inboxFrame) (drain bool) {
	lim := newLimiter(s.cfg.RateLimit, s.cfg.RateBurst, s.cfg.RateLimitStrikes)
	for {
		_, data, err := cl.ws.Read(ctx)
		if err != nil {
			s.readEnded(cl, err)
			return
		}
		ok, abusive := lim.allow()
		if abusive {
			// The client still gets the answers to what it sent before,
			// its rate_limited errors included, then the close frame. Nobody
			// reads its pongs from here on: the pinger must leave it be.
			cl.logger().Info("closing flooding connection")
			cl.readerWaited.Store(true)
			drained := cl.handOver(inbox, inboxFrame{flooded: true})
			cl.readerWaiting.Store(true)
			return drained
		}
		if !cl.handOver(inbox, inboxFrame{data: data, refused: !ok}) {
			return false
		}
	}
}

// work admits the connection (at once, or when Authenticate arrives) and
// processes its frames until ctx ends; then it leaves every channel.
func (s *Server) work(ctx context.Context, cl *client, inbox <-chan inboxFrame, ident *auth.Identity, token, remote string) {
	defer func() {
		// The peer closed, or a close was requested; either way the writer ends.
		cl.close(closeRequest{why: "peer", now: true})
	}()
	admitted := false
	stopDeadline := func() bool { return true } // stops the authentication deadline, if any
	switch {
	case ident != nil:
		if ident.User == "" {
			ident.User = cl.id // anonymous: the connection id is the user id
		}
		admitted = s.admit(ctx, cl, *ident, remote)
	case token != "":
		admitted = s.verify(ctx, cl, token, remote)
	default:
		timer := time.AfterFunc(s.cfg.AuthTimeout, func() {
			cl.logger().Info("authentication timeout", "remote", remote)
			cl.close(closeRequest{why: "auth", code: websocket.StatusPolicyViolation, reason: "authentication timeout"})
		})
		defer timer.Stop()
		stopDeadline = timer.Stop
	}
	if !admitted && (ident != nil || token != "") {
		return
	}
	if admitted {
		defer s.leaveAll(cl)
	}
	for {
		var in inboxFrame
		select {
		case <-ctx.Done():
			return
		case <-cl.closing:
			return
		case in = <-inbox:
		}
		if in.flooded {
			cl.close(closeRequest{why: "rate_limit", code: websocket.StatusPolicyViolation, reason: reasonRateLimited, flush: true})
			return
		}
		if in.refused {
			s.answer(ctx, cl, "", protocol.Errorf(protocol.CodeRateLimited, "too many frames: at most %g per second, bursts of %d; this frame was dropped", s.cfg.RateLimit, s.cfg.RateBurst))
			continue
		}
		if admitted {
			if !s.handle(ctx, cl, in.data) {
				return
			}
			continue
		}
		// Before admission only Authenticate is processed.
		token, ok := s.authenticateFrame(ctx, cl, in.data)
		if !ok {
			continue
		}
		if !stopDeadline() {
			return // the deadline passed meanwhile; the connection is closing
		}
		if admitted = s.verify(ctx, cl, token, remote); !admitted {
			return
		}
		defer s.leaveAll(cl)
	}
}

// leaveAll runs every channel's Disconnect. Each broker operation is
// bounded by OP_TIMEOUT on its own, so one slow room does not starve the
// clean-up of the others.
func (s *Server) leaveAll(cl *client) {
	s.router.Disconnect(context.Background(), cl)
}

// authenticateFrame reads the ticket from a pre-admission frame, answering
// anything else with an Error.
func (s *Server) authenticateFrame(ctx context.Context, cl *client, data []byte) (string, bool) {
	env, err := protocol.Decode(data)
	s.countFrame(env.Channel)
	if err != nil {
		s.answer(ctx, cl, env.Channel, err)
		return "", false
	}
	if env.Channel != protocol.ChannelSession || env.Message.Type != protocol.TypeAuthenticate {
		s.answer(ctx, cl, env.Channel, protocol.Errorf(protocol.CodeUnauthenticated, "send Authenticate on channel session first"))
		return "", false
	}
	var req protocol.Authenticate
	if err := protocol.DecodeContents(env.Message, &req); err != nil {
		s.answer(ctx, cl, env.Channel, err)
		return "", false
	}
	return req.Token, true
}

// handle processes one frame of an admitted connection. It reports false
// when the connection must end.
func (s *Server) handle(ctx context.Context, cl *client, data []byte) bool {
	env, err := protocol.Decode(data)
	s.countFrame(env.Channel)
	switch {
	case err != nil:
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
	return s.answer(ctx, cl, env.Channel, err)
}

// verify checks a ticket and admits the connection, or closes it with 1008
// (1013 when the ticket could not be checked) and the reason.
func (s *Server) verify(ctx context.Context, cl *client, token, remote string) bool {
	ident, err := s.auth.Verify(ctx, token)
	if err != nil {
		code, reason := websocket.StatusPolicyViolation, "authentication failed"
		var rej *auth.Rejection
		if errors.As(err, &rej) {
			reason = rej.Reason
			if rej.Retry {
				code = websocket.StatusTryAgainLater
			}
		}
		cl.logger().Info("ticket refused", "reason", reason, "err", err, "remote", remote)
		cl.close(closeRequest{why: "auth", code: code, reason: reason})
		return false
	}
	return s.admit(ctx, cl, ident, remote)
}

// admit gives the connection its identity, subscribes it to its channels
// and tells the client who it is with session/Authenticated (in open mode
// too): from that frame on, the client receives every broadcast.
func (s *Server) admit(ctx context.Context, cl *client, ident auth.Identity, remote string) bool {
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
		cl.close(closeRequest{why: "unavailable", code: websocket.StatusTryAgainLater, reason: "server cannot subscribe you now, try again"})
		return false
	}
	cl.logger().Info("connected", "remote", remote)
	cl.greet(protocol.Encode(protocol.ChannelSession, protocol.TypeAuthenticated,
		protocol.Authenticated{User: cl.user, Connection: cl.id}))
	return true
}

// answer tells the client why its frame failed and logs it at the level
// its cause deserves. It reports false when the connection must end.
func (s *Server) answer(ctx context.Context, cl *client, channel string, err error) bool {
	switch {
	case errors.Is(err, rooms.ErrHoldOverflow):
		cl.logger().Info("closing slow connection during replay")
		cl.close(closeRequest{why: "slow", code: websocket.StatusPolicyViolation, reason: reasonTooSlow})
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
	_ = cl.Send(ctx, protocol.EncodeError(channel, perr))
	return true
}

// countFrame counts a received frame under its channel, or "unknown".
func (s *Server) countFrame(channel string) {
	if channel != protocol.ChannelSession && !s.router.Known(channel) {
		channel = "unknown"
	}
	s.metrics.FramesIn.WithLabelValues(channel).Inc()
}

// readEnded logs why a connection's reader stopped.
func (s *Server) readEnded(cl *client, err error) {
	switch status := websocket.CloseStatus(err); {
	case errors.Is(err, websocket.ErrMessageTooBig):
		// coder/websocket has already sent the 1009 close frame.
		cl.logger().Info("frame too large", "limit", s.cfg.MaxFrameBytes)
		cl.close(closeRequest{why: "too_big", now: true})
	case status != -1:
		cl.logger().Debug("peer closed", "code", int(status))
	default:
		cl.logger().Debug("read ended", "err", err)
	}
}
