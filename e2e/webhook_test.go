package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testbackend"
	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/webhook"
)

// TestCrashedNodeDeletesSentOnce SIGKILLs a node holding three sockets:
// its connection records expire after CONNECTION_TTL, and exactly one of
// the two surviving nodes sends each socket's DELETE, marked crashed, with
// the connection id as idempotency key; nothing is sent twice.
func TestCrashedNodeDeletesSentOnce(t *testing.T) {
	_, srv := singleRedis(t)
	b := testbackend.Start(t, nil)
	const ttl = 2 * time.Second
	env := map[string]string{
		"REDIS_URL": srv.URL(), "REDIS_PREFIX": "hooks:", "CONNECTION_TTL": ttl.String(),
		"API_URI": b.URL, "WEBHOOK_SECRET": testbackend.Secret,
	}
	victim := testnode.StartProcess(t, binary, env)
	survivors := []*testnode.Node{
		testnode.StartRedis(t, testnode.Config(t, env)),
		testnode.StartRedis(t, testnode.Config(t, env)),
	}
	var ids []string
	for _, user := range []string{"ann", "ben", "ann"} {
		_, hello := wstest.Connect(t, victim.WS()+"?user="+user)
		ids = append(ids, hello.Connection)
		b.Wait(http.MethodPost, hello.Connection, 5*time.Second)
	}
	// A socket on a survivor stays untouched.
	_, kept := wstest.Connect(t, survivors[0].WS()+"?user=kept")

	killed := time.Now()
	victim.Kill()
	for _, id := range ids {
		del := b.Wait(http.MethodDelete, id, converge)
		if del.Body["crashed"] != true || del.Body["code"] != float64(1006) {
			t.Errorf("DELETE of %s = %s, want crashed with 1006", id, del.Raw)
		}
		if del.Header.Get(webhook.IdempotencyHeader) != id {
			t.Errorf("DELETE of %s carries Idempotency-Key %q", id, del.Header.Get(webhook.IdempotencyHeader))
		}
	}
	if took := time.Since(killed); took > ttl+3*time.Second {
		t.Errorf("takeover took %s with CONNECTION_TTL %s", took, ttl)
	}
	// Several more sweeps by both survivors: still one DELETE each.
	time.Sleep(3 * ttl)
	for _, id := range ids {
		if n := len(b.Requests(http.MethodDelete, id)); n != 1 {
			t.Errorf("connection %s got %d DELETEs, want exactly 1", id, n)
		}
	}
	if n := len(b.Requests(http.MethodDelete, kept.Connection)); n != 0 {
		t.Errorf("the survivor's live connection got %d DELETEs", n)
	}
}
