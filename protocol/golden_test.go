package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/protocol"
)

// goldenDir holds one example envelope per file, named
// <channel>.<Type>[.<variant>].json. The README embeds them verbatim as the
// protocol reference, so this test keeps them exact: every file decodes
// strictly into its Go contents type and is byte for byte what
// protocol.Encode produces for those contents, indented with two spaces.
const goldenDir = "../testdata/protocol"

type direction int

const (
	fromClient direction = iota
	fromServer
)

func (d direction) String() string {
	if d == fromClient {
		return "client"
	}
	return "server"
}

// goldenKind is what one channel+type carries.
type goldenKind struct {
	dir direction
	// contents returns a pointer to a new zero contents value.
	contents func() any
}

// goldenKinds maps "<channel>.<Type>" to its contents. Error is valid on
// every channel and is handled apart (errorKind).
var goldenKinds = map[string]goldenKind{
	protocol.ChannelChat + "." + protocol.TypeSubmitMessage:      {fromClient, func() any { return new(string) }},
	protocol.ChannelChat + "." + protocol.TypeGetHistory:         {fromClient, func() any { return new(protocol.GetHistory) }},
	protocol.ChannelChat + "." + protocol.TypeNewMessageReceived: {fromServer, func() any { return new(protocol.ChatMessage) }},
	protocol.ChannelChat + "." + protocol.TypeHistory:            {fromServer, func() any { return new(protocol.History) }},

	protocol.ChannelChatRoom + "." + protocol.TypeJoinRoom:    {fromClient, func() any { return new(protocol.JoinRoom) }},
	protocol.ChannelChatRoom + "." + protocol.TypeLeaveRoom:   {fromClient, func() any { return new(protocol.RoomRef) }},
	protocol.ChannelChatRoom + "." + protocol.TypeSendMessage: {fromClient, func() any { return new(protocol.SendMessage) }},
	protocol.ChannelChatRoom + "." + protocol.TypeGetHistory:  {fromClient, func() any { return new(protocol.GetHistory) }},
	protocol.ChannelChatRoom + "." + protocol.TypeMemberList:  {fromServer, func() any { return new(protocol.MemberList) }},
	protocol.ChannelChatRoom + "." + protocol.TypeJoinedRoom:  {fromServer, func() any { return new(protocol.JoinedRoom) }},
	protocol.ChannelChatRoom + "." + protocol.TypeLeftRoom:    {fromServer, func() any { return new(protocol.RoomUser) }},
	protocol.ChannelChatRoom + "." + protocol.TypeNewMessage:  {fromServer, func() any { return new(protocol.RoomMessage) }},
	protocol.ChannelChatRoom + "." + protocol.TypeHistory:     {fromServer, func() any { return new(protocol.History) }},
	protocol.ChannelChatRoom + "." + protocol.TypeGetMembers:  {fromClient, func() any { return new(protocol.GetMembers) }},
	protocol.ChannelChatRoom + "." + protocol.TypeMembers:     {fromServer, func() any { return new(protocol.Members) }},
	protocol.ChannelChatRoom + "." + protocol.TypeSent:        {fromServer, func() any { return new(protocol.Sent) }},
	protocol.ChannelChatRoom + "." + protocol.TypeGap:         {fromServer, func() any { return new(protocol.Gap) }},
	protocol.ChannelChat + "." + protocol.TypeGap:             {fromServer, func() any { return new(protocol.Gap) }},

	protocol.ChannelPing + "." + protocol.TypePing: {fromServer, func() any { return new(int) }},

	protocol.ChannelSession + "." + protocol.TypeAuthenticate:  {fromClient, func() any { return new(protocol.Authenticate) }},
	protocol.ChannelSession + "." + protocol.TypeAuthenticated: {fromServer, func() any { return new(protocol.Authenticated) }},

	protocol.ChannelInbox + "." + protocol.TypeInboxMessage: {fromServer, func() any { return new(protocol.InboxMessage) }},
}

var errorKind = goldenKind{fromServer, func() any { return new(protocol.Error) }}

