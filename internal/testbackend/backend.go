// Package testbackend is a real HTTP backend for tests of the lifecycle
// webhooks: it verifies every request's signature and records it.
package testbackend

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/webhook"
)

// Secret is the WEBHOOK_SECRET the backend verifies with.
const Secret = "test-webhook-secret"

// Request is one webhook the backend received with a valid signature.
type Request struct {
	Method string
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// Str returns a string field of the body.
func (r Request) Str(field string) string {
	s, _ := r.Body[field].(string)
	return s
}

// Reply is what the backend answers: a status and a JSON body.
type Reply struct {
	Status int
	Body   string
	Delay  time.Duration // wait before answering (a slow backend)
}

// Backend is a running test backend.
type Backend struct {
	*httptest.Server
	t testing.TB

	mu       sync.Mutex
	requests []Request
	bad      int // requests whose signature did not verify
	answer   func(r Request) Reply
	changed  chan struct{}
}

// Start runs a backend until the test ends. answer decides each reply;
// nil accepts every connection and answers PUT and DELETE with 204.
func Start(t testing.TB, answer func(Request) Reply) *Backend {
	t.Helper()
	b := &Backend{t: t, answer: answer, changed: make(chan struct{})}
	if b.answer == nil {
		b.answer = AcceptAll
	}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		b.Close()
		if n := b.BadSignatures(); n > 0 {
			t.Errorf("backend received %d requests without a valid signature", n)
		}
	})
	return b
}

// AcceptAll accepts every connection; PUT and DELETE get 204.
func AcceptAll(r Request) Reply {
	if r.Method == http.MethodPost {
		return Reply{Status: 200, Body: `{"code":"OK"}`}
	}
	return Reply{Status: 204}
}

func (b *Backend) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	if err := webhook.Verify([]byte(Secret), r.Header, raw, time.Now(), 5*time.Minute); err != nil {
		b.mu.Lock()
		b.bad++
		b.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	req := Request{Method: r.Method, Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &req.Body)
	b.mu.Lock()
	b.requests = append(b.requests, req)
	close(b.changed)
	b.changed = make(chan struct{})
	answer := b.answer
	b.mu.Unlock()
	reply := answer(req)
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if reply.Body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(reply.Status)
	_, _ = io.WriteString(w, reply.Body)
}

// SetAnswer replaces the reply function.
func (b *Backend) SetAnswer(answer func(Request) Reply) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answer = answer
}

// Requests returns the verified requests received so far with method
// ("" for all) and, if conn is not empty, the body's connection conn.
func (b *Backend) Requests(method, conn string) []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Request
	for _, r := range b.requests {
		if (method == "" || r.Method == method) && (conn == "" || r.Str("connection") == conn) {
			out = append(out, r)
		}
	}
	return out
}

// BadSignatures counts requests refused for their signature.
func (b *Backend) BadSignatures() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bad
}

// Wait waits up to timeout for a request with method about conn and
// returns the first, failing the test if none comes.
func (b *Backend) Wait(method, conn string, timeout time.Duration) Request {
	b.t.Helper()
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		changed := b.changed
		b.mu.Unlock()
		if rs := b.Requests(method, conn); len(rs) > 0 {
			return rs[0]
		}
		select {
		case <-changed:
		case <-deadline:
			b.t.Fatalf("backend got no %s for connection %q within %s", method, conn, timeout)
			return Request{}
		}
	}
}
