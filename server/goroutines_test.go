package server_test

import (
	"bytes"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/wait"
	"github.com/switchboard/switchboard/internal/wstest"
)

// serverGoroutines counts the goroutines whose stack holds fn.
func serverGoroutines(t *testing.T, fn string) int {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// TestIdleConnectionKeepsOneGoroutine: once its frames are answered, an
// idle connection is one goroutine parked in Read; its writer and task
// runner exist only while they have work.
func TestIdleConnectionKeepsOneGoroutine(t *testing.T) {
	n := startNode(t, nil)
	const conns = 20
	clients := make([]*wstest.Client, conns)
	for i := range clients {
		user := "idle" + strconv.Itoa(i)
		clients[i] = wstest.Open(t, n.WS()+"?user="+user)
		clients[i].Join("#"+user, user, user) // a frame and its replies, then silence
	}
	for _, c := range clients {
		c.Barrier()
	}
	counts := func() (serving, writers, tasks int) {
		return serverGoroutines(t, "server.(*Server).serveConn"),
			serverGoroutines(t, "server.(*client).writeLoop"),
			serverGoroutines(t, "server.(*client).runTasks")
	}
	wait.For(t, 5*time.Second, "idle connections down to one goroutine each", func() bool {
		serving, writers, tasks := counts()
		return serving == conns && writers == 0 && tasks == 0
	})
}