// knownChannels are the channels an Error may be answered on.
var knownChannels = []string{
	protocol.ChannelChat, protocol.ChannelChatRoom, protocol.ChannelPing,
	protocol.ChannelSession, protocol.ChannelInbox, protocol.ChannelError,
}

// knownCodes are every error code; TestGoldenCoverage checks the list
// against errors.go.
var knownCodes = []protocol.Code{
	protocol.CodeInvalidJSON, protocol.CodeUnknownChannel, protocol.CodeUnknownType,
	protocol.CodeInvalidContents, protocol.CodeNotMember, protocol.CodeRateLimited,
	protocol.CodeTooManyRooms, protocol.CodeForbidden, protocol.CodeUnauthenticated,
	protocol.CodeAlreadyAuthed, protocol.CodeHistoryDisabled, protocol.CodeUnavailable,
	protocol.CodeInternal,
}

// variantChecks say what each variant file must show, so that a variant's
// name stays true to its contents. Error variants (the code) and Ping
// variants (the number) are checked generically.
var variantChecks = map[string]func(contents any) error{
	"chat-room.JoinRoom.since": func(c any) error {
		return want(c.(*protocol.JoinRoom).Since != "", "since is set")
	},
	"chat-room.JoinedRoom.recovered": func(c any) error {
		r := c.(*protocol.JoinedRoom).Recovered
		return want(r != nil && *r, "recovered is true")
	},
	"chat-room.JoinedRoom.not_recovered": func(c any) error {
		r := c.(*protocol.JoinedRoom).Recovered
		return want(r != nil && !*r, "recovered is false")
	},
	"chat-room.GetHistory.since": func(c any) error {
		return want(c.(*protocol.GetHistory).Since != "", "since is set")
	},
	"chat-room.MemberList.truncated": func(c any) error {
		l := c.(*protocol.MemberList)
		return want(l.Truncated && l.Count > len(l.Users), "truncated, with a count above the names listed")
	},
	"chat-room.SendMessage.ack": func(c any) error {
		return want(c.(*protocol.SendMessage).Ack, "ack is set")
	},
	// Variants named ref are checked for their ref in checkGolden.
	"chat-room.JoinRoom.ref":   func(any) error { return nil },
	"chat-room.MemberList.ref": func(any) error { return nil },
	"chat-room.GetHistory.before": func(c any) error {
		h := c.(*protocol.GetHistory)
		return want(h.Before != "" && h.Limit > 0, "before and limit are set")
	},
}

func want(ok bool, what string) error {
	if !ok {
		return fmt.Errorf("variant expects: %s", what)
	}
	return nil
}

var goldenName = regexp.MustCompile(`^([a-z][a-z-]*)\.([A-Z][A-Za-z]*)(?:\.([a-z0-9_]+))?\.json$`)

type goldenFile struct {
	name             string // file name
	channel, typ     string
	variant          string
	data             []byte
	kind             goldenKind
	kindErr          error // set when the name maps to no known kind
	base             string
	channelTypeLabel string
}

// readGolden lists the golden files, failing on any file whose name does
// not follow the convention.
func readGolden(t testing.TB) []goldenFile {
	t.Helper()
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatalf("read golden dir: %v", err)
	}
	var files []goldenFile
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("%s: unexpected directory in %s", e.Name(), goldenDir)
			continue
		}
		m := goldenName.FindStringSubmatch(e.Name())
		if m == nil {
			t.Errorf("%s: name is not <channel>.<Type>[.<variant>].json", e.Name())
			continue
		}
		data, err := os.ReadFile(filepath.Join(goldenDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		g := goldenFile{
			name: e.Name(), channel: m[1], typ: m[2], variant: m[3], data: data,
			base:             strings.TrimSuffix(e.Name(), ".json"),
			channelTypeLabel: m[1] + "." + m[2],
		}
		g.kind, g.kindErr = kindOf(g.channel, g.typ)
		files = append(files, g)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files in %s", goldenDir)
	}
	return files
}

func kindOf(channel, typ string) (goldenKind, error) {
	if typ == protocol.TypeError {
		for _, c := range knownChannels {
			if c == channel {
				return errorKind, nil
			}
		}
		return goldenKind{}, fmt.Errorf("Error on unknown channel %q", channel)
	}
	k, ok := goldenKinds[channel+"."+typ]
	if !ok {
		return goldenKind{}, fmt.Errorf("channel %q has no message type %q in the test's table", channel, typ)
	}
	return k, nil
}

