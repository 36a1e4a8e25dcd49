// Package config loads and validates Switchboard's settings from the
// environment and command-line flags, in one place.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of a node. Load fills it; the zero value is not
// usable.
type Config struct {
	Host string // interface to listen on; empty means all
	Port int    // TCP port

	LogLevel  slog.Level
	LogFormat string // "text" or "json"

	MaxFrameBytes    int64         // larger frames close the connection with 1009
	MaxRooms         int           // rooms one connection may be in
	MaxRoomName      int           // characters in a room name
	LargeRoom        int           // users from which a room announces no joins/leaves and truncates MemberList; 0: never
	MemberPage       int           // names in a large room's MemberList and in one Members page
	RateLimit        float64       // frames per second a connection may send, sustained
	RateBurst        int           // frames a connection may send at once
	RateLimitStrikes int           // consecutive rate-limited frames before closing with 1008
	RateBytes        int           // bytes per second one connection may send, sustained
	RateBytesBurst   int           // bytes one connection may send at once
	ChatCost         int           // a chat message costs this many times its size against RateBytes
	MaxChatMessage   int           // bytes of text in one chat message
	MaxRoomMessage   int           // bytes of text in one room message
	ChatPublish      bool          // whether clients may post to the global chat
	NodePublishBytes int           // bytes per second the node publishes, all clients together; 0: no limit
	SendQueueBytes   int           // bytes queued per connection before it counts as too slow
	WSTimeout        time.Duration // a silent connection is dropped after it, pinged when at most 10 s of it are left
	WriteTimeout     time.Duration // longest a single frame write may take
	ShutdownTimeout  time.Duration // longest a graceful shutdown may take
	OpTimeout        time.Duration // longest one broker operation may take
	AllowedOrigins   []string      // cross-origin WebSocket origins allowed (patterns)
	AdmitConcurrency int           // connections authenticated and subscribed at once
	AdmitWait        time.Duration // longest a new connection waits for an admission slot before 1013

	HTTPReadTimeout  time.Duration // longest an HTTP request may take to arrive, body included (not upgraded sockets)
	HTTPWriteTimeout time.Duration // longest an HTTP response may take (not upgraded sockets)
	HTTPIdleTimeout  time.Duration // how long an idle keep-alive connection is kept
	MetricsAddr      string        // separate listener for /metrics; empty: /metrics on the main listener, behind the API key
	PprofAddr        string        // listener for net/http/pprof; empty: off

	RedisURL          string
	RedisClusterAddrs []string
	RedisPrefix       string
	PresenceTTL       time.Duration

	JWTSecret    string
	JWTPublicKey string // path of a PEM file
	JWTAudience  string
	ServerAPIKey string
	AuthTimeout  time.Duration
	TokenTTL     time.Duration
	TokenMaxTTL  time.Duration

	HistorySize        int
	HistoryBytes       int // bytes of message data kept per room (and for chat); oldest evicted first
	MemoryHistoryBytes int // bytes of message data the in-memory broker keeps across all topics
	HistoryTTL         time.Duration
	HistoryPage        int
	HistoryMaxPage     int
	ReplayMemory       int // bytes of history all of a node's resumes may hold in memory at once

	APIURI          string        // the backend's lifecycle webhook address; empty: no webhooks
	WebhookSecret   string        // HMAC-SHA256 key signing every webhook
	WebhookTimeout  time.Duration // longest one webhook request may take
	WebhookFailOpen bool          // accept connections when the backend cannot be reached
	WebhookCookies  []string      // cookies forwarded with the connect webhook
	AppChannels     []string      // channels whose envelopes are forwarded to the backend (PUT)
	PublicURL       string        // base of the ws_uri given to the backend
	ConnectionTTL   time.Duration // a crashed node's connections are taken over after this long
}

// Setting describes one configuration value: its environment variable, its
// flag, its default and what it does. Settings lists them all; the README's
// configuration table is checked against it.
type Setting struct {
	Env     string
	Flag    string
	Default string
	Help    string
	Secret  bool
	apply   func(c *Config, v string) error
}

