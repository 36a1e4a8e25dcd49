package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/webhook"
)

// consult asks the backend (the connect webhook, when API_URI is set)
// whether an authenticated connection may open. The backend may rename
// the user and name rooms for it to join once admitted. A refusal, an
// unreachable backend (unless WEBHOOK_FAIL_OPEN) or an invalid answer is a
// *refusal closing the socket with 1008.
func (s *Server) consult(ctx context.Context, cl *client, ident auth.Identity, cr credentials) (auth.Identity, []string, error) {
	if s.node.Webhook == nil {
		return ident, nil, nil
	}
	reply, err := s.node.Admit(ctx, webhook.ConnectEvent{
		Connection: cl.id,
		User:       ident.User,
		WSURI:      cr.base + "/connections/" + cl.id,
		Header:     webhook.ForwardHeader(cr.header, s.cfg.WebhookCookies),
	})
	if err != nil {
		if ctx.Err() != nil {
			return ident, nil, ctx.Err() // the peer left while the backend thought
		}
		reason := "refused by backend"
		var werr *webhook.Error
		if errors.As(err, &werr) {
			reason = werr.CloseReason()
		}
		cl.logger().Info("connection refused by the backend", "reason", reason, "err", err, "remote", cr.remote)
		return ident, nil, &refusal{req: closeRequest{cause: causeRefused, code: websocket.StatusPolicyViolation, reason: reason}, err: err}
	}
	if reply.User != ident.User {
		if err := auth.ValidateUser(reply.User); err != nil {
			cl.logger().Warn("backend named an invalid user", "user", reply.User, "err", err)
			return ident, nil, &refusal{req: closeRequest{cause: causeRefused, code: websocket.StatusPolicyViolation, reason: "backend named an invalid user"}, err: err}
		}
		ident.User = reply.User
	}
	return ident, reply.Rooms, nil
}

// publicBase is the base URL of ws_uri: PUBLIC_URL, or the scheme and host
// the handshake came to.
func (s *Server) publicBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// control carries out a command from the server API for this node's
// connections (node.Controller). It never waits: closes and pushes take
// effect at once; joins and leaves are queued for each connection's worker.
func (s *Server) control(cmd node.Command) {
	for _, id := range cmd.Conns {
		s.mu.Lock()
		cl := s.byID[id]
		s.mu.Unlock()
		if cl == nil {
			continue // closed meanwhile
		}
		switch cmd.Op {
		case node.OpClose:
			code := websocket.StatusCode(cmd.Code)
			if code == 0 {
				code = websocket.StatusNormalClosure
			}
			cl.logger().Info("closing connection for the server API", "code", int(code), "reason", cmd.Reason)
			cl.close(closeRequest{cause: causeKicked, code: code, reason: cmd.Reason})
		case node.OpPush:
			cl.Deliver(cmd.Frame)
		case node.OpJoin, node.OpLeave:
			room := cmd.Room
			task := func(ctx context.Context) error { return s.node.Rooms.JoinFor(ctx, cl, room) }
			if cmd.Op == node.OpLeave {
				task = func(ctx context.Context) error { _, err := s.node.Rooms.LeaveFor(ctx, cl, room); return err }
			}
			if !cl.run(func(ctx context.Context) { s.runTask(ctx, cl, task) }) {
				cl.logger().Warn("server-side room request dropped: the connection is closing or has too many waiting", "op", cmd.Op, "room", room)
			}
		default:
			s.log.Warn("unknown control command", "op", cmd.Op)
		}
	}
}
