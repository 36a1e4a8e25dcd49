package config

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeListsEverySetting keeps the README's configuration table in
// step with Settings: one row per setting, with its flag and default.
func TestReadmeListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, s := range Settings {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		row := "| `" + s.Env + "` | `-" + s.Flag + "` | `" + def + "` | " + s.Help + " |"
		if !strings.Contains(text, row) {
			t.Errorf("README has no configuration row\n%s", row)
		}
	}
}
