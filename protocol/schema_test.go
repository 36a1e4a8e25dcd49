package protocol_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// The machine-readable protocol: one JSON Schema per message in
// schemaDir (<channel>.<Type>.json, and Error.json for errors on every
// channel), the AsyncAPI document that lists them, and examples of the
// protocol additions that have no golden file yet.
const (
	goldenFrameDir  = "../testdata/protocol"
	schemaDir       = "schemas"
	validExamples   = "schemas/examples/valid"
	invalidExamples = "schemas/examples/invalid"
	asyncAPIPath    = "asyncapi.yaml"
	tsTypesPath     = "../clients/js/src/index.d.ts"
)

// messageSchema is one compiled message schema and what it describes.
type messageSchema struct {
	file     string // base name, e.g. chat-room.JoinRoom.json
	typ      string // message.type const
	schema   *jsonschema.Schema
	raw      map[string]any
	examples int // valid frames checked against it
}

// loadSchemas compiles every message schema, keyed by file base name.
func loadSchemas(t *testing.T) map[string]*messageSchema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(schemaDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas in %s: %v", schemaDir, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	out := map[string]*messageSchema{}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "common.json" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(abs)
		if err != nil {
			t.Fatalf("%s does not compile: %v", base, err)
		}
		raw := readJSONObject(t, f)
		typ, _ := dig(raw, "properties", "message", "properties", "type", "const").(string)
		if typ == "" {
			t.Fatalf("%s: properties.message.properties.type.const is not a string", base)
		}
		out[base] = &messageSchema{file: base, typ: typ, schema: s, raw: raw}
	}
	return out
}

func readJSONObject(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// dig follows object keys.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// schemaFor names the schema a frame file <channel>.<Type>[.<variant>].json
// must validate against.
func schemaFor(frameFile string) (schema, typ string) {
	parts := strings.SplitN(strings.TrimSuffix(filepath.Base(frameFile), ".json"), ".", 3)
	if len(parts) < 2 {
		return "", ""
	}
	if parts[1] == "Error" {
		return "Error.json", "Error"
	}
	return parts[0] + "." + parts[1] + ".json", parts[1]
}

func frameFiles(t *testing.T, dirs ...string) []string {
	t.Helper()
	var all []string
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(d, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, files...)
	}
	sort.Strings(all)
	return all
}

func decodeFrame(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// TestFramesMatchSchemas validates every golden frame and every valid
// example against its message's schema, checks that every invalid example
// is refused, and that every schema is exercised by at least one frame.
func TestFramesMatchSchemas(t *testing.T) {
	schemas := loadSchemas(t)
	for _, f := range frameFiles(t, goldenFrameDir, validExamples) {
		name, _ := schemaFor(f)
		s := schemas[name]
		if s == nil {
			t.Errorf("%s: no schema %s in %s", f, name, schemaDir)
			continue
		}
		s.examples++
		t.Run("valid/"+filepath.Base(f), func(t *testing.T) {
			if err := s.schema.Validate(decodeFrame(t, f)); err != nil {
				t.Errorf("%s does not match %s:\n%v", f, name, err)
			}
		})
	}
	invalid := frameFiles(t, invalidExamples)
	if len(invalid) == 0 {
		t.Fatalf("no invalid examples in %s", invalidExamples)
	}
	for _, f := range invalid {
		name, _ := schemaFor(f)
		s := schemas[name]
		if s == nil {
			t.Errorf("%s: no schema %s in %s", f, name, schemaDir)
			continue
		}
		t.Run("invalid/"+filepath.Base(f), func(t *testing.T) {
			if err := s.schema.Validate(decodeFrame(t, f)); err == nil {
				t.Errorf("%s matches %s, but the schema must refuse it", f, name)
			}
		})
	}
	for name, s := range schemas {
		if s.examples == 0 {
			t.Errorf("schema %s has no golden frame in %s and no example in %s", name, goldenFrameDir, validExamples)
		}
	}
}

// protocolTypeConstants returns the values of every Type* string constant
// declared in the protocol package's sources (messages.go, errors.go, …).
func protocolTypeConstants(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		maps.Copy(consts, constValues(t, f, "Type"))
	}
	if len(consts) == 0 {
		t.Fatal("no Type* constants found in the protocol package")
	}
	return consts
}

