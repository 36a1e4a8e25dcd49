package protocol_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/protocol"
)

// goNames are fragments of Go type names or encoding/json wording that must
// never reach a client in an error message.
var goNames = []string{"json:", "protocol.", "Envelope", "RawMessage", "struct", "uint8", "int64", "float64", "main.", "Go value", "Go struct"}

func checkNoGoNames(t *testing.T, msg string) {
	t.Helper()
	for _, n := range goNames {
		if strings.Contains(msg, n) {
			t.Errorf("error message %q leaks %q", msg, n)
		}
	}
}

// asProtocolError asserts err is a *protocol.Error with the given code.
func asProtocolError(t *testing.T, err error, code protocol.Code) *protocol.Error {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *protocol.Error", err, err)
	}
	if pe.Code != code {
		t.Fatalf("code = %q, want %q (message %q)", pe.Code, code, pe.Message)
	}
	if pe.Message == "" {
		t.Error("error has no message")
	}
	checkNoGoNames(t, pe.Message)
	return pe
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		frame     string
		channel   string // want, on success
		typ       string
		contents  string // want raw contents, on success
		code      protocol.Code
		errSubstr string // in the error message
	}{
		{name: "valid", frame: `{"channel":"chat","message":{"type":"SubmitMessage","contents":"Hello World"}}`,
			channel: "chat", typ: "SubmitMessage", contents: `"Hello World"`},
		{name: "valid object contents", frame: `{"channel": "chat-room", "message": {"type": "JoinRoom", "contents": {"room": "#haskell"}}}`,
			channel: "chat-room", typ: "JoinRoom", contents: `{"room": "#haskell"}`},
		{name: "members in any order", frame: `{"message":{"contents":2,"type":"Ping"},"channel":"ping"}`,
			channel: "ping", typ: "Ping", contents: `2`},
		{name: "no contents", frame: `{"channel":"chat","message":{"type":"GetHistory"}}`,
			channel: "chat", typ: "GetHistory"},
		{name: "null contents kept for DecodeContents to refuse", frame: `{"channel":"chat","message":{"type":"GetHistory","contents":null}}`,
			channel: "chat", typ: "GetHistory", contents: `null`},
		{name: "unknown members ignored", frame: `{"channel":"chat","extra":1,"message":{"type":"SubmitMessage","contents":"x","more":[]}}`,
			channel: "chat", typ: "SubmitMessage", contents: `"x"`},
		{name: "surrounding whitespace", frame: " \r\n\t{\"channel\":\"chat\",\"message\":{\"type\":\"SubmitMessage\",\"contents\":\"hi\"}}\n\n ",
			channel: "chat", typ: "SubmitMessage", contents: `"hi"`},
		{name: "pretty-printed", frame: "{\n  \"channel\": \"ping\",\n  \"message\": {\n    \"type\": \"Ping\",\n    \"contents\": 1\n  }\n}\n",
			channel: "ping", typ: "Ping", contents: `1`},
		{name: "unicode and escapes", frame: `{"channel":"chat","message":{"type":"SubmitMessage","contents":"caf\u00e9 \"λ\" 🎉"}}`,
			channel: "chat", typ: "SubmitMessage", contents: `"caf\u00e9 \"λ\" 🎉"`},

		{name: "empty", frame: ``, code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "only whitespace", frame: " \n\t ", code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "string", frame: `"hello"`, code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "number", frame: `42`, code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "null", frame: `null`, code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "plain text", frame: `Hello World`, code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "array", frame: `[{"channel":"chat","message":{"type":"SubmitMessage","contents":"x"}}]`,
			code: protocol.CodeInvalidJSON, errSubstr: "not a JSON object"},
		{name: "truncated", frame: `{"channel": "chat",`, code: protocol.CodeInvalidJSON, errSubstr: "syntax error at byte"},
		{name: "truncated inside contents", frame: `{"channel":"chat","message":{"type":"SubmitMessage","contents":"Hel`,
			code: protocol.CodeInvalidJSON, errSubstr: "syntax error"},
		{name: "trailing garbage", frame: `{"channel":"chat","message":{"type":"Ping"}} x`, code: protocol.CodeInvalidJSON, errSubstr: "syntax error"},
		{name: "two envelopes", frame: `{"channel":"chat","message":{"type":"A"}}{"channel":"chat","message":{"type":"B"}}`,
			code: protocol.CodeInvalidJSON},
		{name: "single quotes", frame: `{'channel':'chat'}`, code: protocol.CodeInvalidJSON, errSubstr: "syntax error"},
		{name: "trailing comma", frame: `{"channel":"chat","message":{"type":"Ping"},}`, code: protocol.CodeInvalidJSON, errSubstr: "syntax error"},

		{name: "missing channel", frame: `{"message":{"type":"SubmitMessage","contents":"x"}}`,
			code: protocol.CodeUnknownChannel, errSubstr: `"channel"`},
		{name: "empty channel", frame: `{"channel":"","message":{"type":"SubmitMessage","contents":"x"}}`,
			code: protocol.CodeUnknownChannel, errSubstr: `"channel"`},
		{name: "null channel", frame: `{"channel":null,"message":{"type":"SubmitMessage"}}`,
			code: protocol.CodeUnknownChannel},
		{name: "empty object", frame: `{}`, code: protocol.CodeUnknownChannel},
		{name: "missing type", frame: `{"channel":"chat","message":{"contents":"x"}}`,
			code: protocol.CodeUnknownType, errSubstr: `"message.type"`},
		{name: "missing message", frame: `{"channel":"chat"}`, code: protocol.CodeUnknownType},
		{name: "null message", frame: `{"channel":"chat","message":null}`, code: protocol.CodeUnknownType},
		{name: "empty type", frame: `{"channel":"chat","message":{"type":""}}`, code: protocol.CodeUnknownType},

		{name: "channel is a number", frame: `{"channel":5,"message":{"type":"SubmitMessage","contents":"x"}}`,
			code: protocol.CodeInvalidJSON, errSubstr: `"channel" must be a JSON string`},
		{name: "channel is an object", frame: `{"channel":{"name":"chat"},"message":{"type":"SubmitMessage"}}`,
			code: protocol.CodeInvalidJSON, errSubstr: `"channel" must be a JSON string`},
		{name: "type is a boolean", frame: `{"channel":"chat","message":{"type":true}}`,
			code: protocol.CodeInvalidJSON, errSubstr: `"message.type" must be a JSON string`},
		{name: "message is a string", frame: `{"channel":"chat","message":"SubmitMessage"}`,
			code: protocol.CodeInvalidJSON, errSubstr: `"message" must be a JSON object`},
		{name: "message is an array", frame: `{"channel":"chat","message":[]}`,
			code: protocol.CodeInvalidJSON, errSubstr: `"message" must be a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := protocol.Decode([]byte(tt.frame))
			if tt.code != "" {
				if err == nil {
					t.Fatalf("Decode succeeded with %+v, want %s", env, tt.code)
				}
				pe := asProtocolError(t, err, tt.code)
				if !strings.Contains(pe.Message, tt.errSubstr) {
					t.Errorf("message %q does not contain %q", pe.Message, tt.errSubstr)
				}
				if got := err.Error(); got != string(pe.Code)+": "+pe.Message {
					t.Errorf("Error() = %q", got)
				}
				switch tt.code {
				case protocol.CodeUnknownType:
					// The channel is known, so the error can be answered on it.
					if env.Channel == "" {
						t.Error("unknown_type error returned no channel")
					}
				case protocol.CodeInvalidJSON, protocol.CodeUnknownChannel:
					if env.Channel != "" {
						t.Errorf("%s error returned channel %q", tt.code, env.Channel)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if env.Channel != tt.channel || env.Message.Type != tt.typ {
				t.Errorf("got %s/%s, want %s/%s", env.Channel, env.Message.Type, tt.channel, tt.typ)
			}
			if string(env.Message.Contents) != tt.contents {
				t.Errorf("contents = %q, want %q", env.Message.Contents, tt.contents)
			}
		})
	}
}

func TestDecodeContents(t *testing.T) {
	tests := []struct {
		name      string
		typ       string
		contents  string // "" means absent
		dst       func() any
		want      any    // dereferenced dst, on success
		errSubstr string // on failure (code is always invalid_contents)
	}{
		{name: "string", typ: "SubmitMessage", contents: `"Hello World"`, dst: func() any { return new(string) }, want: "Hello World"},
		{name: "number", typ: "Ping", contents: `2`, dst: func() any { return new(int) }, want: 2},
		{name: "object", typ: "JoinRoom", contents: `{"room":"#haskell","since":"1662747165904-0"}`,
			dst: func() any { return new(protocol.JoinRoom) }, want: protocol.JoinRoom{Room: "#haskell", Since: "1662747165904-0"}},
		{name: "empty object", typ: "GetHistory", contents: `{}`,
			dst: func() any { return new(protocol.GetHistory) }, want: protocol.GetHistory{}},
		{name: "unknown fields ignored", typ: "LeaveRoom", contents: `{"room":"#haskell","extra":true}`,
			dst: func() any { return new(protocol.RoomRef) }, want: protocol.RoomRef{Room: "#haskell"}},
		{name: "optional bool", typ: "JoinedRoom", contents: `{"room":"#haskell","user":"alice","recovered":false}`,
			dst: func() any { return new(protocol.JoinedRoom) }, want: protocol.JoinedRoom{Room: "#haskell", User: "alice", Recovered: ptr(false)}},

		{name: "missing contents", typ: "JoinRoom", dst: func() any { return new(protocol.JoinRoom) }, errSubstr: "JoinRoom needs contents"},
		{name: "null contents", typ: "JoinRoom", contents: `null`, dst: func() any { return new(protocol.JoinRoom) }, errSubstr: "JoinRoom needs contents"},
		{name: "null string contents", typ: "SubmitMessage", contents: `null`, dst: func() any { return new(string) }, errSubstr: "SubmitMessage needs contents"},

		{name: "field: number for string", typ: "JoinRoom", contents: `{"room":5}`,
			dst: func() any { return new(protocol.JoinRoom) }, errSubstr: `JoinRoom contents: "room" must be a JSON string`},
		{name: "field: string for number", typ: "GetHistory", contents: `{"room":"#haskell","limit":"10"}`,
			dst: func() any { return new(protocol.GetHistory) }, errSubstr: `GetHistory contents: "limit" must be a whole number in range`},
		{name: "field: string for array", typ: "MemberList", contents: `{"room":"#haskell","users":"alice"}`,
			dst: func() any { return new(protocol.MemberList) }, errSubstr: `"users" must be a JSON array`},
		{name: "field: array element", typ: "MemberList", contents: `{"room":"#haskell","users":["alice",7]}`,
			dst: func() any { return new(protocol.MemberList) }, errSubstr: `"users" must be a JSON string`},
		{name: "field: string for optional bool", typ: "JoinedRoom", contents: `{"room":"#haskell","user":"alice","recovered":"yes"}`,
			dst: func() any { return new(protocol.JoinedRoom) }, errSubstr: `"recovered" must be true or false`},
		{name: "field: object for string", typ: "SendMessage", contents: `{"room":"#haskell","message":{"text":"hi"}}`,
			dst: func() any { return new(protocol.SendMessage) }, errSubstr: `"message" must be a JSON string`},
		{name: "field: fractional limit", typ: "GetHistory", contents: `{"limit":1.5}`,
			dst: func() any { return new(protocol.GetHistory) }, errSubstr: `"limit"`},
		{name: "field: huge limit", typ: "GetHistory", contents: `{"limit":1e100}`,
			dst: func() any { return new(protocol.GetHistory) }, errSubstr: `"limit"`},
		{name: "top level: object for string", typ: "SubmitMessage", contents: `{"text":"hi"}`,
			dst: func() any { return new(string) }, errSubstr: "SubmitMessage contents: "},
		{name: "top level: string for object", typ: "JoinRoom", contents: `"#haskell"`,
			dst: func() any { return new(protocol.JoinRoom) }, errSubstr: "JoinRoom contents: "},
		{name: "top level: array for object", typ: "Authenticate", contents: `["token"]`,
			dst: func() any { return new(protocol.Authenticate) }, errSubstr: "Authenticate contents: "},
		{name: "syntax error", typ: "JoinRoom", contents: `{"room":`,
			dst: func() any { return new(protocol.JoinRoom) }, errSubstr: "JoinRoom contents: syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := protocol.Message{Type: tt.typ}
			if tt.contents != "" {
				m.Contents = json.RawMessage(tt.contents)
			}
			dst := tt.dst()
			err := protocol.DecodeContents(m, dst)
			if tt.errSubstr != "" {
				if err == nil {
					t.Fatalf("DecodeContents succeeded with %+v", dst)
				}
				pe := asProtocolError(t, err, protocol.CodeInvalidContents)
				if !strings.Contains(pe.Message, tt.errSubstr) {
					t.Errorf("message %q does not contain %q", pe.Message, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeContents: %v", err)
			}
			got, _ := json.Marshal(dst)
			want, _ := json.Marshal(tt.want)
			if string(got) != string(want) {
				t.Errorf("decoded %s, want %s", got, want)
			}
		})
	}
}

// TestDecodeThenDecodeContents runs the path a channel takes: a frame's
// contents problem is reported against the message type.
func TestDecodeThenDecodeContents(t *testing.T) {
	env, err := protocol.Decode([]byte(`{"channel":"chat-room","message":{"type":"JoinRoom","contents": null }}`))
	if err != nil {
		t.Fatal(err)
	}
	err = protocol.DecodeContents(env.Message, new(protocol.JoinRoom))
	if pe := asProtocolError(t, err, protocol.CodeInvalidContents); pe.Message != "JoinRoom needs contents" {
		t.Errorf("message = %q", pe.Message)
	}
}

func TestEncode(t *testing.T) {
	recovered := true
	tests := []struct {
		name     string
		channel  string
		typ      string
		contents any
		want     string
	}{
		{"string contents", "chat", "SubmitMessage", "Hello World",
			`{"channel":"chat","message":{"type":"SubmitMessage","contents":"Hello World"}}`},
		{"number contents", "ping", "Ping", 2,
			`{"channel":"ping","message":{"type":"Ping","contents":2}}`},
		{"id omitted when empty", "chat", "NewMessageReceived", protocol.ChatMessage{Content: "Hello World", PostedAt: "2022-09-09T18:12:45.904815Z"},
			`{"channel":"chat","message":{"type":"NewMessageReceived","contents":{"content":"Hello World","postedAt":"2022-09-09T18:12:45.904815Z"}}}`},
		{"id first when set", "chat-room", "NewMessage", protocol.RoomMessage{ID: "1-0", Room: "#haskell", User: "alice", Message: "hi", PostedAt: "2022-09-09T18:12:45.904815Z"},
			`{"channel":"chat-room","message":{"type":"NewMessage","contents":{"id":"1-0","room":"#haskell","user":"alice","message":"hi","postedAt":"2022-09-09T18:12:45.904815Z"}}}`},
		{"recovered omitted when nil", "chat-room", "JoinedRoom", protocol.JoinedRoom{Room: "#haskell", User: "alice"},
			`{"channel":"chat-room","message":{"type":"JoinedRoom","contents":{"room":"#haskell","user":"alice"}}}`},
		{"recovered false kept", "chat-room", "JoinedRoom", protocol.JoinedRoom{Room: "#haskell", User: "alice", Recovered: ptr(false)},
			`{"channel":"chat-room","message":{"type":"JoinedRoom","contents":{"room":"#haskell","user":"alice","recovered":false}}}`},
		{"recovered true kept", "chat-room", "JoinedRoom", protocol.JoinedRoom{Room: "#haskell", User: "alice", Recovered: &recovered},
			`{"channel":"chat-room","message":{"type":"JoinedRoom","contents":{"room":"#haskell","user":"alice","recovered":true}}}`},
		{"empty member list", "chat-room", "MemberList", protocol.MemberList{Room: "#haskell", Users: []string{}},
			`{"channel":"chat-room","message":{"type":"MemberList","contents":{"room":"#haskell","users":[]}}}`},
		{"empty history", "chat", "History", protocol.History{Messages: []json.RawMessage{}, Complete: true},
			`{"channel":"chat","message":{"type":"History","contents":{"messages":[],"complete":true}}}`},
		{"raw history messages compacted", "chat", "History", protocol.History{Messages: []json.RawMessage{json.RawMessage(`{ "id": "1-0", "content": "x" }`)}},
			`{"channel":"chat","message":{"type":"History","contents":{"messages":[{"id":"1-0","content":"x"}],"complete":false}}}`},
		{"inbox type omitted when empty", "inbox", "Message", protocol.InboxMessage{Content: "hi", PostedAt: "2022-09-09T18:12:45.904815Z"},
			`{"channel":"inbox","message":{"type":"Message","contents":{"content":"hi","postedAt":"2022-09-09T18:12:45.904815Z"}}}`},
		{"error", "chat-room", "Error", protocol.Errorf(protocol.CodeNotMember, "join %q first", "#haskell"),
			`{"channel":"chat-room","message":{"type":"Error","contents":{"code":"not_member","message":"join \"#haskell\" first"}}}`},
		{"nil contents", "chat", "X", nil,
			`{"channel":"chat","message":{"type":"X","contents":null}}`},
		{"html characters kept as they are", "chat", "SubmitMessage", "<b>&</b>",
			`{"channel":"chat","message":{"type":"SubmitMessage","contents":"<b>&</b>"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.Encode(tt.channel, tt.typ, tt.contents)
			if string(got) != tt.want {
				t.Errorf("Encode =\n %s\nwant\n %s", got, tt.want)
			}
			// What the server encodes, Decode reads back.
			env, err := protocol.Decode(got)
			if err != nil {
				t.Fatalf("Decode(Encode(…)): %v", err)
			}
			if env.Channel != tt.channel || env.Message.Type != tt.typ {
				t.Errorf("round trip gave %s/%s", env.Channel, env.Message.Type)
			}
		})
	}
}

func TestEncodePanicsOnUnencodableContents(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Encode did not panic")
		}
		if msg, _ := r.(string); !strings.Contains(msg, "chat/SubmitMessage") {
			t.Errorf("panic %v does not name the message", r)
		}
	}()
	protocol.Encode("chat", "SubmitMessage", make(chan int))
}

