package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/protocol"
)

// credentials are what the WebSocket handshake carried.
type credentials struct {
	open   bool        // open mode: user is the identity
	user   string      // ?user= in open mode; "" for an anonymous connection
	token  string      // ?token= in authenticated mode; "" to wait for Authenticate
	remote string      // the peer's address, for the log
	header http.Header // the handshake's headers, some forwarded to the backend
	base   string      // this deployment's public base URL, for ws_uri
}

// refusal is why a connection was not admitted: the close to request, and
// what caused it.
type refusal struct {
	req closeRequest
	err error
}

func (r *refusal) Error() string {
	if r.err == nil {
		return r.req.reason
	}
	return r.req.reason + ": " + r.err.Error()
}

func (r *refusal) Unwrap() error { return r.err }

// credentialsOf establishes what the connection presents: in open mode
// its identity (the ?user= name, or the connection id for an anonymous
// connection); otherwise the ticket to verify, from ?token= or from the
// first Authenticate frame, which must come within AUTH_TIMEOUT. Frames
// before it are answered with an Error (unauthenticated, or rate_limited).
// It fails with a *refusal when the connection must be closed for it, or
// with the reason it stopped waiting when the connection closed meanwhile.
func (s *Server) credentialsOf(ctx context.Context, cl *client, cr credentials) (ident auth.Identity, token string, err error) {
	switch {
	case cr.open && cr.user == "":
		return auth.Identity{User: cl.id}, "", nil // anonymous: the connection id is the user id
	case cr.open:
		return auth.Identity{User: cr.user}, "", nil
	case cr.token != "":
		return auth.Identity{}, cr.token, nil
	}
	token, err = s.awaitAuthenticate(ctx, cl, cr.remote)
	return auth.Identity{}, token, err
}

// awaitAuthenticate waits AUTH_TIMEOUT at most for an Authenticate frame
// and returns its ticket. When the time is up the connection is closed
// (1008), which ends the wait.
func (s *Server) awaitAuthenticate(ctx context.Context, cl *client, remote string) (string, error) {
	timeout := time.AfterFunc(s.cfg.AuthTimeout, func() {
		cl.logger().Info("authentication timeout", "remote", remote)
		cl.close(closeRequest{cause: causeAuth, code: websocket.StatusPolicyViolation, reason: "authentication timeout"})
	})
	defer timeout.Stop()
	for {
		data, refused, ok := s.nextFrame(cl)
		switch {
		case !ok:
			return "", errConnClosing
		case refused:
			s.answer(ctx, cl, "", "", s.rateLimited())
		default:
			if token, ok := s.authenticateFrame(ctx, cl, data); ok {
				return token, nil
			}
		}
	}
}

// authenticateFrame reads the ticket from a pre-admission frame, answering
// anything else with an Error.
func (s *Server) authenticateFrame(ctx context.Context, cl *client, data []byte) (string, bool) {
	env, err := protocol.Decode(data)
	s.countFrame(env.Channel)
	if err != nil {
		s.answer(ctx, cl, env.Channel, env.Ref, err)
		return "", false
	}
	if env.Channel != protocol.ChannelSession || env.Message.Type != protocol.TypeAuthenticate {
		s.answer(ctx, cl, env.Channel, env.Ref, protocol.Errorf(protocol.CodeUnauthenticated, "send Authenticate on channel session first"))
		return "", false
	}
	var req protocol.Authenticate
	if err := protocol.DecodeContents(env.Message, &req); err != nil {
		s.answer(ctx, cl, env.Channel, env.Ref, err)
		return "", false
	}
	return req.Token, true
}

// verify checks a ticket, refusing the connection with 1008 (1013 when the
// ticket could not be checked) and the reason.
func (s *Server) verify(ctx context.Context, cl *client, token, remote string) (auth.Identity, error) {
	ident, err := s.auth.Verify(ctx, token)
	if err == nil {
		return ident, nil
	}
	req := closeFor(causeAuth)
	var rej *auth.Rejection
	if errors.As(err, &rej) {
		req.reason = rej.Reason
		if rej.Retry {
			req.code = websocket.StatusTryAgainLater
		}
	}
	cl.logger().Info("ticket refused", "reason", req.reason, "err", err, "remote", remote)
	return auth.Identity{}, &refusal{req: req, err: err}
}