func TestGolden(t *testing.T) {
	for _, g := range readGolden(t) {
		t.Run(g.base, func(t *testing.T) {
			if g.kindErr != nil {
				t.Fatal(g.kindErr)
			}
			checkGolden(t, g)
		})
	}
}

func checkGolden(t *testing.T, g goldenFile) {
	// The production decoder accepts it, pretty-printed as it is.
	env, err := protocol.Decode(g.data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if env.Channel != g.channel || env.Message.Type != g.typ {
		t.Fatalf("envelope is %s/%s, file name says %s/%s", env.Channel, env.Message.Type, g.channel, g.typ)
	}
	// The envelope itself has no member beyond channel and message.type/contents.
	var strictEnv protocol.Envelope
	if err := decodeStrict(g.data, &strictEnv); err != nil {
		t.Fatalf("envelope does not decode strictly: %v", err)
	}
	if len(env.Message.Contents) == 0 || string(env.Message.Contents) == "null" {
		t.Fatal("golden message has no contents")
	}

	// As a channel would read it.
	if err := protocol.DecodeContents(env.Message, g.kind.contents()); err != nil {
		t.Fatalf("DecodeContents (%s message): %v", g.kind.dir, err)
	}

	// Strictly: no member the Go type does not know.
	contents := g.kind.contents()
	if err := decodeStrict(env.Message.Contents, contents); err != nil {
		t.Fatalf("contents do not decode strictly into %T: %v", contents, err)
	}
	value := reflect.ValueOf(contents).Elem().Interface()

	// A ref is shown where a file is about one: its variant (or, for an
	// Error, its variant's suffix) says so.
	showsRef := g.variant == "ref" || strings.HasSuffix(g.variant, "_ref") || g.base == "chat-room.SendMessage.ack" || g.base == "chat-room.Sent"
	if (env.Ref != "") != showsRef {
		t.Fatalf("ref %q in a file whose name says ref: %v", env.Ref, showsRef)
	}

	// Re-encoding gives the same JSON…
	encoded := protocol.EncodeReply(g.channel, env.Ref, g.typ, value)
	if eq, err := jsonEqual(encoded, g.data); err != nil || !eq {
		t.Fatalf("re-encoded envelope differs (err %v)\n got: %s\nwant: %s", err, encoded, compact(g.data))
	}
	// …and the same bytes once indented: key order is
	// channel, message{type, contents}, then the Go field order.
	if got := indent(encoded); !bytes.Equal(got, g.data) {
		t.Errorf("file is not in canonical form (two-space indent, Go field order, trailing newline)\ncanonical:\n%sfile:\n%s", got, g.data)
	}

	checkValues(t, env.Message.Contents)

	switch c := contents.(type) {
	case *protocol.Error:
		checkErrorGolden(t, g, env.Ref, c)
	case *protocol.History:
		checkHistoryGolden(t, g, c)
	case *int:
		if g.variant != strconv.Itoa(*c) {
			t.Errorf("Ping %d is in a file named for variant %q", *c, g.variant)
		}
	}
	if g.typ != protocol.TypeError && g.typ != protocol.TypePing && g.variant != "" {
		check, ok := variantChecks[g.base]
		if !ok {
			t.Fatalf("variant %q of %s has no entry in variantChecks: say what it shows", g.variant, g.channelTypeLabel)
		}
		if err := check(contents); err != nil {
			t.Error(err)
		}
	}
}

func checkErrorGolden(t *testing.T, g goldenFile, ref string, e *protocol.Error) {
	if strings.TrimSuffix(g.variant, "_ref") != string(e.Code) {
		t.Errorf("error code %q is in a file named for variant %q", e.Code, g.variant)
	}
	if !slices.Contains(knownCodes, e.Code) {
		t.Errorf("unknown error code %q", e.Code)
	}
	if e.Message == "" {
		t.Error("error has no message")
	}
	channel := g.channel
	if channel == protocol.ChannelError {
		channel = "" // what the server passes when the frame's channel is unusable
	}
	if eq, err := jsonEqual(protocol.EncodeErrorReply(channel, ref, e), g.data); err != nil || !eq {
		t.Errorf("EncodeErrorReply(%q, %q, …) = %s, want %s", channel, ref, protocol.EncodeErrorReply(channel, ref, e), compact(g.data))
	}
	if e.Room != "" && ref == "" {
		t.Errorf("an Error names room %q without a ref: clients sending no ref must see today's frames", e.Room)
	}
}

// checkHistoryGolden decodes each listed message strictly as what the
// channel stores: ChatMessage on chat, RoomMessage on chat-room, each with
// its id, in Go field order.
func checkHistoryGolden(t *testing.T, g goldenFile, h *protocol.History) {
	if len(h.Messages) == 0 {
		t.Error("History example lists no messages")
	}
	if g.channel == protocol.ChannelChat && h.Room != "" {
		t.Errorf("chat History names room %q", h.Room)
	}
	if g.channel == protocol.ChannelChatRoom && h.Room == "" {
		t.Error("chat-room History names no room")
	}
	prevID := ""
	for i, raw := range h.Messages {
		var m any
		var id string
		if g.channel == protocol.ChannelChat {
			cm := new(protocol.ChatMessage)
			m = cm
			if err := decodeStrict(raw, cm); err != nil {
				t.Fatalf("messages[%d] is not a ChatMessage: %v", i, err)
			}
			id = cm.ID
		} else {
			rm := new(protocol.RoomMessage)
			m = rm
			if err := decodeStrict(raw, rm); err != nil {
				t.Fatalf("messages[%d] is not a RoomMessage: %v", i, err)
			}
			if rm.Room != h.Room {
				t.Errorf("messages[%d] is in room %q, History is of %q", i, rm.Room, h.Room)
			}
			id = rm.ID
		}
		if id == "" {
			t.Errorf("messages[%d] has no id", i)
		}
		if prevID != "" && !idLess(prevID, id) {
			t.Errorf("messages[%d] id %s is not after %s: History lists oldest first", i, id, prevID)
		}
		prevID = id
		again, _ := json.Marshal(m)
		if !bytes.Equal(again, compact(raw)) {
			t.Errorf("messages[%d] is not in Go field order\n file: %s\nwant: %s", i, compact(raw), again)
		}
	}
}

var (
	messageID = regexp.MustCompile(`^[0-9]+-[0-9]+$`)
	idKeys    = map[string]bool{"id": true, "since": true, "before": true}
)

// checkValues keeps the examples realistic: postedAt values are in
// protocol.TimeFormat and message ids look like broker ids.
func checkValues(t *testing.T, contents []byte) {
	var v any
	if err := json.Unmarshal(contents, &v); err != nil {
		t.Fatal(err)
	}
	walkJSON(v, func(key string, val any) {
		s, isString := val.(string)
		switch {
		case key == "postedAt":
			if !isString {
				t.Errorf("postedAt %v is not a string", val)
				return
			}
			tm, err := time.Parse(protocol.TimeFormat, s)
			if err != nil || protocol.Timestamp(tm) != s {
				t.Errorf("postedAt %q is not in protocol.TimeFormat (%v)", s, err)
			}
		case idKeys[key]:
			if !isString || !messageID.MatchString(s) {
				t.Errorf("%s %v does not look like a message id (<ms>-<seq>)", key, val)
			}
		}
	})
}

func walkJSON(v any, fn func(key string, val any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			fn(k, val)
			walkJSON(val, fn)
		}
	case []any:
		for _, val := range v {
			walkJSON(val, fn)
		}
	}
}

