package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/protocol"
)

// decodeCodes are the only codes Decode may return.
var decodeCodes = []protocol.Code{protocol.CodeInvalidJSON, protocol.CodeUnknownChannel, protocol.CodeUnknownType}

// trickyFrames seed both fuzzers beside the golden files.
var trickyFrames = []string{
	``,
	` `,
	`{`,
	`}`,
	`{}`,
	`[]`,
	`null`,
	`"{"`,
	`{"channel":"chat"}`,
	`{"channel":"chat","message":{}}`,
	`{"channel":"chat","message":{"type":"SubmitMessage"}}`,
	`{"channel":"chat","message":{"type":"SubmitMessage","contents":null}}`,
	`{"channel":"chat","message":{"type":"SubmitMessage","contents":"x"}} `,
	`{"channel":"chat","message":{"type":"SubmitMessage","contents":"x"}}x`,
	`{"channel":"chat","message":{"type":"SubmitMessage","contents":"x"}}{}`,
	`{"channel":5,"message":{"type":"X"}}`,
	`{"channel":"chat","message":{"type":5}}`,
	`{"channel":"chat","message":"x"}`,
	`{"channel":"chat","message":[]}`,
	`{"channel":"chat","channel":"ping","message":{"type":"A","type":"B"}}`,
	`{"CHANNEL":"chat","Message":{"TYPE":"SubmitMessage","Contents":"x"}}`,
	`{"channel":"\ud800","message":{"type":"\u0000","contents":"\udfff"}}`,
	"{\"channel\":\"ch\xffat\",\"message\":{\"type\":\"T\",\"contents\":\"\xfe\"}}",
	"\v{\"channel\":\"c\",\"message\":{\"type\":\"t\"}}",
	"\u00a0{\"channel\":\"c\",\"message\":{\"type\":\"t\"}}\u2028",
	"\ufeff{\"channel\":\"c\",\"message\":{\"type\":\"t\"}}",
	`{"channel":"c","message":{"type":"t","contents":{"id":"1-0","a":1}}}`,
	`{"channel":"c","message":{"type":"t","contents":{"ID":"1-0"}}}`,
	`{"channel":"c","message":{"type":"t","contents":{ }}}`,
	`{"channel":"c","message":{"type":"t","contents":{"a":{"id":"nested"}}}}`,
	`{"channel":"c","message":{"type":"t","contents":[{"id":"1-0"}]}}`,
	`{"channel":"c","message":{"type":"t","contents":1e999}}`,
	`{"channel":"c","message":{"type":"t","contents":-0.0e-0}}`,
	`{"channel":"c","message":{"type":"t","contents":"<\u2028&>"}}`,
	`{"channel":"c","message":{"type":"t","contents":{"a":"\"}"}}}`,
	strings.Repeat(`{"a":`, 100) + strings.Repeat(`}`, 100),
	`{"channel":"c","message":{"type":"t","contents":` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `}}`,
}

func goldenFrames(f *testing.F) [][]byte {
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no golden files in %s (%v)", goldenDir, err)
	}
	var frames [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		frames = append(frames, data)
	}
	return frames
}

// FuzzDecode: Decode never panics; what it accepts has a channel and a
// type and survives a marshal/Decode round trip unchanged; what it refuses
// it refuses with a *protocol.Error carrying a Decode code and a message
// free of Go names.
func FuzzDecode(f *testing.F) {
	for _, frame := range goldenFrames(f) {
		f.Add(frame)
	}
	for _, s := range trickyFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		orig := bytes.Clone(frame)
		env, err := protocol.Decode(frame)
		if !bytes.Equal(frame, orig) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *protocol.Error", err, err)
			}
			found := false
			for _, c := range decodeCodes {
				found = found || pe.Code == c
			}
			if !found {
				t.Fatalf("Decode returned code %q", pe.Code)
			}
			if pe.Message == "" {
				t.Fatal("error has no message")
			}
			for _, n := range goNames {
				if strings.Contains(pe.Message, n) {
					t.Fatalf("error message %q leaks %q", pe.Message, n)
				}
			}
			return
		}
		if env.Channel == "" || env.Message.Type == "" {
			t.Fatalf("accepted an envelope without channel or type: %+v", env)
		}
		if !json.Valid(bytes.TrimSpace(frame)) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}

		// Round trip: what Decode accepted, re-marshalled, decodes to the
		// same envelope, and marshals to the same bytes again.
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("cannot marshal the decoded envelope: %v", err)
		}
		env2, err := protocol.Decode(again)
		if err != nil {
			t.Fatalf("re-marshalled envelope %s does not decode: %v", again, err)
		}
		if env2.Channel != env.Channel || env2.Message.Type != env.Message.Type {
			t.Fatalf("round trip changed %q/%q into %q/%q", env.Channel, env.Message.Type, env2.Channel, env2.Message.Type)
		}
		if (len(env.Message.Contents) == 0) != (len(env2.Message.Contents) == 0) {
			t.Fatalf("round trip changed contents %q into %q", env.Message.Contents, env2.Message.Contents)
		}
		if len(env.Message.Contents) > 0 {
			if eq, err := jsonEqual(env.Message.Contents, env2.Message.Contents); err != nil || !eq {
				t.Fatalf("round trip changed contents %q into %q (%v)", env.Message.Contents, env2.Message.Contents, err)
			}
		}
		again2, err := json.Marshal(env2)
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("marshalling is not stable:\n%s\n%s (%v)", again, again2, err)
		}

		// Whatever the contents, DecodeContents answers invalid_contents or
		// succeeds, and never leaks Go names.
		for _, dst := range []any{new(string), new(int), new(protocol.JoinRoom), new(protocol.GetHistory), new(protocol.MemberList), new(protocol.JoinedRoom)} {
			err := protocol.DecodeContents(env.Message, dst)
			if err == nil {
				continue
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidContents {
				t.Fatalf("DecodeContents into %T: %v, want an invalid_contents *protocol.Error", dst, err)
			}
			for _, n := range goNames {
				if strings.Contains(pe.Message, n) {
					t.Fatalf("DecodeContents message %q leaks %q", pe.Message, n)
				}
			}
		}
	})
}