// TestEveryMessageTypeDocumented: each message type constant of the
// protocol package has a golden frame and a schema.
func TestEveryMessageTypeDocumented(t *testing.T) {
	schemas := loadSchemas(t)
	schemaTypes := map[string]bool{}
	for _, s := range schemas {
		schemaTypes[s.typ] = true
	}
	goldenTypes := map[string]bool{}
	for _, f := range frameFiles(t, goldenFrameDir) {
		_, typ := schemaFor(f)
		goldenTypes[typ] = true
	}
	for name, typ := range protocolTypeConstants(t) {
		if !schemaTypes[typ] {
			t.Errorf("protocol.%s = %q has no schema in %s", name, typ, schemaDir)
		}
		if !goldenTypes[typ] {
			t.Errorf("protocol.%s = %q has no golden frame in %s", name, typ, goldenFrameDir)
		}
	}
}

// TestAsyncAPIDocument: the AsyncAPI document parses, is version 3, every
// $ref in it resolves (local pointers in the document, files to existing
// schemas), every message schema is referenced, and every message a
// component declares is used by an operation.
func TestAsyncAPIDocument(t *testing.T) {
	b, err := os.ReadFile(asyncAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s does not parse: %v", asyncAPIPath, err)
	}
	if v, _ := doc["asyncapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("asyncapi version %q, want 3.x", v)
	}
	refs := collectRefs(doc)
	if len(refs) == 0 {
		t.Fatal("the document has no $ref")
	}
	referenced := map[string]bool{}
	for _, ref := range refs {
		file, pointer, _ := strings.Cut(ref, "#")
		if file == "" {
			if resolvePointer(doc, pointer) == nil {
				t.Errorf("$ref %q does not resolve in %s", ref, asyncAPIPath)
			}
			continue
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("$ref %q: %v", ref, err)
			continue
		}
		if pointer != "" && resolvePointer(readJSONObject(t, file), pointer) == nil {
			t.Errorf("$ref %q: pointer does not resolve", ref)
		}
		referenced[filepath.Base(file)] = true
	}
	for name := range loadSchemas(t) {
		if !referenced[name] {
			t.Errorf("schema %s is not referenced by %s", name, asyncAPIPath)
		}
	}
	// Every component message is named by some operation.
	used := map[string]bool{}
	for _, ref := range refs {
		if strings.HasPrefix(ref, "#/channels/") && strings.Contains(ref, "/messages/") {
			target, _ := resolvePointer(doc, strings.TrimPrefix(ref, "#")).(map[string]any)
			if r, ok := target["$ref"].(string); ok {
				used[r] = true
			}
		}
	}
	messages, _ := dig(doc, "components", "messages").(map[string]any)
	if len(messages) == 0 {
		t.Fatal("no components.messages")
	}
	for name := range messages {
		ref := "#/components/messages/" + name
		if !used[ref] {
			t.Errorf("components.messages.%s is in no channel used by an operation", name)
		}
	}
}

// collectRefs returns every $ref value in a decoded YAML or JSON document.
func collectRefs(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					out = append(out, s)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	sort.Strings(out)
	return slices.Compact(out)
}

// resolvePointer follows a JSON pointer ("/a/b") through maps and lists.
func resolvePointer(v any, pointer string) any {
	if pointer == "" {
		return v
	}
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
		if v == nil {
			return nil
		}
	}
	return v
}

// tsDecl matches a TypeScript interface or type alias declaration.
var tsDecl = regexp.MustCompile(`(?m)^(?:export )?(?:declare )?(interface|type|class) (\w+)\b`)