func TestEncodeError(t *testing.T) {
	e := protocol.Errorf(protocol.CodeInvalidJSON, "frame is not a JSON object")
	tests := []struct {
		channel, wantChannel string
	}{
		{"", "error"},
		{"chat-room", "chat-room"},
		{"session", "session"},
		{"error", "error"},
	}
	for _, tt := range tests {
		got := protocol.EncodeError(tt.channel, e)
		want := `{"channel":"` + tt.wantChannel + `","message":{"type":"Error","contents":{"code":"invalid_json","message":"frame is not a JSON object"}}}`
		if string(got) != want {
			t.Errorf("EncodeError(%q) =\n %s\nwant\n %s", tt.channel, got, want)
		}
	}
	if protocol.ChannelError != "error" || protocol.TypeError != "Error" {
		t.Errorf("ChannelError = %q, TypeError = %q", protocol.ChannelError, protocol.TypeError)
	}
}

func TestErrorf(t *testing.T) {
	e := protocol.Errorf(protocol.CodeTooManyRooms, "a connection may be in at most %d rooms", 100)
	if e.Code != protocol.CodeTooManyRooms || e.Message != "a connection may be in at most 100 rooms" {
		t.Errorf("Errorf = %+v", e)
	}
	if e.Error() != "too_many_rooms: a connection may be in at most 100 rooms" {
		t.Errorf("Error() = %q", e.Error())
	}
	var err error = e
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe != e {
		t.Error("*Error is not usable with errors.As")
	}
}

