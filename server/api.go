package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/broker"
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
	nodes, err := s.inbox.Send(c.Request().Context(), req.Username, *req.Content, req.Type)
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
	if s.minter == nil {
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
	token, exp, err := s.minter.Mint(req.User, req.Rooms, ttl)
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
	if s.cfg.HistorySize == 0 {
		return echo.NewHTTPError(http.StatusNotImplemented, "this server keeps no history (HISTORY_SIZE=0)")
	}
	q := c.QueryParams()
	limit := s.cfg.HistoryPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return echo.NewHTTPError(http.StatusBadRequest, "limit must be a positive whole number")
		}
		limit = min(n, s.cfg.HistoryMaxPage)
	}
	page, err := s.broker.History(c.Request().Context(), channels.RoomTopic(room),
		broker.HistoryQuery{Since: q.Get("since"), Before: q.Get("before"), Limit: limit, MaxBytes: s.cfg.SendQueueBytes / 2})
	switch {
	case errors.Is(err, broker.ErrInvalidID):
		return echo.NewHTTPError(http.StatusBadRequest, "since and before must be message ids")
	case err != nil:
		s.log.Warn("history not read", "room", room, "err", err)
		return echo.NewHTTPError(http.StatusServiceUnavailable, "message service unavailable")
	}
	out := protocol.History{Room: room, Messages: make([]json.RawMessage, 0, len(page.Messages)), Complete: page.Complete}
	for _, m := range page.Messages {
		contents, err := protocol.ContentsWithID(m.Data, m.ID)
		if err != nil {
			return err
		}
		out.Messages = append(out.Messages, contents)
	}
	return c.JSON(http.StatusOK, out)
}

// errorText is the human part of an error, without a protocol code prefix.
func errorText(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return strings.TrimSpace(err.Error())
}