// tsBodies maps each declared TypeScript name to its source text, up to
// the next declaration.
func tsBodies(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(tsTypesPath)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	locs := tsDecl.FindAllStringSubmatchIndex(src, -1)
	out := map[string]string{}
	for i, loc := range locs {
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[src[loc[4]:loc[5]]] = src[loc[0]:end]
	}
	return out
}

// TestTypeScriptMatchesSchemas fails when clients/js's hand-written types
// drift from the schemas: every schema's frame and contents titles name a
// TypeScript declaration; an object's properties all appear in its
// interface (optional ones with "?", required ones without); each frame
// type names its channel and message type; and every *Frame type in the
// TypeScript has a schema.
func TestTypeScriptMatchesSchemas(t *testing.T) {
	ts := tsBodies(t)
	unions := map[string]string{"client": ts["ClientFrame"], "server": ts["ServerFrame"]}
	frames := map[string]bool{}
	for name, s := range loadSchemas(t) {
		frameTitle, _ := s.raw["title"].(string)
		frames[frameTitle] = true
		dir, _ := s.raw["x-direction"].(string)
		if !regexp.MustCompile(`\|\s*` + frameTitle + `\b`).MatchString(unions[dir]) {
			t.Errorf("%s: %s is not in the TypeScript union of %s frames", name, frameTitle, dir)
		}
		body, ok := ts[frameTitle]
		if !ok {
			t.Errorf("%s: no TypeScript type %s", name, frameTitle)
		} else {
			if !mentions(body, s.typ) {
				t.Errorf("%s: TypeScript %s does not name type %q", name, frameTitle, s.typ)
			}
			channels, _ := dig(s.raw, "properties", "channel", "enum").([]any)
			if c, ok := dig(s.raw, "properties", "channel", "const").(string); ok {
				channels = []any{c}
			}
			for _, c := range channels {
				if !mentions(body, c.(string)) {
					t.Errorf("%s: TypeScript %s does not name channel %q", name, frameTitle, c)
				}
			}
			_, hasRef := dig(s.raw, "properties").(map[string]any)["ref"]
			tsRef := strings.Contains(body, "RefEnvelope<") || strings.Contains(body, "ref?: string")
			if hasRef != tsRef {
				t.Errorf("%s: schema allows ref: %v, but TypeScript %s does: %v", name, hasRef, frameTitle, tsRef)
			}
		}
		contents, _ := dig(s.raw, "$defs", "contents").(map[string]any)
		title, _ := contents["title"].(string)
		body, ok = ts[title]
		if !ok {
			t.Errorf("%s: no TypeScript type %s for its contents", name, title)
			continue
		}
		props, _ := contents["properties"].(map[string]any)
		required := map[string]bool{}
		for _, r := range asList(contents["required"]) {
			required[r.(string)] = true
		}
		for p := range props {
			want := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(p) + `:`)
			if !required[p] {
				want = regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(p) + `\?:`)
			}
			if !want.MatchString(body) {
				t.Errorf("%s: TypeScript %s lacks %q (required: %v)", name, title, p, required[p])
			}
		}
		// No TypeScript property the schema does not know.
		for _, m := range regexp.MustCompile(`(?m)^\s+(\w+)\??:`).FindAllStringSubmatch(body, -1) {
			if _, ok := props[m[1]]; !ok && len(props) > 0 {
				t.Errorf("%s: TypeScript %s has %q, which the schema does not", name, title, m[1])
			}
		}
	}
	for name := range ts {
		if strings.HasSuffix(name, "Frame") && !frames[name] && name != "ClientFrame" && name != "ServerFrame" {
			t.Errorf("TypeScript %s has no schema", name)
		}
	}
}

// mentions reports whether TypeScript source names s as a string literal.
func mentions(body, s string) bool {
	return strings.Contains(body, "'"+s+"'") || strings.Contains(body, strconv.Quote(s))
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
