package protocol

import (
	"encoding/json"
	"time"
)

// Message types, by channel. "client" types are sent by clients, "server"
// types by Switchboard.
const (
	// chat
	TypeSubmitMessage      = "SubmitMessage"      // client: contents is the text
	TypeNewMessageReceived = "NewMessageReceived" // server: ChatMessage
	// chat-room
	TypeJoinRoom    = "JoinRoom"    // client: JoinRoom
	TypeLeaveRoom   = "LeaveRoom"   // client: RoomRef
	TypeSendMessage = "SendMessage" // client: SendMessage
	TypeMemberList  = "MemberList"  // server: MemberList
	TypeJoinedRoom  = "JoinedRoom"  // server: JoinedRoom
	TypeLeftRoom    = "LeftRoom"    // server: RoomUser
	TypeNewMessage  = "NewMessage"  // server: RoomMessage
	TypeGetMembers  = "GetMembers"  // client: GetMembers
	TypeMembers     = "Members"     // server: Members
	TypeSent        = "Sent"        // server: Sent (SendMessage with ack)
	// chat and chat-room
	TypeGetHistory = "GetHistory" // client: GetHistory
	TypeHistory    = "History"    // server: History
	TypeGap        = "Gap"        // server: Gap
	// ping
	TypePing = "Ping" // server: the ping number
	// session
	TypeAuthenticate  = "Authenticate"  // client: Authenticate
	TypeAuthenticated = "Authenticated" // server: Authenticated
	// inbox
	TypeInboxMessage = "Message" // server: InboxMessage
)

// TimeFormat is how every postedAt is written: RFC 3339 in UTC with
// microseconds, e.g. "2022-09-09T18:12:45.904815Z".
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// Timestamp formats t as a postedAt value.
func Timestamp(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ChatMessage is the contents of NewMessageReceived on the chat channel.
type ChatMessage struct {
	// ID orders the message within the chat stream; empty when history is off.
	ID       string `json:"id,omitempty"`
	Content  string `json:"content"`
	PostedAt string `json:"postedAt"`
}

// RoomRef names a room (LeaveRoom).
type RoomRef struct {
	Room string `json:"room"`
}

// JoinRoom asks to join a room; Since resumes after the last message id the
// client saw, replaying what it missed.
type JoinRoom struct {
	Room  string `json:"room"`
	Since string `json:"since,omitempty"`
}

// SendMessage posts text to a joined room. With Ack, a successful send is
// answered with Sent (match it by the envelope's ref); without, only a
// failure is answered.
type SendMessage struct {
	Room    string `json:"room"`
	Message string `json:"message"`
	Ack     bool   `json:"ack,omitempty"`
}

// Sent acknowledges a SendMessage that asked for it, with the id the
// message was stored under ("" when the server keeps no history).
type Sent struct {
	Room string `json:"room"`
	ID   string `json:"id,omitempty"`
}

// MemberList lists the users in a room, each once, sorted. In a large room
// (LARGE_ROOM members or more) it lists only the first names: Truncated is
// true, Count is how many users the room has, and GetMembers pages
// through the rest.
type MemberList struct {
	Room      string   `json:"room"`
	Users     []string `json:"users"`
	Count     int      `json:"count,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
}

// GetMembers asks for a page of a joined room's users, in name order,
// after the name After ("" for the first page). Limit defaults to and is
// capped by the server's page size.
type GetMembers struct {
	Room  string `json:"room"`
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

// Members answers GetMembers: Users in name order, Count users in the room
// in all, and Next, the After of the next page ("" on the last page).
type Members struct {
	Room  string   `json:"room"`
	Users []string `json:"users"`
	Count int      `json:"count"`
	Next  string   `json:"next,omitempty"`
}

// JoinedRoom announces a user joining a room. Recovered is set only on the
// joiner's own copy when it asked to resume: false means messages after
// Since were no longer retained and the client has a gap.
type JoinedRoom struct {
	Room      string `json:"room"`
	User      string `json:"user"`
	Recovered *bool  `json:"recovered,omitempty"`
}

// RoomUser names a user in a room (LeftRoom).
type RoomUser struct {
	Room string `json:"room"`
	User string `json:"user"`
}

// RoomMessage is the contents of NewMessage.
type RoomMessage struct {
	// ID orders the message within its room; empty when history is off.
	ID       string `json:"id,omitempty"`
	Room     string `json:"room"`
	User     string `json:"user"`
	Message  string `json:"message"`
	PostedAt string `json:"postedAt"`
}

// GetHistory asks for stored messages of a room (chat-room) or of the
// global chat (chat, Room empty). Since and Before are exclusive bounds;
// Limit defaults to and is capped by the server's history page size.
type GetHistory struct {
	Room   string `json:"room,omitempty"`
	Since  string `json:"since,omitempty"`
	Before string `json:"before,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// History answers GetHistory, oldest message first. Messages holds
// RoomMessage (chat-room) or ChatMessage (chat) contents. Complete is false
// when Limit cut the page short: more messages exist in the asked range.
type History struct {
	Room     string            `json:"room,omitempty"`
	Messages []json.RawMessage `json:"messages"`
	Complete bool              `json:"complete"`
}

// Gap tells a client that messages of a room (chat-room) or of the chat
// (chat, Room empty) may have been lost after the id After ("" when the
// client had received none): the node lost its link to the broker for
// longer than it could bridge. The connection stays up; the client
// re-fetches what it missed with GetHistory since After.
type Gap struct {
	Room  string `json:"room,omitempty"`
	After string `json:"after"`
}

// Authenticate presents a ticket as the first frame.
type Authenticate struct {
	Token string `json:"token"`
}

// Authenticated confirms who the connection is.
type Authenticated struct {
	User       string `json:"user"`
	Connection string `json:"connection"`
}

// InboxMessage is delivered to every socket of one user (POST /message).
type InboxMessage struct {
	Content  string `json:"content"`
	Type     string `json:"type,omitempty"`
	PostedAt string `json:"postedAt"`
}