// Settings is every setting, in README order.
var Settings = []Setting{
	{Env: "HOST", Flag: "host", Default: "", Help: "interface to listen on (empty: all)",
		apply: func(c *Config, v string) error { c.Host = v; return nil }},
	{Env: "PORT", Flag: "port", Default: "8080", Help: "TCP port to listen on",
		apply: func(c *Config, v string) error { return intIn(&c.Port, v, 0, 65535) }},
	{Env: "LOG_LEVEL", Flag: "log-level", Default: "info", Help: "debug, info, warn or error",
		apply: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{Env: "LOG_FORMAT", Flag: "log-format", Default: "text", Help: "text or json",
		apply: func(c *Config, v string) error { return oneOf(&c.LogFormat, v, "text", "json") }},
	{Env: "MAX_FRAME_BYTES", Flag: "max-frame-bytes", Default: "65536", Help: "largest frame a client may send; larger ones close the connection with 1009",
		apply: func(c *Config, v string) error { return int64In(&c.MaxFrameBytes, v, 256, 16<<20) }},
	{Env: "MAX_ROOMS", Flag: "max-rooms", Default: "100", Help: "rooms one connection may be in at once",
		apply: func(c *Config, v string) error { return intIn(&c.MaxRooms, v, 1, 100000) }},
	{Env: "MAX_ROOM_NAME", Flag: "max-room-name", Default: "128", Help: "longest room name, in characters",
		apply: func(c *Config, v string) error { return intIn(&c.MaxRoomName, v, 1, 1024) }},
	{Env: "LARGE_ROOM", Flag: "large-room", Default: "1000", Help: "users from which a room stops announcing joins and leaves and its MemberList lists only the first MEMBER_PAGE names (0: never)",
		apply: func(c *Config, v string) error { return intIn(&c.LargeRoom, v, 0, 1e7) }},
	{Env: "MEMBER_PAGE", Flag: "member-page", Default: "100", Help: "names in a large room's MemberList and at most in one GetMembers page",
		apply: func(c *Config, v string) error { return intIn(&c.MemberPage, v, 1, 10000) }},
	{Env: "RATE_LIMIT", Flag: "rate-limit", Default: "20", Help: "frames per second one connection may send, sustained",
		apply: func(c *Config, v string) error { return floatIn(&c.RateLimit, v, 0.01, 1e6) }},
	{Env: "RATE_BURST", Flag: "rate-burst", Default: "40", Help: "frames one connection may send in a burst",
		apply: func(c *Config, v string) error { return intIn(&c.RateBurst, v, 1, 1e6) }},
	{Env: "RATE_LIMIT_STRIKES", Flag: "rate-limit-strikes", Default: "20", Help: "consecutive rate-limited frames after which the connection is closed with 1008",
		apply: func(c *Config, v string) error { return intIn(&c.RateLimitStrikes, v, 1, 1e6) }},
	{Env: "RATE_BYTES", Flag: "rate-bytes", Default: "65536", Help: "bytes per second one connection may send, sustained (pings included)",
		apply: func(c *Config, v string) error { return intIn(&c.RateBytes, v, 1024, 1<<30) }},
	{Env: "RATE_BYTES_BURST", Flag: "rate-bytes-burst", Default: "262144", Help: "bytes one connection may send in a burst (at least MAX_FRAME_BYTES)",
		apply: func(c *Config, v string) error { return intIn(&c.RateBytesBurst, v, 1024, 1<<30) }},
	{Env: "CHAT_COST", Flag: "chat-cost", Default: "4", Help: "a chat message, which reaches every connection on every node, counts this many times its size against RATE_BYTES",
		apply: func(c *Config, v string) error { return intIn(&c.ChatCost, v, 1, 1000) }},
	{Env: "MAX_CHAT_MESSAGE", Flag: "max-chat-message", Default: "4096", Help: "longest chat message text, in bytes",
		apply: func(c *Config, v string) error { return intIn(&c.MaxChatMessage, v, 1, 16<<20) }},
	{Env: "MAX_ROOM_MESSAGE", Flag: "max-room-message", Default: "16384", Help: "longest room message text, in bytes",
		apply: func(c *Config, v string) error { return intIn(&c.MaxRoomMessage, v, 1, 16<<20) }},
	{Env: "CHAT_PUBLISH", Flag: "chat-publish", Default: "all", Help: "who may post to the global chat: all clients, or none (only the server API)",
		apply: func(c *Config, v string) error {
			var who string
			if err := oneOf(&who, v, "all", "none"); err != nil {
				return err
			}
			c.ChatPublish = who == "all"
			return nil
		}},
	{Env: "NODE_PUBLISH_BYTES", Flag: "node-publish-bytes", Default: "8388608", Help: "bytes per second one node publishes, all its clients together, bursts of twice that; past it publishes are refused with rate_limited (0: no limit)",
		apply: func(c *Config, v string) error { return intIn(&c.NodePublishBytes, v, 0, 1<<40) }},
	{Env: "SEND_QUEUE_BYTES", Flag: "send-queue-bytes", Default: "1048576", Help: "bytes of frames queued for one connection before it is closed as too slow (1008)",
		apply: func(c *Config, v string) error { return intIn(&c.SendQueueBytes, v, 1024, 1<<30) }},
	{Env: "WS_TIMEOUT", Flag: "ws-timeout", Default: "60s", Help: "a connection silent this long (no frame, no pong) is dropped; it is pinged one to two pong waits before (a pong wait is half of it, at most 10 s)",
		apply: func(c *Config, v string) error {
			return durationIn(&c.WSTimeout, v, 100*time.Millisecond, 24*time.Hour)
		}},
	{Env: "WRITE_TIMEOUT", Flag: "write-timeout", Default: "10s", Help: "longest one frame write may take before the connection is dropped",
		apply: func(c *Config, v string) error { return durationIn(&c.WriteTimeout, v, 10*time.Millisecond, time.Hour) }},
	{Env: "SHUTDOWN_TIMEOUT", Flag: "shutdown-timeout", Default: "10s", Help: "longest a graceful shutdown waits for connections to close",
		apply: func(c *Config, v string) error { return durationIn(&c.ShutdownTimeout, v, 0, time.Hour) }},
	{Env: "OP_TIMEOUT", Flag: "op-timeout", Default: "5s", Help: "longest one broker (Redis) operation may take before the client is answered unavailable",
		apply: func(c *Config, v string) error { return durationIn(&c.OpTimeout, v, 10*time.Millisecond, time.Hour) }},
	{Env: "ALLOWED_ORIGINS", Flag: "allowed-origins", Default: "", Help: "comma-separated origin patterns allowed to open cross-origin WebSockets, e.g. app.example.com,*.example.org",
		apply: func(c *Config, v string) error { c.AllowedOrigins = list(v); return nil }},
	{Env: "ADMIT_CONCURRENCY", Flag: "admit-concurrency", Default: "256", Help: "connections being authenticated and subscribed at once; more wait (see ADMIT_WAIT)",
		apply: func(c *Config, v string) error { return intIn(&c.AdmitConcurrency, v, 1, 1e6) }},
	{Env: "ADMIT_WAIT", Flag: "admit-wait", Default: "2s", Help: "longest a new connection waits to be admitted before it is closed with 1013 and a jittered retryAfterMs hint",
		apply: func(c *Config, v string) error { return durationIn(&c.AdmitWait, v, 0, time.Minute) }},
	{Env: "HTTP_READ_TIMEOUT", Flag: "http-read-timeout", Default: "15s", Help: "longest an HTTP request, body included, may take to arrive (WebSocket upgrades are exempt once upgraded)",
		apply: func(c *Config, v string) error {
			return durationIn(&c.HTTPReadTimeout, v, 10*time.Millisecond, time.Hour)
		}},
	{Env: "HTTP_WRITE_TIMEOUT", Flag: "http-write-timeout", Default: "30s", Help: "longest an HTTP response may take to be written (WebSockets are exempt)",
		apply: func(c *Config, v string) error {
			return durationIn(&c.HTTPWriteTimeout, v, 10*time.Millisecond, time.Hour)
		}},
	{Env: "HTTP_IDLE_TIMEOUT", Flag: "http-idle-timeout", Default: "60s", Help: "an idle keep-alive HTTP connection is closed after this long",
		apply: func(c *Config, v string) error {
			return durationIn(&c.HTTPIdleTimeout, v, 10*time.Millisecond, time.Hour)
		}},
	{Env: "METRICS_ADDR", Flag: "metrics-addr", Default: "", Help: "serve /metrics on this separate address only, e.g. 127.0.0.1:9090 (empty: on the main port, behind SERVER_API_KEY)",
		apply: func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{Env: "PPROF_ADDR", Flag: "pprof-addr", Default: "", Help: "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; never on the main port (empty: off)",
		apply: func(c *Config, v string) error { c.PprofAddr = v; return nil }},
	{Env: "REDIS_URL", Flag: "redis-url", Default: "", Help: "Redis to scale out through, e.g. redis://127.0.0.1:6379/0 (empty: embedded in-memory broker)", Secret: true,
		apply: func(c *Config, v string) error { c.RedisURL = v; return nil }},
	{Env: "REDIS_CLUSTER_ADDRS", Flag: "redis-cluster-addrs", Default: "", Help: "comma-separated Redis Cluster nodes (host:port); uses sharded pub/sub",
		apply: func(c *Config, v string) error { c.RedisClusterAddrs = list(v); return nil }},
	{Env: "REDIS_PREFIX", Flag: "redis-prefix", Default: "switchboard:", Help: "namespace of every Redis key and channel",
		apply: func(c *Config, v string) error { c.RedisPrefix = v; return nil }},
	{Env: "PRESENCE_TTL", Flag: "presence-ttl", Default: "30s", Help: "how long a crashed node's room members stay listed",
		apply: func(c *Config, v string) error { return durationIn(&c.PresenceTTL, v, time.Second, time.Hour) }},
	{Env: "JWT_SECRET", Flag: "jwt-secret", Default: "", Help: "HS256 key for tickets; enables authenticated mode", Secret: true,
		apply: func(c *Config, v string) error { c.JWTSecret = v; return nil }},
	{Env: "JWT_PUBLIC_KEY", Flag: "jwt-public-key", Default: "", Help: "PEM file with an RSA or Ed25519 public key for tickets (RS256/EdDSA); enables authenticated mode",
		apply: func(c *Config, v string) error { c.JWTPublicKey = v; return nil }},
	{Env: "JWT_AUDIENCE", Flag: "jwt-audience", Default: "switchboard", Help: "the aud claim every ticket must carry (\"-\": do not check; not recommended)",
		apply: func(c *Config, v string) error {
			switch v {
			case "":
				return errors.New(`must not be empty (write "-" to turn the audience check off)`)
			case "-":
				v = ""
			}
			c.JWTAudience = v
			return nil
		}},
	{Env: "SERVER_API_KEY", Flag: "server-api-key", Default: "", Help: "bearer key required by the server API (POST /message, POST /tokens, /ping1, /ping2, GET /rooms/…, /metrics)", Secret: true,
		apply: func(c *Config, v string) error { c.ServerAPIKey = v; return nil }},
	{Env: "AUTH_TIMEOUT", Flag: "auth-timeout", Default: "5s", Help: "time a connection has to send Authenticate",
		apply: func(c *Config, v string) error { return durationIn(&c.AuthTimeout, v, 10*time.Millisecond, time.Hour) }},
	{Env: "TOKEN_TTL", Flag: "token-ttl", Default: "60s", Help: "lifetime of tickets minted by POST /tokens when none is asked",
		apply: func(c *Config, v string) error { return durationIn(&c.TokenTTL, v, time.Second, 24*time.Hour) }},
	{Env: "TOKEN_MAX_TTL", Flag: "token-max-ttl", Default: "10m", Help: "longest lifetime of a ticket: POST /tokens refuses a longer ttl, and longer-lived tickets are refused",
		apply: func(c *Config, v string) error { return durationIn(&c.TokenMaxTTL, v, time.Second, 24*time.Hour) }},
	{Env: "HISTORY_SIZE", Flag: "history-size", Default: "1000", Help: "messages kept per room and for chat (0: no history)",
		apply: func(c *Config, v string) error { return intIn(&c.HistorySize, v, 0, 1e7) }},
	{Env: "HISTORY_BYTES", Flag: "history-bytes", Default: "4194304", Help: "bytes of message data kept per room and for chat; the oldest messages are evicted first",
		apply: func(c *Config, v string) error { return intIn(&c.HistoryBytes, v, 1024, 1<<30) }},
	{Env: "MEMORY_HISTORY_BYTES", Flag: "memory-history-bytes", Default: "268435456", Help: "bytes of message data the embedded in-memory broker keeps across all rooms; the oldest messages of any room are evicted first (not used with Redis)",
		apply: func(c *Config, v string) error { return intIn(&c.MemoryHistoryBytes, v, 1024, 1<<40) }},
	{Env: "HISTORY_TTL", Flag: "history-ttl", Default: "24h", Help: "a room's history is dropped this long after its last message",
		apply: func(c *Config, v string) error { return durationIn(&c.HistoryTTL, v, time.Second, 365*24*time.Hour) }},
	{Env: "HISTORY_PAGE", Flag: "history-page", Default: "50", Help: "messages per History page when the client sets no limit",
		apply: func(c *Config, v string) error { return intIn(&c.HistoryPage, v, 1, 1e5) }},
	{Env: "HISTORY_MAX_PAGE", Flag: "history-max-page", Default: "500", Help: "largest History page a client may ask for",
		apply: func(c *Config, v string) error { return intIn(&c.HistoryMaxPage, v, 1, 1e6) }},
	{Env: "REPLAY_MEMORY", Flag: "replay-memory", Default: "67108864", Help: "bytes of history all resumes on a node may hold in memory at once; a resume waits for its page's share",
		apply: func(c *Config, v string) error { return intIn(&c.ReplayMemory, v, 64<<10, 1<<40) }},
	{Env: "API_URI", Flag: "api-uri", Default: "", Help: "the backend's lifecycle webhook URL: POST on connect, PUT for APP_CHANNELS envelopes, DELETE after close (empty: no webhooks)", Secret: true,
		apply: func(c *Config, v string) error { c.APIURI = v; return nil }},
	{Env: "WEBHOOK_SECRET", Flag: "webhook-secret", Default: "", Help: "key of the HMAC-SHA256 signature every webhook carries (required with API_URI)", Secret: true,
		apply: func(c *Config, v string) error { c.WebhookSecret = v; return nil }},
	{Env: "WEBHOOK_TIMEOUT", Flag: "webhook-timeout", Default: "5s", Help: "longest one webhook request may take, waiting for a free slot included",
		apply: func(c *Config, v string) error {
			return durationIn(&c.WebhookTimeout, v, 10*time.Millisecond, time.Minute)
		}},
	{Env: "WEBHOOK_FAIL_OPEN", Flag: "webhook-fail-open", Default: "false", Help: "accept a connection when the backend cannot be reached or times out (a refusal is always a refusal)",
		apply: func(c *Config, v string) error { return boolean(&c.WebhookFailOpen, v) }},
	{Env: "WEBHOOK_COOKIES", Flag: "webhook-cookies", Default: "", Help: "comma-separated names of handshake cookies forwarded with the connect webhook (Authorization always is)",
		apply: func(c *Config, v string) error { c.WebhookCookies = list(v); return nil }},
	{Env: "APP_CHANNELS", Flag: "app-channels", Default: "", Help: "comma-separated application channels whose envelopes are forwarded to the backend (PUT), its answer sent back",
		apply: func(c *Config, v string) error { c.AppChannels = list(v); return nil }},
	{Env: "PUBLIC_URL", Flag: "public-url", Default: "", Help: "this deployment's public base URL, e.g. https://ws.example.com; ws_uri is <PUBLIC_URL>/connections/<id> (empty: the request's host)",
		apply: func(c *Config, v string) error { c.PublicURL = strings.TrimRight(v, "/"); return nil }},
	{Env: "CONNECTION_TTL", Flag: "connection-ttl", Default: "30s", Help: "a crashed node's connections stay listed this long, then one surviving node sends their DELETE webhook",
		apply: func(c *Config, v string) error { return durationIn(&c.ConnectionTTL, v, time.Second, time.Hour) }},
}

// ErrHelp is returned by Load when -h or -help was asked for; the usage
// was written to the output.
var ErrHelp = flag.ErrHelp

// Load reads settings from getenv, then lets flags in args override them,
// and validates the result. Usage and errors go to out.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: switchboard [flags]\n\nEvery flag can also be set by the environment variable named in brackets.\n\n")
		fs.PrintDefaults()
	}
	// Flags show their built-in defaults: the environment's values, which
	// may be secrets, are never printed by -help or a parse error.
	values := make([]*string, len(Settings))
	for i, s := range Settings {
		values[i] = fs.String(s.Flag, s.Default, fmt.Sprintf("%s [%s]", s.Help, s.Env))
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for i, s := range Settings {
		if env := getenv(s.Env); env != "" && !set[s.Flag] {
			*values[i] = env
		}
	}
	var c Config
	var errs []error
	for i, s := range Settings {
		if err := s.apply(&c, strings.TrimSpace(*values[i])); err != nil {
			errs = append(errs, fmt.Errorf("%s (-%s) = %q: %w", s.Env, s.Flag, shown(s, *values[i]), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

// FromEnv loads settings from the process environment and flags.
func FromEnv(args []string) (Config, error) { return Load(args, os.Getenv, os.Stderr) }

func shown(s Setting, v string) string {
	if s.Secret && v != "" {
		return "<redacted>"
	}
	return v
}

// validate checks rules that involve more than one setting.
func (c Config) validate() error {
	var errs []error
	if c.RedisURL != "" && len(c.RedisClusterAddrs) > 0 {
		errs = append(errs, errors.New("set REDIS_URL or REDIS_CLUSTER_ADDRS, not both"))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			errs = append(errs, errors.New("REDIS_URL must look like redis://host:6379/0 (or rediss://, unix://)"))
		}
	}
	if strings.ContainsAny(c.RedisPrefix, "{}") {
		errs = append(errs, errors.New("REDIS_PREFIX must not contain { or }: they would put every key in one cluster slot"))
	}
	if c.JWTSecret != "" && c.JWTPublicKey != "" {
		errs = append(errs, errors.New("set JWT_SECRET or JWT_PUBLIC_KEY, not both"))
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("JWT_SECRET must be at least 32 bytes: HS256 is only as strong as its key"))
	}
	if c.Authenticated() && c.ServerAPIKey == "" {
		errs = append(errs, errors.New("authenticated mode (JWT_SECRET or JWT_PUBLIC_KEY) needs SERVER_API_KEY: otherwise anyone could mint tickets with POST /tokens and post to any user with POST /message"))
	}
	if c.TokenTTL > c.TokenMaxTTL {
		errs = append(errs, errors.New("TOKEN_TTL must not exceed TOKEN_MAX_TTL"))
	}
	if c.SendQueueBytes < 2*int(c.MaxFrameBytes) {
		errs = append(errs, errors.New("SEND_QUEUE_BYTES must be at least twice MAX_FRAME_BYTES: otherwise one large broadcast would close a client that has anything queued"))
	}
	for _, pattern := range c.AllowedOrigins {
		if _, err := path.Match(pattern, "example.com"); err != nil {
			errs = append(errs, fmt.Errorf("ALLOWED_ORIGINS: %q is not a valid pattern (path.Match syntax, e.g. *.example.com)", pattern))
		}
	}
	for _, a := range []struct{ name, addr string }{{"METRICS_ADDR", c.MetricsAddr}, {"PPROF_ADDR", c.PprofAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s must be host:port, e.g. 127.0.0.1:9090", a.name))
		} else if a.addr == c.Addr() {
			errs = append(errs, fmt.Errorf("%s must differ from the main listener (%s)", a.name, c.Addr()))
		}
	}
	if c.NodePublishBytes > 0 && 2*c.NodePublishBytes < int(c.MaxFrameBytes) {
		errs = append(errs, errors.New("NODE_PUBLISH_BYTES must be at least half of MAX_FRAME_BYTES: its burst (twice it) must hold the largest message"))
	}
	if c.RateBytesBurst < int(c.MaxFrameBytes) {
		errs = append(errs, errors.New("RATE_BYTES_BURST must be at least MAX_FRAME_BYTES: otherwise a frame of the largest allowed size could never be sent"))
	}
	if c.APIURI != "" {
		if u, err := url.Parse(c.APIURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("API_URI must be an http:// or https:// URL"))
		}
		if c.WebhookSecret == "" {
			errs = append(errs, errors.New("API_URI needs WEBHOOK_SECRET: the backend must be able to tell the webhooks are ours"))
		}
	}
	if len(c.AppChannels) > 0 && c.APIURI == "" {
		errs = append(errs, errors.New("APP_CHANNELS needs API_URI: their envelopes are forwarded there"))
	}
	for _, ch := range c.AppChannels {
		switch ch {
		case "chat", "chat-room", "ping", "inbox", "session", "error":
			errs = append(errs, fmt.Errorf("APP_CHANNELS: %q is a built-in channel", ch))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, errors.New("PUBLIC_URL must be an absolute URL, e.g. https://ws.example.com"))
		}
	}
	if c.HistoryPage > c.HistoryMaxPage {
		errs = append(errs, errors.New("HISTORY_PAGE must not exceed HISTORY_MAX_PAGE"))
	}
	return errors.Join(errs...)
}

// Authenticated reports whether connections must present a ticket.
func (c Config) Authenticated() bool { return c.JWTSecret != "" || c.JWTPublicKey != "" }

// Addr is the listen address.
func (c Config) Addr() string { return c.Host + ":" + strconv.Itoa(c.Port) }

func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func intIn(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < lo || n > hi {
		return fmt.Errorf("must be between %d and %d", lo, hi)
	}
	*dst = n
	return nil
}

func int64In(dst *int64, v string, lo, hi int64) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < lo || n > hi {
		return fmt.Errorf("must be between %d and %d", lo, hi)
	}
	*dst = n
	return nil
}

func floatIn(dst *float64, v string, lo, hi float64) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return errors.New("not a number")
	}
	if f < lo || f > hi {
		return fmt.Errorf("must be between %g and %g", lo, hi)
	}
	*dst = f
	return nil
}

// durationIn parses Go durations ("30s", "1m30s") and, as wsaas's
// WS_TIMEOUT does, a bare whole number of milliseconds ("30000").
func durationIn(dst *time.Duration, v string, lo, hi time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		ms, err2 := strconv.ParseInt(v, 10, 64)
		if err2 != nil {
			return errors.New(`not a duration: use e.g. "30s", "1m" or milliseconds "30000"`)
		}
		d = time.Duration(ms) * time.Millisecond
		if d < lo || d > hi {
			return fmt.Errorf("must be between %s and %s (a bare number is milliseconds: write %ss for seconds)", lo, hi, v)
		}
	}
	if d < lo || d > hi {
		return fmt.Errorf("must be between %s and %s", lo, hi)
	}
	*dst = d
	return nil
}

func boolean(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("must be true or false")
	}
	*dst = b
	return nil
}

func oneOf(dst *string, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
}
