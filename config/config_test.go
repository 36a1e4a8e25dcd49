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

func TestCrossSettingValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // substring of the error; empty: valid
	}{
		{"defaults", nil, ""},
		{"queue smaller than two frames", map[string]string{"MAX_FRAME_BYTES": "65536", "SEND_QUEUE_BYTES": "100000"}, "SEND_QUEUE_BYTES"},
		{"queue of exactly two frames", map[string]string{"MAX_FRAME_BYTES": "4096", "SEND_QUEUE_BYTES": "8192"}, ""},
		{"bad origin pattern", map[string]string{"ALLOWED_ORIGINS": "app.example.com,[bad"}, `"[bad" is not a valid pattern`},
		{"good origin patterns", map[string]string{"ALLOWED_ORIGINS": "app.example.com, *.example.org ,https://x.example.net"}, ""},
		{"both redis settings", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_CLUSTER_ADDRS": "127.0.0.1:7000"}, "not both"},
		{"redis url scheme", map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must look like"},
		{"prefix with a brace", map[string]string{"REDIS_PREFIX": "a{b}"}, "REDIS_PREFIX"},
		{"history page over the max", map[string]string{"HISTORY_PAGE": "600"}, "HISTORY_PAGE"},
		{"port out of range", map[string]string{"PORT": "70000"}, "PORT (-port)"},
		{"milliseconds duration", map[string]string{"WS_TIMEOUT": "30000"}, ""},
		{"bad duration", map[string]string{"WS_TIMEOUT": "soon"}, "not a duration"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, func(k string) string { return tc.env[k] }, io.Discard)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c, err := Load([]string{"-port", "9001", "-history-size", "0"}, func(k string) string {
		return map[string]string{"PORT": "9000", "HISTORY_SIZE": "5"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9001 || c.HistorySize != 0 {
		t.Errorf("port %d history %d, want the flags' 9001 and 0", c.Port, c.HistorySize)
	}
	if _, err := Load([]string{"-no-such-flag"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Errorf("unknown flag accepted")
	}
}

// TestHelpNeverShowsSecrets: -help and parse errors print the flags'
// built-in defaults, not values taken from the environment.
func TestHelpNeverShowsSecrets(t *testing.T) {
	env := map[string]string{"JWT_SECRET": "do-not-print-this-secret-0123456789", "SERVER_API_KEY": "nor-this-key", "REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0"}
	for _, args := range [][]string{{"-help"}, {"-no-such-flag"}, {"-port", "x"}} {
		var out strings.Builder
		_, _ = Load(args, func(k string) string { return env[k] }, &out)
		for _, secret := range []string{"do-not-print", "nor-this-key", "hunter2"} {
			if strings.Contains(out.String(), secret) {
				t.Errorf("%v printed a secret:\n%s", args, out.String())
			}
		}
	}
}
