package server

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/channels"
	"github.com/switchboard/switchboard/protocol"
)

// maxAPIBody bounds server API request bodies.
const maxAPIBody = 1 << 20

// maxMessageType bounds the app-defined type of POST /message.
const maxMessageType = 128

// messageRequest is the body of POST /message.
type messageRequest struct {
	Username string  `json:"username"`
	Content  *string `json:"content"`
	Type     string  `json:"type"`
}

// handleMessage delivers a message to every socket of one user on every
// node (POST /message). 202 with the number of nodes that hold a socket of
// the user; 0 is not an error.
func (s *Server) handleMessage(c echo.Context) error {
	var req messageRequest
	if err := readJSON(c, &req, maxAPIBody); err != nil {
		return err
	}
	if err := auth.ValidateUser(req.Username); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "username: "+err.Error())
	}
	if req.Content == nil {
		return echo.NewHTTPError(http.StatusBadRequest, `"content" is required`)
	}
	if len(req.Type) > maxMessageType {
		return echo.NewHTTPError(http.StatusBadRequest, "type is longer than "+strconv.Itoa(maxMessageType)+" bytes")
	}
	if len(*req.Content) > int(s.cfg.MaxFrameBytes) {
		// Larger than any client may send, and than a recipient's queue is
		// sized for.
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "content is longer than MAX_FRAME_BYTES")
	}
	nodes, err := s.node.Inbox.Send(c.Request().Context(), req.Username, *req.Content, req.Type)
	if err != nil {
		s.log.Warn("inbox message not published", "user", req.Username, "err", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "message service unavailable: the message was most likely not delivered")
	}
	return c.JSON(http.StatusAccepted, map[string]int{"nodes": nodes})
}

// tokenRequest is the body of POST /tokens.
type tokenRequest struct {
	User  string   `json:"user"`
	TTL   int      `json:"ttl"` // whole seconds; 0: TOKEN_TTL
	Rooms []string `json:"rooms"`
}

// handleTokens mints a ticket (POST /tokens) when JWT_SECRET is set.
func (s *Server) handleTokens(c echo.Context) error {
	if s.node.Minter == nil {
		return echo.NewHTTPError(http.StatusNotImplemented,
			"this server mints no tickets: set JWT_SECRET, or sign tickets in your backend with the key matching JWT_PUBLIC_KEY")
	}
	var req tokenRequest
	if err := readJSON(c, &req, maxAPIBody); err != nil {
		return err
	}
	if err := auth.ValidateUser(req.User); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "user: "+err.Error())
	}
	maxSeconds := int(s.cfg.TokenMaxTTL / time.Second)
	if req.TTL < 0 || req.TTL > maxSeconds { // compared before multiplying: no overflow
		return echo.NewHTTPError(http.StatusBadRequest, "ttl must be between 1 and "+strconv.Itoa(maxSeconds)+" seconds")
	}
	ttl := s.cfg.TokenTTL
	if req.TTL != 0 {
		ttl = time.Duration(req.TTL) * time.Second
	}
	for _, room := range req.Rooms {
		if err := channels.ValidateRoomName(room, s.cfg.MaxRoomName); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "rooms: "+err.Error())
		}
	}
	token, exp, err := s.node.Minter.Mint(req.User, req.Rooms, ttl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"token": token, "expiresAt": exp.UTC().Format(time.RFC3339)})
}

// handleRoomMessages serves a room's history (GET /rooms/:room/messages)
// with the same paging as GetHistory: since, before, limit.
func (s *Server) handleRoomMessages(c echo.Context) error {
	room := c.Param("room")
	if c.Request().URL.RawPath != "" { // the router matched the escaped path
		unescaped, err := url.PathUnescape(room)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "room: bad escape")
		}
		room = unescaped
	}
	if err := channels.ValidateRoomName(room, s.cfg.MaxRoomName); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, errorText(err))
	}
	q := c.QueryParams()
	var limit int
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return echo.NewHTTPError(http.StatusBadRequest, "limit must be a positive whole number")
		}
		limit = n
	}
	page, err := s.node.Rooms.History(c.Request().Context(),
		protocol.GetHistory{Room: room, Since: q.Get("since"), Before: q.Get("before"), Limit: limit})
	if err != nil {
		return s.historyError(room, err)
	}
	return c.JSON(http.StatusOK, page)
}

// historyError answers a history read that failed as the WebSocket's
// GetHistory would have, in HTTP terms.
func (s *Server) historyError(room string, err error) error {
	perr, serverSide := channels.ClientError(err)
	switch {
	case perr.Code == protocol.CodeHistoryDisabled:
		return echo.NewHTTPError(http.StatusNotImplemented, perr.Message)
	case !serverSide:
		return echo.NewHTTPError(http.StatusBadRequest, perr.Message)
	default:
		s.log.Warn("history not read", "room", room, "err", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "message service unavailable")
	}
}

// errorText is the human part of an error, without a protocol code prefix.
func errorText(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return strings.TrimSpace(err.Error())
}
