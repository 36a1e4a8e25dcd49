package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

func TestMessage(t *testing.T) {
	cases := []struct {
		name       string
		answer     func(http.ResponseWriter, *http.Request, string)
		want       []string
		wantReason string
	}{
		{name: "envelopes", answer: reply(200, `[{"channel":"app","message":{"type":"Ack","contents":1}}, {"channel":"app","message":{"type":"Done"}}]`),
			want: []string{`{"channel":"app","message":{"type":"Ack","contents":1}}`, `{"channel":"app","message":{"type":"Done"}}`}},
		{name: "empty array", answer: reply(200, `[]`), want: []string{}},
		{name: "empty body", answer: reply(200, ``)},
		{name: "204", answer: reply(204, ``)},
		{name: "not an array", answer: reply(200, `{"envelopes":[]}`), wantReason: ReasonBadReply},
		{name: "non-2xx", answer: reply(500, `[]`), wantReason: ReasonStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, tc.answer)
			c, _ := newClient(t, b.URL, Options{})
			env := json.RawMessage(`{"channel":"app","message":{"type":"Hello","contents":{"n":1}}}`)
			got, err := c.Message(context.Background(), MessageEvent{Connection: "c1", User: "alice", Envelope: env})

			req := b.next(t)
			if req.Method != http.MethodPut || req.SigErr != nil {
				t.Errorf("method %s, signature %v", req.Method, req.SigErr)
			}
			if want := `{"connection":"c1","user":"alice","envelope":` + string(env) + `}`; req.Body != want {
				t.Errorf("body %s, want %s", req.Body, want)
			}
			if tc.wantReason != "" {
				var werr *Error
				if !errors.As(err, &werr) || werr.Reason != tc.wantReason {
					t.Fatalf("Message error %v, want reason %s", err, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d envelopes %s, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("envelope %d = %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}
