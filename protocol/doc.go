// Package protocol defines Switchboard's wire format: the JSON envelope every
// WebSocket frame carries, the typed contents of each message, and the error
// codes a client can receive. It knows nothing of sockets, rooms or brokers.
//
// Every frame, in both directions, is an envelope:
//
//	{"channel": "chat-room", "message": {"type": "JoinRoom", "contents": {"room": "#haskell"}}}
package protocol