const (
	newMessage = `{"room":"#haskell","user":"alice","message":"hi","postedAt":"2022-09-09T18:12:45.904815Z"}`
	stampedNew = `{"channel":"chat-room","message":{"type":"NewMessage","contents":{"id":"1662747165904-0","room":"#haskell","user":"alice","message":"hi","postedAt":"2022-09-09T18:12:45.904815Z"}}}`
)

func TestPublicationFrame(t *testing.T) {
	tests := []struct {
		name         string
		pub          protocol.Publication
		want         string // whole frame
		wantContents string // ContentsWithID
	}{
		{name: "id becomes the first member",
			pub:          protocol.Publication{Channel: "chat-room", Type: "NewMessage", ID: "1662747165904-0", Contents: []byte(newMessage)},
			want:         stampedNew,
			wantContents: `{"id":"1662747165904-0","room":"#haskell","user":"alice","message":"hi","postedAt":"2022-09-09T18:12:45.904815Z"}`},
		{name: "no id: contents as published",
			pub:  protocol.Publication{Channel: "chat-room", Type: "NewMessage", Contents: []byte(newMessage)},
			want: `{"channel":"chat-room","message":{"type":"NewMessage","contents":` + newMessage + `}}`, wantContents: newMessage},
		{name: "number contents without id", pub: protocol.Publication{Channel: "ping", Type: "Ping", Contents: []byte(`2`)},
			want: `{"channel":"ping","message":{"type":"Ping","contents":2}}`, wantContents: `2`},
		{name: "empty object", pub: protocol.Publication{Channel: "chat", Type: "T", ID: "x", Contents: []byte(`{}`)},
			want: `{"channel":"chat","message":{"type":"T","contents":{"id":"x"}}}`, wantContents: `{"id":"x"}`},
		{name: "empty object with whitespace", pub: protocol.Publication{Channel: "chat", Type: "T", ID: "x", Contents: []byte("{ \n\t }")},
			want: `{"channel":"chat","message":{"type":"T","contents":{"id":"x"}}}`, wantContents: `{"id":"x"}`},
		{name: "nested objects untouched", pub: protocol.Publication{Channel: "c", Type: "T", ID: "1-0", Contents: []byte(`{"a":{"b":[1,{"c":null}]},"d":"}"}`)},
			want: `{"channel":"c","message":{"type":"T","contents":{"id":"1-0","a":{"b":[1,{"c":null}]},"d":"}"}}}`},
		{name: "quotes and backslashes escaped", pub: protocol.Publication{Channel: "c", Type: "T", ID: `a"b\c`, Contents: []byte(`{}`)},
			want: `{"channel":"c","message":{"type":"T","contents":{"id":"a\"b\\c"}}}`, wantContents: `{"id":"a\"b\\c"}`},
		{name: "html characters kept", pub: protocol.Publication{Channel: "c", Type: "T", ID: "</script>", Contents: []byte(`{}`)},
			want: `{"channel":"c","message":{"type":"T","contents":{"id":"</script>"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.pub.Frame()
			if string(got) != tt.want {
				t.Errorf("Frame =\n %s\nwant\n %s", got, tt.want)
			}
			contents := tt.pub.ContentsWithID()
			if tt.wantContents != "" && string(contents) != tt.wantContents {
				t.Errorf("ContentsWithID = %s, want %s", contents, tt.wantContents)
			}
			var env protocol.Envelope
			if err := json.Unmarshal(got, &env); err != nil {
				t.Fatalf("Frame is not JSON: %v", err)
			}
			if eq, err := jsonEqual(env.Message.Contents, contents); err != nil || !eq {
				t.Errorf("ContentsWithID = %s, Frame contents = %s", contents, env.Message.Contents)
			}
		})
	}
}

// TestPublicationEncodedOnce checks that a published value rendered on a
// node is exactly what Encode gives for the same value with its id: what a
// golden file shows.
func TestPublicationEncodedOnce(t *testing.T) {
	msg := protocol.RoomMessage{Room: "#haskell", User: "alice", Message: "<b>hi</b> & \"bye\"", PostedAt: "2022-09-09T18:12:45.904815Z"}
	pub := protocol.NewPublication(protocol.ChannelChatRoom, protocol.TypeNewMessage, msg)
	got, err := protocol.ParsePublication(pub.Marshal(), "1662747165904-0")
	if err != nil {
		t.Fatal(err)
	}
	msg.ID = "1662747165904-0"
	want := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeNewMessage, msg)
	if string(got.Frame()) != string(want) {
		t.Errorf("Frame =\n %s\nEncode =\n %s", got.Frame(), want)
	}
}

func TestParsePublication(t *testing.T) {
	p := protocol.Publication{Channel: "chat-room", Type: "LeftRoom", About: "bob", Contents: []byte(`{"room":"r","user":"bob"}`)}
	got, err := protocol.ParsePublication(p.Marshal(), "")
	if err != nil || got.Channel != p.Channel || got.Type != p.Type || got.About != p.About || string(got.Contents) != string(p.Contents) {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, p)
	}
	multiline := protocol.Publication{Channel: "chat", Type: "T", Contents: []byte("\"a\nb\"\n")}
	if got, err := protocol.ParsePublication(multiline.Marshal(), ""); err != nil || string(got.Contents) != string(multiline.Contents) {
		t.Fatalf("contents with newlines = %q, %v", got.Contents, err)
	}
	for _, bad := range []struct{ data, id string }{
		{"", ""}, {"chat", ""}, {"chat\nT", ""}, {"chat\nT\n", ""}, {"chat\nT\n\n", ""}, {"\nT\n\n{}", ""},
		{"chat\n\n\n{}", ""}, {"chat\nT\n\n\"text\"", "1-0"},
	} {
		if _, err := protocol.ParsePublication([]byte(bad.data), bad.id); err == nil {
			t.Errorf("ParsePublication(%q, %q) accepted", bad.data, bad.id)
		}
	}
}

func TestRoomUserTemplate(t *testing.T) {
	for _, user := range []string{"bob", `a"b\c`, "</script>", "ünï"} {
		tpl := protocol.RoomUserTemplate(protocol.ChannelChatRoom, protocol.TypeLeftRoom, "#r")
		got, err := protocol.ParsePublication(tpl.Complete(user), "")
		if err != nil {
			t.Fatal(err)
		}
		want := protocol.Encode(protocol.ChannelChatRoom, protocol.TypeLeftRoom, protocol.RoomUser{Room: "#r", User: user})
		if got.About != user || string(got.Frame()) != string(want) {
			t.Errorf("completed for %q: about %q, frame %s; want %s", user, got.About, got.Frame(), want)
		}
	}
}

var timestampFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)