// FuzzPublication: whatever contents object a publisher encoded and
// whatever id the broker gave it, a publication survives the trip between
// nodes unchanged and renders as valid JSON whose contents start with that
// id, the publisher's members following in order.
func FuzzPublication(f *testing.F) {
	ids := []string{"1662747165904-0", "", `a"b\c`, "</script>", "\u2028", "\x00", "\xff"}
	for i, frame := range goldenFrames(f) {
		var env protocol.Envelope
		if json.Unmarshal(frame, &env) == nil {
			f.Add([]byte(env.Message.Contents), ids[i%len(ids)])
		}
	}
	for i, s := range trickyFrames {
		f.Add([]byte(s), ids[i%len(ids)])
	}
	f.Fuzz(func(t *testing.T, contents []byte, id string) {
		inMembers, isObject := objectMembers(contents)
		if !isObject || hasIDMember(inMembers) || !json.Valid(contents) || contents[0] != '{' {
			return // publishers encode compact objects without an id
		}
		pub := protocol.Publication{Channel: "chat-room", Type: "NewMessage", Contents: contents}
		got, err := protocol.ParsePublication(pub.Marshal(), id)
		if err != nil {
			t.Fatalf("ParsePublication(Marshal(%q)): %v", contents, err)
		}
		if !bytes.Equal(got.Contents, contents) {
			t.Fatalf("contents %q came back as %q", contents, got.Contents)
		}
		out := got.Frame()
		if !json.Valid(out) {
			t.Fatalf("Frame = %q, not valid JSON", out)
		}
		if id == "" {
			return
		}
		var env protocol.Envelope
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatal(err)
		}
		// An id that is not valid UTF-8 is sent as encoding/json writes it
		// (each bad byte becomes U+FFFD); any other id is sent unchanged.
		var want string
		quoted, _ := json.Marshal(id)
		_ = json.Unmarshal(quoted, &want)
		checkStamped(t, "Frame", env.Message.Contents, want, inMembers)
		checkStamped(t, "ContentsWithID", got.ContentsWithID(), want, inMembers)
	})
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers lists the top-level members of a JSON object in order; ok
// is false when data is not an object.
func objectMembers(data []byte) (members []member, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, member{tok.(string), v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return members, true
}

// hasIDMember reports whether an object has a member a Go decoder would
// take for "id".
func hasIDMember(members []member) bool {
	for _, m := range members {
		if strings.EqualFold(m.key, "id") {
			return true
		}
	}
	return false
}

func checkStamped(t *testing.T, fn string, contents []byte, id string, inMembers []member) {
	t.Helper()
	members, ok := objectMembers(contents)
	if !ok {
		t.Fatalf("%s contents %q are not an object", fn, contents)
	}
	if len(members) == 0 || members[0].key != "id" {
		t.Fatalf("%s contents %s do not start with id", fn, contents)
	}
	var got string
	if err := json.Unmarshal(members[0].value, &got); err != nil || got != id {
		t.Fatalf("%s contents.id = %s, want %q", fn, members[0].value, id)
	}
	// A Go client (case-insensitive, last member wins) and a JavaScript
	// client (last member wins) must both read the new id.
	var goView struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(contents, &goView); err != nil || goView.ID != id {
		t.Fatalf("%s contents %s: a client reads id %q, want %q", fn, contents, goView.ID, id)
	}
	// The other members are the original ones, in order, less any old id.
	var wantRest []member
	for _, m := range inMembers {
		if !strings.EqualFold(m.key, "id") {
			wantRest = append(wantRest, m)
		}
	}
	rest := members[1:]
	if len(rest) != len(wantRest) {
		t.Fatalf("%s contents %s: %d members after id, want %d", fn, contents, len(rest), len(wantRest))
	}
	for i := range rest {
		if rest[i].key != wantRest[i].key {
			t.Fatalf("%s contents %s: member %d is %q, want %q", fn, contents, i+1, rest[i].key, wantRest[i].key)
		}
		if eq, err := jsonEqual(rest[i].value, wantRest[i].value); err != nil || !eq {
			t.Fatalf("%s contents %s: member %q is %s, want %s", fn, contents, rest[i].key, rest[i].value, wantRest[i].value)
		}
	}
}
