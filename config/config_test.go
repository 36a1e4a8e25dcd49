package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

const (
	goodSecret = "config-test-secret-0123456789abcdef" // ≥ 32 bytes
	apiKey     = "config-test-api-key"
)

func load(env map[string]string) (Config, error) {
	return Load(nil, func(k string) string { return env[k] }, io.Discard)
}

// TestAuthSettingsValidation checks the rules tying JWT_SECRET,
// JWT_PUBLIC_KEY, SERVER_API_KEY and the token lifetimes together, and
// that no error message reveals a secret.
func TestAuthSettingsValidation(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		wantErr []string // substrings of the error; nil: Load succeeds
	}{
		{"open mode", map[string]string{}, nil},
		{"open mode with an API key", map[string]string{"SERVER_API_KEY": apiKey}, nil},
		{"secret and API key", map[string]string{"JWT_SECRET": goodSecret, "SERVER_API_KEY": apiKey}, nil},
		{"public key and API key", map[string]string{"JWT_PUBLIC_KEY": "/etc/key.pem", "SERVER_API_KEY": apiKey}, nil},
		{"secret of exactly 32 bytes", map[string]string{"JWT_SECRET": strings.Repeat("k", 32), "SERVER_API_KEY": apiKey}, nil},
		{"secret without API key", map[string]string{"JWT_SECRET": goodSecret}, []string{"SERVER_API_KEY"}},
		{"public key without API key", map[string]string{"JWT_PUBLIC_KEY": "/etc/key.pem"}, []string{"SERVER_API_KEY"}},
		{"short secret", map[string]string{"JWT_SECRET": "short-secret", "SERVER_API_KEY": apiKey}, []string{"JWT_SECRET", "32 bytes"}},
		{"31-byte secret", map[string]string{"JWT_SECRET": strings.Repeat("k", 31), "SERVER_API_KEY": apiKey}, []string{"JWT_SECRET", "32 bytes"}},
		{"short secret without API key", map[string]string{"JWT_SECRET": "short-secret"}, []string{"32 bytes", "SERVER_API_KEY"}},
		{"secret and public key", map[string]string{"JWT_SECRET": goodSecret, "JWT_PUBLIC_KEY": "/etc/key.pem", "SERVER_API_KEY": apiKey}, []string{"JWT_SECRET", "JWT_PUBLIC_KEY", "not both"}},
		{"TOKEN_TTL above TOKEN_MAX_TTL", map[string]string{"TOKEN_TTL": "2m", "TOKEN_MAX_TTL": "1m"}, []string{"TOKEN_TTL", "TOKEN_MAX_TTL"}},
		{"AUTH_TIMEOUT not a duration", map[string]string{"AUTH_TIMEOUT": "soon"}, []string{"AUTH_TIMEOUT"}},
		{"AUTH_TIMEOUT too small", map[string]string{"AUTH_TIMEOUT": "1ms"}, []string{"AUTH_TIMEOUT"}},
		{"TOKEN_MAX_TTL too large", map[string]string{"TOKEN_MAX_TTL": "48h"}, []string{"TOKEN_MAX_TTL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(tc.env)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				want := tc.env["JWT_SECRET"] != "" || tc.env["JWT_PUBLIC_KEY"] != ""
				if cfg.Authenticated() != want {
					t.Errorf("Authenticated() = %v, want %v", cfg.Authenticated(), want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want an error mentioning %q", tc.wantErr)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			for _, secret := range []string{tc.env["JWT_SECRET"], tc.env["SERVER_API_KEY"]} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

// TestAuthDefaults checks the documented defaults of the auth settings and
// the millisecond form of AUTH_TIMEOUT.
func TestAuthDefaults(t *testing.T) {
	cfg, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthTimeout != 5*time.Second || cfg.TokenTTL != time.Minute || cfg.TokenMaxTTL != 10*time.Minute {
		t.Errorf("defaults: AUTH_TIMEOUT %s, TOKEN_TTL %s, TOKEN_MAX_TTL %s", cfg.AuthTimeout, cfg.TokenTTL, cfg.TokenMaxTTL)
	}
	if cfg.Authenticated() {
		t.Error("authenticated by default")
	}
	cfg, err = load(map[string]string{"AUTH_TIMEOUT": "300"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuthTimeout != 300*time.Millisecond {
		t.Errorf("AUTH_TIMEOUT=300 gives %s, want 300ms", cfg.AuthTimeout)
	}
	// Flags override the environment.
	cfg, err = Load([]string{"-jwt-secret", goodSecret, "-server-api-key", apiKey}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Authenticated() || cfg.JWTSecret != goodSecret || cfg.ServerAPIKey != apiKey {
		t.Errorf("flags not applied: %+v", cfg)
	}
}
