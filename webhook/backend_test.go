package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

var testSecret = []byte("test-secret")

// request is one webhook request as the test backend received it.
type request struct {
	Method string
	Header http.Header
	Body   string
	SigErr error // result of Verify
}

// backend is a real HTTP server standing in for an application backend.
// Its handler answers each request; every request is recorded, its
// signature verified.
type backend struct {
	*httptest.Server
	got chan request
}

// newBackend starts a backend on 127.0.0.1:0 that answers with answer.
func newBackend(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body string)) *backend {
	t.Helper()
	b := &backend{got: make(chan request, 100)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		b.got <- request{
			Method: r.Method,
			Header: r.Header.Clone(),
			Body:   string(data),
			SigErr: Verify(testSecret, r.Header, data, time.Now(), time.Minute),
		}
		answer(w, r, string(data))
	}))
	t.Cleanup(b.Close)
	return b
}

// next returns the next recorded request.
func (b *backend) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-b.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("backend received no request")
		return request{}
	}
}

// reply answers status and body.
func reply(status int, body string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hang answers only once the request is cancelled or release is closed.
func hang(release <-chan struct{}) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, _ string) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		_, _ = io.WriteString(w, `{"code":"OK"}`)
	}
}

// newClient returns a Client for url with a fresh registry; it is closed
// when the test ends.
func newClient(t *testing.T, url string, opts Options) (*Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.URL = url
	if opts.Secret == nil {
		opts.Secret = testSecret
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Second
	}
	opts.Registerer = reg
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, reg
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }

// metricValue returns the value of the counter, or the sample count of
// the histogram, named name whose labels include labels, summed over the
// matching series of reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				sum += float64(h.GetSampleCount())
			} else {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
