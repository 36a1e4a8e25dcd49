package web_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/testnode"
)

func TestSmoke(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	p := openPage(t, n.URL+"/", desktop)
	p.connect("alice")
	p.sendChat("hello")
	p.waitList("chat", chatJS, "hello")
	p.joinRoom("#lobby")
	p.waitList("members", membersJS("#lobby"), "alice")
	p.sayInRoom("#lobby", "hi")
	p.waitList("room", roomJS("#lobby"), "alice: hi")
}
