package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/conndir"
	"github.com/switchboard/switchboard/node"
	"github.com/switchboard/switchboard/protocol"
)

// The server API a backend drives: rooms, users and single connections,
// on whichever node receives the request. Requests about sockets look the
// sockets up in the connection directory, then send a command on the
// control topic of each node holding some (node.Send); the counts they
// answer are the directory's (sockets that were open when the request
// arrived), not acknowledgements from the nodes.

// Paging of GET /rooms.
const (
	defaultRoomsPage = 100
	maxRoomsPage     = 1000
)

// defaultPoster is the user a POST /rooms/{room}/messages without "user"
// posts as.
const defaultPoster = "server"

// registerBackendAPI adds the backend routes to the API group.
func (s *Server) registerBackendAPI(api *echo.Group) {
	api.GET("/rooms", s.handleRooms)
	api.POST("/rooms/:room/messages", s.handlePostRoomMessage)
	api.GET("/rooms/:room/members", s.handleRoomMembers)
	api.DELETE("/users/:user/connections", s.handleCloseUser)
	api.POST("/users/:user/rooms/:room", s.handleUserRoom(node.OpJoin))
	api.DELETE("/users/:user/rooms/:room", s.handleUserRoom(node.OpLeave))
	api.GET("/connections/:id", s.handleGetConnection)
	api.PUT("/connections/:id", s.handlePushConnection)
	api.DELETE("/connections/:id", s.handleCloseConnection)
}

// pathParam returns a path parameter, unescaped (Echo matched the escaped
// path when it had escapes, so that a room may contain a slash).
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", echo.NewHTTPError(http.StatusBadRequest, name+": bad escape")
	}
	return u, nil
}

// roomParam is the validated :room parameter.
func (s *Server) roomParam(c echo.Context) (string, error) {
	room, err := pathParam(c, "room")
	if err != nil {
		return "", err
	}
	if err := channels.ValidateRoomName(room, s.cfg.MaxRoomName); err != nil {
		return "", echo.NewHTTPError(http.StatusBadRequest, "room: "+errorText(err))
	}
	return room, nil
}

// userParam is the validated :user parameter.
func userParam(c echo.Context) (string, error) {
	user, err := pathParam(c, "user")
	if err != nil {
		return "", err
	}
	if err := auth.ValidateUser(user); err != nil {
		return "", echo.NewHTTPError(http.StatusBadRequest, "user: "+err.Error())
	}
	return user, nil
}

// queryLimit reads ?limit=: def when absent, at most max.
func queryLimit(c echo.Context, def, max int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, echo.NewHTTPError(http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(max))
	}
	return n, nil
}

// unavailable answers a request the broker or directory could not serve.
func (s *Server) unavailable(what string, err error) error {
	s.log.Warn("server API request failed", "what", what, "err", err)
	return echo.NewHTTPError(http.StatusServiceUnavailable, "message service unavailable: "+what+" most likely did not happen, try again")
}

// channelError answers a chat-room failure in HTTP terms: the client's
// mistakes 400, the broker's 503.
func (s *Server) channelError(what string, err error) error {
	perr, serverSide := channels.ClientError(err)
	if serverSide {
		return s.unavailable(what, err)
	}
	return echo.NewHTTPError(http.StatusBadRequest, perr.Message)
}

// postRequest is the body of POST /rooms/{room}/messages.
type postRequest struct {
	Message *string `json:"message"`
	User    string  `json:"user"`
}

// handlePostRoomMessage publishes a NewMessage to a room as if a member
// had sent it: stored in history, delivered to every member on every node.
// 201 {"id"} (the id is "" without history).
func (s *Server) handlePostRoomMessage(c echo.Context) error {
	room, err := s.roomParam(c)
	if err != nil {
		return err
	}
	var req postRequest
	if err := readJSON(c, &req, maxAPIBody); err != nil {
		return err
	}
	if req.Message == nil {
		return echo.NewHTTPError(http.StatusBadRequest, `"message" is required`)
	}
	if len(*req.Message) > int(s.cfg.MaxFrameBytes) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "message is longer than MAX_FRAME_BYTES")
	}
	if req.User == "" {
		req.User = defaultPoster
	} else if err := auth.ValidateUser(req.User); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "user: "+err.Error())
	}
	id, err := s.node.Rooms.Post(c.Request().Context(), room, req.User, *req.Message)
	if err != nil {
		return s.channelError("the message", err)
	}
	return c.JSON(http.StatusCreated, map[string]string{"id": id})
}

