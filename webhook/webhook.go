// Package webhook calls a backend's lifecycle webhooks (API_URI), signed
// and bounded, on behalf of a node.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxInFlight      = 64
	DefaultMaxResponseBytes = 1 << 20
)

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	// URL is the backend's webhook address (API_URI). Required.
	URL string
	// Secret signs every request (WEBHOOK_SECRET). An empty secret still
	// signs, which a backend should refuse.
	Secret []byte
	// Timeout bounds each request, including the wait for an in-flight
	// slot (WEBHOOK_TIMEOUT). Default 5 s.
	Timeout time.Duration
	// MaxInFlight bounds the requests in flight node-wide. Default 64.
	MaxInFlight int
	// FailOpen accepts a connection when the backend cannot be reached or
	// times out. An explicit refusal (a non-OK body or a non-2xx status)
	// is always a refusal. Default false: fail closed.
	FailOpen bool
	// MaxResponseBytes bounds how much of a response is read. Default 1 MiB.
	MaxResponseBytes int64
	// Retry is the DELETE retry policy.
	Retry RetryPolicy
	// Transport sends the requests. Default: a clone of
	// http.DefaultTransport keeping MaxInFlight idle connections.
	Transport http.RoundTripper
	// Registerer receives the client's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives undelivered DELETEs and fail-open accepts. Default
	// slog.Default().
	Logger *slog.Logger
	// OnUndelivered, if set, is called once for every DELETE given up on:
	// the retry bound was reached, the error was permanent, or Close
	// stopped its retries. The caller should then leave the connection's
	// directory record in place so that a surviving node's sweep sends it.
	OnUndelivered func(DisconnectEvent, error)
}

// Client sends a node's webhooks. Its methods are safe for concurrent use.
type Client struct {
	opts    Options
	http    *http.Client
	slots   chan struct{} // one token per request in flight
	metrics *clientMetrics
	log     *slog.Logger

	closing   chan struct{}      // closed when Close begins: stops retries
	hardStop  context.Context    // cancelled when Close runs out of time
	abort     context.CancelFunc // cancels hardStop
	closeOnce sync.Once
	mu        sync.Mutex // guards closed and wg.Add
	closed    bool
	wg        sync.WaitGroup // calls and DisconnectAsync goroutines
}

// New returns a Client. It starts no goroutine; Close releases it.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("webhook: URL is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	opts.Retry = opts.Retry.withDefaults()
	if opts.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = opts.MaxInFlight
		opts.Transport = t
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newClientMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	hard, abort := context.WithCancel(context.Background())
	return &Client{
		opts:     opts,
		http:     &http.Client{Transport: opts.Transport},
		slots:    make(chan struct{}, opts.MaxInFlight),
		metrics:  m,
		log:      opts.Logger,
		closing:  make(chan struct{}),
		hardStop: hard,
		abort:    abort,
	}, nil
}

// Close stops DELETE retries (reporting those events as undelivered), lets
// requests in flight finish, and returns once every call has returned. If
// ctx ends first, it aborts the requests in flight, waits for the calls to
// notice (which is immediate) and returns ctx's error. Calls made after
// Close begins fail with ErrClosed.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.closing)
	})
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.abort()
	<-done
	c.http.CloseIdleConnections()
	return err
}

// enter registers a call so that Close waits for it; it fails once Close
// has begun.
func (c *Client) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// response is a 2xx answer.
type response struct {
	status int
	body   []byte
}

// observe records the latency and outcome of one call or attempt.
func (c *Client) observe(event string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = ReasonTransport
		var werr *Error
		if errors.As(err, &werr) {
			outcome = werr.Reason
		}
		c.metrics.failures.WithLabelValues(event, outcome).Inc()
	}
	c.metrics.latency.WithLabelValues(event, outcome).Observe(time.Since(start).Seconds())
}

// send makes one signed request bounded by Timeout (the wait for a slot
// included) and returns the 2xx response or an *Error.
func (c *Client) send(ctx context.Context, event, method string, body []byte, header http.Header, idemKey string) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	stop := context.AfterFunc(c.hardStop, cancel)
	defer stop()

	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return nil, c.ctxError(event, ctx, errors.New("no free in-flight slot"))
	}

	req, err := http.NewRequestWithContext(ctx, method, c.opts.URL, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Event: event, Reason: ReasonTransport, Err: err}
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(c.opts.Secret, ts, body))
	if idemKey != "" {
		req.Header.Set(IdempotencyHeader, idemKey)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.ctxError(event, ctx, err)
		}
		return nil, &Error{Event: event, Reason: ReasonTransport, Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, c.opts.MaxResponseBytes+1))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, &Error{Event: event, Reason: ReasonStatus, Status: res.StatusCode}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.ctxError(event, ctx, err)
		}
		return nil, &Error{Event: event, Reason: ReasonTransport, Status: res.StatusCode, Err: err}
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return nil, &Error{Event: event, Reason: ReasonBadReply, Status: res.StatusCode, Detail: "response too large"}
	}
	return &response{status: res.StatusCode, body: data}, nil
}

// ctxError classifies a request cut short by its context: the client
// closing, the caller cancelling, or the timeout.
func (c *Client) ctxError(event string, ctx context.Context, err error) *Error {
	if c.hardStop.Err() != nil {
		return &Error{Event: event, Reason: ReasonClosed, Err: err}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return &Error{Event: event, Reason: ReasonCanceled, Err: err}
	}
	return &Error{Event: event, Reason: ReasonTimeout, Err: err}
}
