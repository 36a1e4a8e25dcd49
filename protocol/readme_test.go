package protocol_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeShowsGoldenFilesVerbatim keeps the README's protocol reference
// honest: every example envelope in it is a golden file, shown byte for
// byte after a <!-- golden: NAME --> marker, and every golden file is shown
// or named there.
func TestReadmeShowsGoldenFilesVerbatim(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	marked := regexp.MustCompile("<!-- golden: ([\\w.\\-]+) -->\n```json\n((?s:.*?))```")
	shown := map[string]bool{}
	for _, m := range marked.FindAllStringSubmatch(text, -1) {
		name, block := m[1], m[2]
		want, err := os.ReadFile(filepath.Join("..", "testdata", "protocol", name+".json"))
		if err != nil {
			t.Errorf("README shows golden file %s, which does not exist", name)
			continue
		}
		if block != string(want) {
			t.Errorf("README's %s differs from testdata/protocol/%s.json:\n%s\nwant:\n%s", name, name, block, want)
		}
		shown[name] = true
	}

	// Any other JSON block that looks like an envelope must be marked.
	blocks := regexp.MustCompile("(?s)(<!-- golden: [^>]+ -->\n)?```json\n(.*?)```")
	for _, m := range blocks.FindAllStringSubmatch(text, -1) {
		if m[1] == "" && strings.Contains(m[2], `"channel": "`) && !strings.Contains(m[2], "<channel>") {
			t.Errorf("README shows an envelope without a golden marker:\n%s", m[2])
		}
	}

	files, err := filepath.Glob(filepath.Join("..", "testdata", "protocol", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !shown[name] && !strings.Contains(text, "`"+name+"`") {
			t.Errorf("golden file %s is neither shown nor named in the README", name)
		}
	}
}