// handleRoomMembers lists a page of a room's users, as GetMembers does:
// ?after=&limit= (at most MEMBER_PAGE).
func (s *Server) handleRoomMembers(c echo.Context) error {
	room, err := s.roomParam(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, s.cfg.MemberPage, s.cfg.MemberPage)
	if err != nil {
		return err
	}
	page, err := s.node.Rooms.Members(c.Request().Context(), protocol.GetMembers{Room: room, After: c.QueryParam("after"), Limit: limit})
	if err != nil {
		return s.channelError("reading the members", err)
	}
	return c.JSON(http.StatusOK, page)
}

// handleRooms lists active rooms with their user counts, in name order,
// paged: ?after=&limit= (default 100, at most 1000).
func (s *Server) handleRooms(c echo.Context) error {
	limit, err := queryLimit(c, defaultRoomsPage, maxRoomsPage)
	if err != nil {
		return err
	}
	page, err := s.node.Rooms.ActiveRooms(c.Request().Context(), c.QueryParam("after"), limit)
	if err != nil {
		return s.channelError("listing the rooms", err)
	}
	return c.JSON(http.StatusOK, page)
}

// closeBody is the optional body of the close routes.
type closeBody struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// readCloseBody reads an optional {"code", "reason"}: code 1000 by default,
// else 1000, 1001, 1008, 1011 or an application code 3000–4999; the reason
// fits a close frame.
func readCloseBody(c echo.Context) (closeBody, error) {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxAPIBody+1))
	if err != nil {
		return closeBody{}, echo.NewHTTPError(http.StatusBadRequest, "cannot read body")
	}
	var b closeBody
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &b); err != nil {
			return closeBody{}, echo.NewHTTPError(http.StatusBadRequest, "body is not the JSON object expected: "+protocol.DescribeJSONError(err))
		}
	}
	switch {
	case b.Code == 0:
		b.Code = 1000
	case b.Code == 1000, b.Code == 1001, b.Code == 1008, b.Code == 1011, b.Code >= 3000 && b.Code <= 4999:
	default:
		return closeBody{}, echo.NewHTTPError(http.StatusBadRequest, "code must be 1000, 1001, 1008, 1011 or from 3000 to 4999")
	}
	if len(b.Reason) > maxReasonBytes {
		return closeBody{}, echo.NewHTTPError(http.StatusBadRequest, "reason is longer than "+strconv.Itoa(maxReasonBytes)+" bytes")
	}
	return b, nil
}

// sendToHolders sends cmd for each connection to the node holding it and
// reports how many connections the commands reached a live node for.
func (s *Server) sendToHolders(ctx context.Context, recs []conndir.Record, cmd node.Command) (int, error) {
	byNode := map[string][]string{}
	for _, r := range recs {
		byNode[r.Node] = append(byNode[r.Node], r.ID)
	}
	n := 0
	for holder, ids := range byNode {
		cmd.Conns = ids
		err := s.node.Send(ctx, holder, cmd)
		switch {
		case errors.Is(err, node.ErrNodeGone):
			// Its records expire and a survivor sends their DELETEs.
		case err != nil:
			return n, err
		default:
			n += len(ids)
		}
	}
	return n, nil
}

