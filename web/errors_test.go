package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/testnode"
)

// TestRefusedJoinShowsWhyAndRemovesOnlyThatTab joins a room the server
// refuses and expects the reason next to the join form, naming the room,
// the refused room's tab gone (never left "joining…") and the other tabs
// untouched.
func TestRefusedJoinShowsWhyAndRemovesOnlyThatTab(t *testing.T) {
	for _, tc := range []struct {
		name, room, code string
	}{
		{"too many rooms", "#second", "too_many_rooms"},
		{"invalid name", strings.Repeat("x", 200), "invalid_contents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testnode.StartMemory(t, testnode.Config(t, map[string]string{"MAX_ROOMS": "1"}))
			p := openPage(t, n.URL+"/", desktop)
			p.connect("alice")
			p.joinRoom("#first")

			p.startJoin(tc.room)
			p.waitFor("the join error", `document.getElementById('join-error').dataset.room === `+jsString(tc.room))
			if code := p.evalString(`document.getElementById('join-error').dataset.code`); code != tc.code {
				t.Errorf("join error code %q, want %q", code, tc.code)
			}
			p.waitList("tabs", tabsJS, "Chat", "Inbox", "#first")
			if n := p.evalString(`String(document.querySelectorAll('[data-state=joining]').length)`); n != "0" {
				t.Errorf("%s elements still joining", n)
			}
			p.waitFor("#first still joined", roomStateIs("#first", "joined"))
			p.waitFor("the problem announced", `[...document.querySelectorAll('#alerts li')].some(li => li.dataset.code === `+jsString(tc.code)+`)`)
		})
	}
}

// TestOversizedMessageKeepsTextAndSaysWhy sends a message larger than the
// server takes: caught by the page before sending (the server's default
// limit) or by the server, which closes the connection with 1009 (a
// smaller MAX_FRAME_BYTES than the page knows). Either way the text stays
// in the input with the reason next to it.
func TestOversizedMessageKeepsTextAndSaysWhy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		size       int
		inRoom     bool
		reconnects bool
		says       string
	}{
		{"page limit, room", nil, 70000, true, false, "Too long to send"},
		{"page limit, chat", nil, 70000, false, false, "Too long to send"},
		{"server limit, room", map[string]string{"MAX_FRAME_BYTES": "2048"}, 4000, true, true, "Not sent"},
		{"server limit, chat", map[string]string{"MAX_FRAME_BYTES": "2048"}, 4000, false, true, "Not sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testnode.StartMemory(t, testnode.Config(t, tc.env))
			p := openPage(t, n.URL+"/", desktop)
			p.connect("alice")
			pane := "#chat"
			if tc.inRoom {
				p.joinRoom("#big")
				pane = roomPane("#big")
			}
			text := strings.Repeat("é", tc.size/2)
			p.setValue(pane+" .compose-input", text)
			p.click(pane + " .send")
			q := func(sel string) string { return `document.querySelector(` + jsString(pane+" "+sel) + `)` }
			p.waitFor("the error next to the input", q(".composer .field-error")+`.textContent.includes(`+jsString(tc.says)+`)`)
			p.waitFor("the text kept", q(".compose-input")+`.value === `+jsString(text))
			if tc.reconnects {
				p.waitFor("the reconnect", `document.getElementById('status').dataset.connects === '2'`)
				if tc.inRoom {
					p.waitFor("the room joined again", roomStateIs("#big", "joined"))
				}
			} else if c := p.evalString(`document.getElementById('status').dataset.connects`); c != "1" {
				t.Errorf("connects = %s: the page dropped its connection", c)
			}
			p.waitFor("the input focusable again", `!`+q(".compose-input")+`.disabled`)
		})
	}
}

const apiKey = "test-api-key"

// authNode starts a node in authenticated mode.
func authNode(t *testing.T, env ...string) *testnode.Node {
	t.Helper()
	vars := map[string]string{
		"JWT_SECRET":     strings.Repeat("s", 32),
		"SERVER_API_KEY": apiKey,
	}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	return testnode.StartMemory(t, testnode.Config(t, vars))
}

// mintTicket asks the node for a ticket for user.
func mintTicket(t *testing.T, n *testnode.Node, user string) string {
	t.Helper()
	status, body := n.Do(t, http.MethodPost, "/tokens", `{"user":"`+user+`"}`, http.Header{"Authorization": {"Bearer " + apiKey}})
	var ticket struct{ Token string }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &ticket) != nil || ticket.Token == "" {
		t.Fatalf("POST /tokens = %d %s", status, body)
	}
	return ticket.Token
}

