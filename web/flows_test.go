package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/testredis"
	"github.com/switchboard/switchboard/protocol"
)

func TestChatInboxAndPingReachThePage(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	bob := dialSynced(t, n.WS()+"?user=bob")
	p := openPage(t, n.URL+"/", desktop)
	p.connect("alice")
	if u := p.evalString(`document.getElementById('self').dataset.user`); u != "alice" {
		t.Errorf("page shows user %q, want alice", u)
	}

	p.sendChat("hello from the browser")
	var got protocol.ChatMessage
	bob.WaitFor(protocol.ChannelChat, protocol.TypeNewMessageReceived).Decode(t, &got)
	if got.Content != "hello from the browser" || got.ID == "" {
		t.Fatalf("Go client got %+v", got)
	}
	p.waitList("chat after the page's message", chatJS, "hello from the browser")
	if v := p.evalString(`document.querySelector('#chat .compose-input').value`); v != "" {
		t.Errorf("chat input still holds %q after a successful send", v)
	}
	bob.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "hello from Go")
	p.waitList("chat after the Go client's message", chatJS, "hello from the browser", "hello from Go")

	if status, body := n.Do(t, http.MethodPost, "/message", `{"username":"alice","content":"for you","type":"note"}`, nil); status/100 != 2 {
		t.Fatalf("POST /message = %d %s", status, body)
	}
	p.waitList("the inbox", `[...document.querySelectorAll('#inbox-messages .text')].map(e => e.textContent)`, "for you")
	p.waitFor("the unread inbox mark", `document.querySelector('[role=tab][data-key=inbox]').dataset.unread === '1'`)

	if status, body := n.Do(t, http.MethodGet, "/ping2", "", nil); status/100 != 2 {
		t.Fatalf("GET /ping2 = %d %s", status, body)
	}
	p.waitFor("the ping", `document.getElementById('last-ping').textContent.startsWith('Ping 2')`)
}

// TestRoomAcrossTwoNodes runs the page on one node and a Go client on
// another, sharing a real Redis: members, messages both ways, older
// history and leaving.
func TestRoomAcrossTwoNodes(t *testing.T) {
	srv := testredis.Start(t)
	env := map[string]string{"REDIS_URL": srv.URL(), "REDIS_PREFIX": "web:"}
	a := testnode.StartRedis(t, testnode.Config(t, env))
	b := testnode.StartRedis(t, testnode.Config(t, env))

	bob := dialSynced(t, b.WS()+"?user=bob")
	bob.Join("#lobby", "bob", "bob")
	for i := 1; i <= 3; i++ {
		bob.Say("#lobby", fmt.Sprintf("earlier %d", i))
		bob.ExpectRoomMessage("#lobby", "bob", fmt.Sprintf("earlier %d", i))
	}

	p := openPage(t, a.URL+"/", desktop)
	p.connect("alice")
	p.joinRoom("#lobby")
	p.waitList("members", membersJS("#lobby"), "alice", "bob")
	bob.ExpectRoomUser(protocol.TypeJoinedRoom, "#lobby", "alice")
	p.waitList("no messages before loading older ones", roomJS("#lobby"))

	p.click(roomPane("#lobby") + " .load-older")
	p.waitList("older messages", roomJS("#lobby"), "bob: earlier 1", "bob: earlier 2", "bob: earlier 3")
	p.waitFor("the end of history", roomSel("#lobby")+`.querySelector('.load-older').hidden`)

	p.sayInRoom("#lobby", "hi bob")
	bob.ExpectRoomMessage("#lobby", "alice", "hi bob")
	bob.Say("#lobby", "hi alice")
	p.waitList("room messages", roomJS("#lobby"), "bob: earlier 1", "bob: earlier 2", "bob: earlier 3", "alice: hi bob", "bob: hi alice")

	carol := dialSynced(t, b.WS()+"?user=carol")
	carol.Join("#lobby", "carol", "alice", "bob", "carol")
	p.waitList("members after carol joined", membersJS("#lobby"), "alice", "bob", "carol")
	carol.Close()
	p.waitList("members after carol left", membersJS("#lobby"), "alice", "bob")

	p.click(roomPane("#lobby") + " .leave")
	bob.WaitFor(protocol.ChannelChatRoom, protocol.TypeLeftRoom)
	p.waitList("the room's tab to close", tabsJS, "Chat", "Inbox")
}

// TestLargeRoomMembersLoadMore pages through a room past LARGE_ROOM with
// "Load more".
func TestLargeRoomMembersLoadMore(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, map[string]string{"LARGE_ROOM": "3", "MEMBER_PAGE": "2"}))
	for _, u := range []string{"ann", "ben", "cat"} {
		c := dialSynced(t, n.WS()+"?user="+u)
		c.Send(protocol.ChannelChatRoom, protocol.TypeJoinRoom, protocol.JoinRoom{Room: "#big"})
		c.WaitFor(protocol.ChannelChatRoom, protocol.TypeMemberList)
	}
	p := openPage(t, n.URL+"/", desktop)
	p.connect("dan")
	p.joinRoom("#big")
	p.waitList("the first page of members", membersJS("#big"), "ann", "ben")
	if c := p.evalString(roomSel("#big") + `.querySelector('.member-count').textContent`); !strings.HasPrefix(c, "(2 of ") {
		t.Errorf("member count %q, want (2 of …)", c)
	}
	p.click(roomPane("#big") + " .load-more")
	p.waitList("every member", membersJS("#big"), "ann", "ben", "cat", "dan")
	p.waitFor("no more pages", roomSel("#big")+`.querySelector('.load-more').hidden`)
	p.waitFor("the full count", roomSel("#big")+`.querySelector('.member-count').textContent === '(4)'`)
}