func TestTimestamp(t *testing.T) {
	paris := time.FixedZone("CEST", 2*60*60)
	newYork := time.FixedZone("EDT", -4*60*60)
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{"microseconds", time.Date(2022, 9, 9, 18, 12, 45, 904815000, time.UTC), "2022-09-09T18:12:45.904815Z"},
		{"nanoseconds truncated, not rounded", time.Date(2022, 9, 9, 18, 12, 45, 904815860, time.UTC), "2022-09-09T18:12:45.904815Z"},
		{"no rounding into the next second", time.Date(2022, 9, 9, 18, 12, 45, 999999999, time.UTC), "2022-09-09T18:12:45.999999Z"},
		{"whole second keeps six digits", time.Date(2022, 9, 9, 18, 12, 45, 0, time.UTC), "2022-09-09T18:12:45.000000Z"},
		{"trailing zeros kept", time.Date(2022, 9, 9, 18, 12, 45, 100000000, time.UTC), "2022-09-09T18:12:45.100000Z"},
		{"one microsecond", time.Date(2022, 9, 9, 18, 12, 45, 1000, time.UTC), "2022-09-09T18:12:45.000001Z"},
		{"east of UTC converted", time.Date(2022, 9, 9, 20, 12, 45, 904815000, paris), "2022-09-09T18:12:45.904815Z"},
		{"west of UTC converted across midnight", time.Date(2022, 9, 9, 22, 30, 0, 0, newYork), "2022-09-10T02:30:00.000000Z"},
		{"unix epoch", time.Unix(0, 0), "1970-01-01T00:00:00.000000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := protocol.Timestamp(tt.t)
			if got != tt.want {
				t.Errorf("Timestamp = %q, want %q", got, tt.want)
			}
			if !timestampFormat.MatchString(got) {
				t.Errorf("%q is not <date>T<time>.<6 digits>Z", got)
			}
			back, err := time.Parse(protocol.TimeFormat, got)
			if err != nil {
				t.Fatalf("time.Parse(TimeFormat, %q): %v", got, err)
			}
			if !back.Equal(tt.t.Truncate(time.Microsecond)) {
				t.Errorf("parsed back %v, want %v", back, tt.t.Truncate(time.Microsecond))
			}
		})
	}
	// Now, in the local zone, too.
	if got := protocol.Timestamp(time.Now().In(time.Local)); !timestampFormat.MatchString(got) {
		t.Errorf("Timestamp(now) = %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestFramesDoNotGrowWhenRelayed: text with <, > and & is relayed byte for
// byte, not as six-byte \u escapes, through Encode and Publication.Frame alike.
func TestFramesDoNotGrowWhenRelayed(t *testing.T) {
	text := strings.Repeat("<&>", 1000)
	frame := protocol.Encode("chat", "NewMessageReceived", protocol.ChatMessage{Content: text})
	if len(frame) > len(text)+100 {
		t.Fatalf("a %d-byte text became a %d-byte frame", len(text), len(frame))
	}
	pub, err := protocol.ParsePublication(protocol.NewPublication("chat", "NewMessageReceived", protocol.ChatMessage{Content: text}).Marshal(), "1-0")
	if err != nil {
		t.Fatal(err)
	}
	stamped := pub.Frame()
	if len(stamped) > len(frame)+20 {
		t.Fatalf("stamping grew the frame from %d to %d bytes", len(frame), len(stamped))
	}
	var m protocol.ChatMessage
	env, _ := protocol.Decode(stamped)
	if err := protocol.DecodeContents(env.Message, &m); err != nil || m.Content != text || m.ID != "1-0" {
		t.Fatalf("round trip: %+v, %v", m, err)
	}
}