func idLess(a, b string) bool {
	pa, pb := strings.SplitN(a, "-", 2), strings.SplitN(b, "-", 2)
	if len(pa) != 2 || len(pb) != 2 {
		return a < b
	}
	ma, _ := strconv.ParseUint(pa[0], 10, 64)
	mb, _ := strconv.ParseUint(pb[0], 10, 64)
	if ma != mb {
		return ma < mb
	}
	sa, _ := strconv.ParseUint(pa[1], 10, 64)
	sb, _ := strconv.ParseUint(pb[1], 10, 64)
	return sa < sb
}

// TestGoldenCoverage fails when a message type, channel or error code
// declared in the protocol package has no golden file, and when the test's
// own tables drift from the declarations.
func TestGoldenCoverage(t *testing.T) {
	types := constValues(t, "messages.go", "Type")
	errorDecls := constValues(t, "errors.go", "")
	channels := constValues(t, "envelope.go", "Channel")
	codes := map[string]string{}
	for name, v := range errorDecls {
		switch {
		case strings.HasPrefix(name, "Code"):
			codes[name] = v
		case name == "TypeError":
			types[name] = v
		}
	}
	if len(types) < 2 || len(codes) < 2 || len(channels) < 2 {
		t.Fatalf("parsed too few constants: %d types, %d codes, %d channels", len(types), len(codes), len(channels))
	}

	files := readGolden(t)
	haveType := map[string]bool{}
	haveKind := map[string]bool{}
	haveChannel := map[string]bool{}
	haveCode := map[string]bool{}
	for _, g := range files {
		if g.kindErr != nil {
			t.Errorf("%s: %v", g.name, g.kindErr)
			continue
		}
		haveType[g.typ] = true
		haveKind[g.channelTypeLabel] = true
		haveChannel[g.channel] = true
		if g.typ == protocol.TypeError {
			haveCode[g.variant] = true
		}
	}

	// Every declared type is in the table and has an example, and every
	// table entry names a declared type.
	tableTypes := map[string]bool{protocol.TypeError: true}
	for _, key := range sortedKeys(goldenKinds) {
		tableTypes[key[strings.LastIndexByte(key, '.')+1:]] = true
		if !haveKind[key] {
			t.Errorf("no golden file for %s (want %s/%s.json)", key, goldenDir, key)
		}
	}
	declaredTypes := map[string]bool{}
	for _, name := range sortedKeys(types) {
		v := types[name]
		declaredTypes[v] = true
		if !tableTypes[v] {
			t.Errorf("%s = %q is not in the test's goldenKinds table", name, v)
		}
		if !haveType[v] {
			t.Errorf("%s = %q has no golden file", name, v)
		}
	}
	for typ := range tableTypes {
		if !declaredTypes[typ] {
			t.Errorf("test table has type %q, which protocol does not declare", typ)
		}
	}

	// Every code has an Error example, and knownCodes is complete.
	declaredCodes := map[protocol.Code]bool{}
	for _, name := range sortedKeys(codes) {
		v := codes[name]
		declaredCodes[protocol.Code(v)] = true
		if !haveCode[v] {
			t.Errorf("%s = %q has no golden file (want <channel>.Error.%s.json)", name, v, v)
		}
		if !slices.Contains(knownCodes, protocol.Code(v)) {
			t.Errorf("%s = %q is missing from the test's knownCodes", name, v)
		}
	}
	for _, c := range knownCodes {
		if !declaredCodes[c] {
			t.Errorf("knownCodes has %q, which errors.go does not declare", c)
		}
	}

	// Every channel appears in an example, and knownChannels is complete.
	for _, name := range sortedKeys(channels) {
		v := channels[name]
		if !haveChannel[v] {
			t.Errorf("%s = %q has no golden file", name, v)
		}
		if !slices.Contains(knownChannels, v) {
			t.Errorf("%s = %q is missing from the test's knownChannels", name, v)
		}
	}
	if len(channels) != len(knownChannels) {
		t.Errorf("envelope.go declares %d channels, knownChannels lists %d", len(channels), len(knownChannels))
	}
}

// constValues parses a file of this package and returns its string
// constants whose names start with prefix.
func constValues(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, prefix) || !name.IsExported() || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[name.Name] = v
			}
		}
	}
	return out
}

// decodeStrict decodes exactly one JSON value into dst, refusing members
// dst has no field for.
func decodeStrict(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) (bool, error) {
	va, err := jsonValue(a)
	if err != nil {
		return false, err
	}
	vb, err := jsonValue(b)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(va, vb), nil
}

func jsonValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func compact(data []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return data
	}
	return buf.Bytes()
}

func indent(data []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		return data
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// sortedKeys is for stable failure messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