// handleCloseUser closes every socket of a user on every node:
// {"code"?, "reason"?} → 200 {"closed": n}.
func (s *Server) handleCloseUser(c echo.Context) error {
	user, err := userParam(c)
	if err != nil {
		return err
	}
	body, err := readCloseBody(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	recs, err := s.node.Dir.ListByUser(ctx, user)
	if err != nil {
		return s.unavailable("closing the connections", err)
	}
	n, err := s.sendToHolders(ctx, recs, node.Command{Op: node.OpClose, Code: body.Code, Reason: body.Reason})
	if err != nil {
		return s.unavailable("closing the connections", err)
	}
	return c.JSON(http.StatusOK, map[string]int{"closed": n})
}

// handleUserRoom makes every connection of a user join (or leave) a room,
// as if each had sent JoinRoom (LeaveRoom): 202 {"connections": n}.
func (s *Server) handleUserRoom(op string) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, err := userParam(c)
		if err != nil {
			return err
		}
		room, err := s.roomParam(c)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		recs, err := s.node.Dir.ListByUser(ctx, user)
		if err != nil {
			return s.unavailable("the room change", err)
		}
		n, err := s.sendToHolders(ctx, recs, node.Command{Op: op, Room: room})
		if err != nil {
			return s.unavailable("the room change", err)
		}
		return c.JSON(http.StatusAccepted, map[string]int{"connections": n})
	}
}

// connectionInfo is the answer of GET /connections/{id}.
type connectionInfo struct {
	ID           string    `json:"id"`
	User         string    `json:"user"`
	Node         string    `json:"node"`
	ConnectedAt  time.Time `json:"connectedAt"`
	Rooms        []string  `json:"rooms"`
	LastActivity time.Time `json:"lastActivity"`
}

// connection looks up the :id connection; unknown → 404.
func (s *Server) connection(c echo.Context) (conndir.Record, error) {
	id, err := pathParam(c, "id")
	if err != nil {
		return conndir.Record{}, err
	}
	r, err := s.node.Dir.Get(c.Request().Context(), id)
	switch {
	case errors.Is(err, conndir.ErrNotFound):
		return r, echo.NewHTTPError(http.StatusNotFound, "no such connection")
	case err != nil:
		return r, s.unavailable("the lookup", err)
	}
	return r, nil
}

// handleGetConnection describes a connection of any node.
func (s *Server) handleGetConnection(c echo.Context) error {
	r, err := s.connection(c)
	if err != nil {
		return err
	}
	info := connectionInfo{ID: r.ID, User: r.User, Node: r.Node, ConnectedAt: r.ConnectedAt.UTC(), Rooms: r.Rooms, LastActivity: r.LastActivity.UTC()}
	if info.Rooms == nil {
		info.Rooms = []string{}
	}
	return c.JSON(http.StatusOK, info)
}

// handlePushConnection sends the envelope in the body to one connection,
// wherever it is: 204, or 404 when it is unknown or its node is gone.
func (s *Server) handlePushConnection(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxAPIBody+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "cannot read body")
	}
	if len(body) > int(s.cfg.MaxFrameBytes) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "envelope is longer than MAX_FRAME_BYTES")
	}
	if _, err := protocol.Decode(body); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body is not an envelope: "+errorText(err))
	}
	var frame bytes.Buffer
	if err := json.Compact(&frame, body); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "body is not JSON")
	}
	r, err := s.connection(c)
	if err != nil {
		return err
	}
	return s.commandOne(c, r, node.Command{Op: node.OpPush, Frame: frame.Bytes()})
}

// handleCloseConnection closes one connection with 1000 (or the code and
// reason of an optional body): 204, or 404.
func (s *Server) handleCloseConnection(c echo.Context) error {
	body, err := readCloseBody(c)
	if err != nil {
		return err
	}
	r, err := s.connection(c)
	if err != nil {
		return err
	}
	return s.commandOne(c, r, node.Command{Op: node.OpClose, Code: body.Code, Reason: body.Reason})
}

// commandOne sends cmd to the node holding r: 204, 404 when that node is
// gone.
func (s *Server) commandOne(c echo.Context, r conndir.Record, cmd node.Command) error {
	n, err := s.sendToHolders(c.Request().Context(), []conndir.Record{r}, cmd)
	switch {
	case err != nil:
		return s.unavailable("the request", err)
	case n == 0:
		return echo.NewHTTPError(http.StatusNotFound, "no such connection: its node is gone")
	}
	return c.NoContent(http.StatusNoContent)
}
