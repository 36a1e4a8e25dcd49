package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/protocol"
)

// TestReconnectReplaysMissedRoomMessagesOnce cuts the page's connection,
// posts while it is away, and expects the page to show the countdown and
// "Retry now", and after Retry now to show every message exactly once, in
// order, with no gap notice.
func TestReconnectReplaysMissedRoomMessagesOnce(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	px := startProxy(t, strings.TrimPrefix(n.URL, "http://"))
	bob := dialSynced(t, n.WS()+"?user=bob")
	p := openPage(t, px.URL()+"/", desktop)
	p.connect("alice")
	p.joinRoom("#ops")
	bob.Join("#ops", "bob", "alice", "bob")

	bob.Say("#ops", "before")
	p.waitList("messages before the cut", roomJS("#ops"), "bob: before")

	missed := []string{"m1", "m2", "m3", "m4", "m5"}
	px.down()
	// The server has dropped the page: what follows is missed, not live.
	bob.WaitFor(protocol.ChannelChatRoom, protocol.TypeLeftRoom)
	for _, m := range missed {
		bob.Say("#ops", m)
	}
	p.waitFor("the page to notice", statusIs("reconnecting"))
	p.waitFor("the room to wait", roomStateIs("#ops", "waiting"))
	// Attempts fail while the proxy is down; the backoff grows past the
	// first half second, so a countdown shows.
	p.waitFor("a countdown", `/next attempt in \d+ s/.test(document.getElementById('status-detail').textContent)`)
	p.waitFor("Retry now", `!document.getElementById('retry-now').hidden`)
	px.up()
	p.retryNow()

	want := []string{"bob: before"}
	for _, m := range missed {
		want = append(want, "bob: "+m)
	}
	p.waitList("messages after reconnecting", roomJS("#ops"), want...)
	// A live message after the replay: any duplicate of the replay would
	// have to arrive before it.
	bob.Say("#ops", "after")
	p.waitList("messages after a live one", roomJS("#ops"), append(want, "bob: after")...)

	p.waitFor("the room to be joined again", roomStateIs("#ops", "joined"))
	if gap := p.evalString(roomSel("#ops") + `.querySelector('.gap-notice').hidden ? '' : 'shown'`); gap != "" {
		t.Errorf("gap notice shown after a lossless reconnect")
	}
	if c := p.evalString(`document.getElementById('status').dataset.connects`); c == "1" {
		t.Errorf("data-connects = %s after a reconnect", c)
	}
}

// TestReconnectShowsGapWhenHistoryWasTrimmed lets more messages pass while
// the page is away than the server keeps.
func TestReconnectShowsGapWhenHistoryWasTrimmed(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, map[string]string{"HISTORY_SIZE": "3"}))
	px := startProxy(t, strings.TrimPrefix(n.URL, "http://"))
	bob := dialSynced(t, n.WS()+"?user=bob")
	p := openPage(t, px.URL()+"/", desktop)
	p.connect("alice")
	p.joinRoom("#small")
	bob.Join("#small", "bob", "alice", "bob")
	bob.Say("#small", "m0")
	p.waitList("messages before the cut", roomJS("#small"), "bob: m0")

	px.down()
	bob.WaitFor(protocol.ChannelChatRoom, protocol.TypeLeftRoom)
	for i := 1; i <= 6; i++ {
		bob.Say("#small", fmt.Sprintf("m%d", i))
	}
	p.waitFor("the page to notice", statusIs("reconnecting"))
	px.up()
	p.retryNow()

	p.waitFor("the gap notice", roomSel("#small")+`?.querySelector('.gap-notice:not([hidden])') != null`)
	p.waitList("retained messages", roomJS("#small"), "bob: m0", "bob: m4", "bob: m5", "bob: m6")
}