// TestTicketModeAsksForAFreshTicketToReconnect connects with a pasted
// ticket, loses the connection, and expects the page to ask for a fresh
// ticket (getToken called again) and to resume with it.
func TestTicketModeAsksForAFreshTicketToReconnect(t *testing.T) {
	n := authNode(t)
	px := startProxy(t, strings.TrimPrefix(n.URL, "http://"))
	p := openPage(t, px.URL()+"/", desktop)
	p.setValue("#ticket", mintTicket(t, n, "carol"))
	p.click("#connect")
	p.waitFor("connected", statusIs("online"))
	p.waitFor("the ticket's user", `document.getElementById('self').dataset.user === 'carol'`)
	p.joinRoom("#ops")

	px.down()
	p.waitFor("the page to ask for a ticket", statusIs("ticket"))
	p.waitFor("the ticket field open", `document.getElementById('ticket-box').open && document.getElementById('ticket-hint').textContent.includes('fresh ticket')`)
	px.up()
	p.setValue("#ticket", mintTicket(t, n, "carol"))
	p.click("#connect")
	p.waitFor("connected again", statusIs("online"))
	p.waitFor("the room joined again", roomStateIs("#ops", "joined"))
	if c := p.evalString(`String(window.switchboard.tickets.calls)`); c != "2" {
		t.Errorf("getToken handed out %s tickets, want 2", c)
	}
}

// TestTicketURLIsAskedForEveryConnection serves the page beside a ticket
// endpoint, as an app's backend would, and expects a fresh ticket from it
// for each connection, so that a reconnect needs no user action.
func TestTicketURLIsAskedForEveryConnection(t *testing.T) {
	var n *testnode.Node
	app := startApp(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		_, _ = w.Write([]byte(mintTicket(t, n, "dave")))
	})
	// The page comes from the app's origin: the node must allow it.
	n = authNode(t, "ALLOWED_ORIGINS", strings.TrimPrefix(app.URL, "http://"))
	px := startProxy(t, strings.TrimPrefix(n.URL, "http://"))
	p := openPage(t, app.URL+"/?ticketUrl=/ticket&server="+strings.Replace(px.URL(), "http", "ws", 1)+"/websockets", desktop)
	p.click("#connect")
	p.waitFor("connected", statusIs("online"))
	p.waitFor("the ticket's user", `document.getElementById('self').dataset.user === 'dave'`)
	p.joinRoom("#ops")
	px.down()
	p.waitFor("the page to notice", statusIs("reconnecting"))
	px.up()
	p.retryNow()
	p.waitFor("the room joined again", `document.getElementById('status').dataset.connects === '2' && `+roomStateIs("#ops", "joined"))
	if c := p.evalString(`String(window.switchboard.tickets.calls)`); c < "2" {
		t.Errorf("ticket URL asked %s times, want at least 2", c)
	}
}

// TestRefusedTicketIsNotRetried checks that a reused ticket stops the
// client and says why, instead of reconnecting.
func TestRefusedTicketIsNotRetried(t *testing.T) {
	n := authNode(t)
	ticket := mintTicket(t, n, "carol")
	p := openPage(t, n.URL+"/", desktop)
	p.setValue("#ticket", ticket)
	p.click("#connect")
	p.waitFor("connected", statusIs("online"))
	p.click("#disconnect")
	p.waitFor("disconnected", statusIs("closed"))

	p.setValue("#ticket", ticket) // the same, now used, ticket
	p.click("#connect")
	p.waitFor("the refusal", statusIs("failed"))
	if detail := p.evalString(`document.getElementById('status-detail').textContent`); !strings.Contains(detail, "ticket already used") {
		t.Errorf("status detail %q does not give the reason", detail)
	}
	p.waitFor("the close code in the problems", `document.querySelector('#alerts li[data-code="1008"]') != null`)
	time.Sleep(time.Second)
	if s := p.evalString(`document.getElementById('status').dataset.state`); s != "failed" {
		t.Errorf("state %q a second after the refusal: the page retried", s)
	}
}

// TestNoTicketOnAuthenticatedServerSaysSoAtOnce connects without a ticket
// to a server that needs one, on a desktop and a phone, and expects to be
// told within a second, in the problems region within the first screen.
func TestNoTicketOnAuthenticatedServerSaysSoAtOnce(t *testing.T) {
	for _, vp := range []struct {
		name string
		vp   viewport
	}{{"desktop", desktop}, {"phone", phone}} {
		t.Run(vp.name, func(t *testing.T) {
			n := authNode(t)
			p := openPage(t, n.URL+"/", vp.vp)
			p.click("#connect")
			p.waitWithin("the page to say a ticket is needed", `[...document.querySelectorAll('#alerts li')].some(li => li.textContent.includes('needs a ticket'))`, time.Second)
			p.waitFor("the failed state", statusIs("failed"))
			var box struct{ Top, Bottom, Height float64 }
			p.evalJSON(`(() => { const r = document.querySelector('#alerts li').getBoundingClientRect(); return {top: r.top, bottom: r.bottom, height: innerHeight}; })()`, &box)
			if box.Top < 0 || box.Bottom > box.Height {
				t.Errorf("the problem is at %.0f–%.0f px, outside the first screen (%.0f px)", box.Top, box.Bottom, box.Height)
			}
		})
	}
}
