package broker

import (
	"strings"
)

// A message travels on a Redis pub/sub channel as one payload:
//
//	id "\n" except "\n" data
//
// id is empty for messages published without history and except is empty
// when every connection may receive the message. Go writes payloads with
// appendPayload; Lua scripts, which know the id only once XADD assigned it,
// write them with luaPayload; both sit here, and decodePayload is the one
// reader.

// luaPayload defines payload(id, except, data) for the scripts that
// publish: the same framing as appendPayload. It is prepended to them.
const luaPayload = `local function payload(id, except, data)
  return id .. '\n' .. except .. '\n' .. data
end
`

// appendPayload writes a payload for a message published without history.
func appendPayload(b []byte, msg Message) []byte {
	b = append(b, msg.ID...)
	b = append(b, '\n')
	b = append(b, msg.Except...)
	b = append(b, '\n')
	return append(b, msg.Data...)
}

// decodePayload reads a payload of topic.
func decodePayload(topic, payload string) (Message, bool) {
	id, rest, ok1 := strings.Cut(payload, "\n")
	except, data, ok2 := strings.Cut(rest, "\n")
	if !ok1 || !ok2 {
		return Message{}, false
	}
	return Message{Topic: topic, ID: id, Except: except, Data: []byte(data)}, true
}
