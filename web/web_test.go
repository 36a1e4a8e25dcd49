package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/web"
)

// wait bounds every wait on the page.
const wait = 15 * time.Second

func TestHandlerServesPageAndAssetsOnly(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		body         string
	}{
		{http.MethodGet, "/", http.StatusOK, "text/html", `<script src="/static/app.js"`},
		{http.MethodHead, "/", http.StatusOK, "text/html", ""},
		{http.MethodGet, "/static/app.js", http.StatusOK, "text/javascript", "'use strict'"},
		{http.MethodGet, "/static/style.css", http.StatusOK, "text/css", ":root"},
		{http.MethodGet, "/static/", http.StatusNotFound, "", ""},
		{http.MethodGet, "/static/missing.js", http.StatusNotFound, "", ""},
		{http.MethodGet, "/index.html", http.StatusNotFound, "", ""},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("%s %s: Content-Type %q, want %s", tc.method, tc.path, ct, tc.contentType)
		}
		if !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.body)
		}
		if tc.status == http.StatusOK && !strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s %s: no Content-Security-Policy", tc.method, tc.path)
		}
	}
}

func TestNodeServesPage(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	if status, body := n.Do(t, http.MethodGet, "/", "", nil); status != http.StatusOK || !strings.Contains(body, "Switchboard") {
		t.Fatalf("GET / = %d %.80q", status, body)
	}
}

func TestChatFlowsBetweenPageAndGoClient(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	bob := dialSynced(t, n.WS()+"?user=bob")
	p := openPage(t, n.URL+"/")
	p.connect("alice")

	p.sendChat("hello from the browser")
	var got protocol.ChatMessage
	bob.WaitFor(protocol.ChannelChat, protocol.TypeNewMessageReceived).Decode(t, &got)
	if got.Content != "hello from the browser" || got.ID == "" {
		t.Fatalf("Go client got %+v", got)
	}
	// The page shows its own message once it is back: it is subscribed.
	p.waitList("chat after the page's message", chatJS, "hello from the browser")

	bob.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "hello from Go")
	p.waitList("chat after the Go client's message", chatJS, "hello from the browser", "hello from Go")
}

func TestRoomMembersAndMessagesFlowBothWays(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	bob := dialSynced(t, n.WS()+"?user=bob")
	p := openPage(t, n.URL+"/")
	p.connect("alice")

	p.joinRoom("#lobby")
	p.waitList("members before bob", membersJS("#lobby"), "alice")
	bob.Join("#lobby", "bob", "alice", "bob")
	p.waitList("members after bob joined", membersJS("#lobby"), "alice", "bob")

	p.sayInRoom("#lobby", "hi bob")
	bob.ExpectRoomMessage("#lobby", "alice", "hi bob")
	bob.Say("#lobby", "hi alice")
	bob.ExpectRoomMessage("#lobby", "bob", "hi alice")
	p.waitList("room messages", roomJS("#lobby"), "alice: hi bob", "bob: hi alice")

	p.click(fmt.Sprintf(`section.room[data-room=%q] button.leave`, "#lobby"))
	bob.ExpectRoomUser(protocol.TypeLeftRoom, "#lobby", "alice")
	p.waitFor("the room to close", `document.querySelectorAll('section.room').length === 0`)
}

// TestReconnectReplaysMissedRoomMessagesOnce cuts the page's connection,
// posts while it is away, and expects the page to come back on its own and
// show every message exactly once, in order, with no gap notice.
func TestReconnectReplaysMissedRoomMessagesOnce(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	px := startProxy(t, strings.TrimPrefix(n.URL, "http://"))
	bob := dialSynced(t, n.WS()+"?user=bob")
	p := openPage(t, px.URL()+"/")
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
	p.waitFor("the page to notice", `document.getElementById('status').dataset.state !== 'connected'`)
	px.up()

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
	if gap := p.evalString(roomSel("#ops") + `?.dataset.gap || ''`); gap != "" {
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
	p := openPage(t, px.URL()+"/")
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
	p.waitFor("the page to notice", `document.getElementById('status').dataset.state !== 'connected'`)
	px.up()

	p.waitFor("the gap notice", roomSel("#small")+`?.querySelector('.gap-notice:not([hidden])') != null`)
	p.waitList("retained messages", roomJS("#small"), "bob: m0", "bob: m4", "bob: m5", "bob: m6")
}

// TestReusedTicketIsNotRetried checks that a policy close of a refused
// ticket stops the client and shows why, instead of reconnecting.
func TestReusedTicketIsNotRetried(t *testing.T) {
	const key = "test-api-key"
	n := testnode.StartMemory(t, testnode.Config(t, map[string]string{
		"JWT_SECRET":     strings.Repeat("s", 32),
		"SERVER_API_KEY": key,
	}))
	status, body := n.Do(t, http.MethodPost, "/tokens", `{"user":"carol"}`, http.Header{"Authorization": {"Bearer " + key}})
	var ticket struct{ Token string }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &ticket) != nil {
		t.Fatalf("POST /tokens = %d %s", status, body)
	}
	p := openPage(t, n.URL+"/")
	p.do("enter the ticket", chromedp.SetValue(chromedp.ID("ticket"), ticket.Token))
	p.click("#connect")
	p.waitFor("connected", statusIs("connected"))
	p.waitFor("the ticket's user", `document.getElementById('self').dataset.user === 'carol'`)

	p.click("#disconnect")
	p.waitFor("disconnected", statusIs("idle"))
	p.click("#connect") // the same, now used, ticket
	p.waitFor("the refusal", statusIs("failed"))
	if detail := p.evalString(`document.getElementById('status-detail').textContent`); !strings.Contains(detail, "ticket already used") {
		t.Errorf("status detail %q does not give the reason", detail)
	}
	p.waitFor("the close code in the errors", `document.querySelector('#errors li[data-code="1008"]') != null`)
	if c := p.evalString(`document.getElementById('status').dataset.connects`); c != "1" {
		t.Errorf("data-connects = %s, want 1", c)
	}
}

// ---- The page ---------------------------------------------------------------

// JavaScript expressions reading the page's state.
const chatJS = `[...document.querySelectorAll('#chat-messages li.msg .text')].map(e => e.textContent)`

func roomSel(room string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('section.room')].find(s => s.dataset.room === %s)`, jsString(room))
}

func roomJS(room string) string {
	return fmt.Sprintf(`[...(%s?.querySelectorAll('.room-messages li.msg') ?? [])].map(li => li.dataset.user + ': ' + li.querySelector('.text').textContent)`, roomSel(room))
}

func membersJS(room string) string {
	return fmt.Sprintf(`[...(%s?.querySelectorAll('.members li') ?? [])].map(li => li.dataset.user)`, roomSel(room))
}

func roomStateIs(room, state string) string {
	return fmt.Sprintf(`%s?.dataset.state === %s`, roomSel(room), jsString(state))
}

func statusIs(state string) string {
	return fmt.Sprintf(`document.getElementById('status').dataset.state === %s`, jsString(state))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// page is one browser tab showing the client.
type page struct {
	t   *testing.T
	ctx context.Context // the tab; it has run, so derived timeouts end only their action

	mu      sync.Mutex
	console []string
	thrown  []string
}

// openPage starts a fresh headless Chromium for the test and loads url.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	execPath := chromium(t)
	dataDir, err := os.MkdirTemp("", "switchboard-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dataDir) })

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc) // waits for the browser to exit
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	p := &page{t: t, ctx: ctx}

	// Start the browser with a context that has no timeout: the first Run
	// binds the browser's life to its context.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		t.Fatalf("start chromium: %v", err)
	}
	console := chromedp.Console(ctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range console {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m))
			if m.IsException() {
				p.thrown = append(p.thrown, m.String())
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		<-consoleDone
	})
	t.Cleanup(p.report)

	p.do("load the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("connect")))
	p.waitFor("the script to run", `document.getElementById('server-url').value !== ''`)
	return p
}

// report fails the test on uncaught page exceptions and, when the test
// failed, logs what the page showed.
func (p *page) report() {
	p.mu.Lock()
	thrown, console := p.thrown, p.console
	p.mu.Unlock()
	for _, e := range thrown {
		p.t.Errorf("uncaught exception in the page: %s", e)
	}
	if !p.t.Failed() {
		return
	}
	p.t.Logf("page status: %s", p.evalString(`document.getElementById('status').dataset.state + ' / ' + document.getElementById('status').textContent.replace(/\s+/g, ' ')`))
	p.t.Logf("page errors: %s", p.evalString(`[...document.querySelectorAll('#errors li')].map(li => li.textContent).join(' | ')`))
	for _, line := range console {
		p.t.Logf("console: %s", line)
	}
}

// chromium finds the browser, or skips (SWITCHBOARD_SKIP_BROWSER=1) or
// fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if path, err := exec.LookPath("chromium"); err == nil {
		return path
	}
	if os.Getenv("SWITCHBOARD_SKIP_BROWSER") == "1" {
		t.Skip("chromium not found and SWITCHBOARD_SKIP_BROWSER=1")
	}
	t.Fatal("chromium not found: install chromium (make test does this)")
	return ""
}

// do runs actions, bounded by wait.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) click(css string) {
	p.t.Helper()
	p.do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// waitFor polls a JavaScript condition until it holds, failing after wait.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait+time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void]("!!("+cond+")", chromedp.WithPollingTimeout(wait))); err != nil {
		p.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitList polls until a JavaScript list of strings is exactly want.
func (p *page) waitList(what, list string, want ...string) {
	p.t.Helper()
	if want == nil {
		want = []string{}
	}
	wantJS, _ := json.Marshal(want)
	cond := fmt.Sprintf(`((got, want) => got.length === want.length && got.every((v, i) => v === want[i]))(%s, %s)`, list, wantJS)
	ctx, cancel := context.WithTimeout(p.ctx, wait+time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(wait))); err != nil {
		got, _ := p.eval(list)
		p.t.Fatalf("waiting for %s: %v\n got: %s\nwant: %s", what, err, got, wantJS)
	}
}

// eval returns an expression's value as JSON.
func (p *page) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	return string(raw), err
}

func (p *page) evalString(expr string) string {
	p.t.Helper()
	raw, err := p.eval(expr)
	var s string
	if err != nil || json.Unmarshal([]byte(raw), &s) != nil {
		p.t.Errorf("evaluate %s: %v (%s)", expr, err, raw)
	}
	return s
}

func (p *page) connect(user string) {
	p.t.Helper()
	p.do("enter the user name", chromedp.SetValue(chromedp.ID("user-name"), user))
	p.click("#connect")
	p.waitFor("connected", statusIs("connected"))
}

func (p *page) sendChat(text string) {
	p.t.Helper()
	p.do("type a chat message", chromedp.SetValue(chromedp.ID("chat-input"), text))
	p.click("#chat-send")
}

func (p *page) joinRoom(room string) {
	p.t.Helper()
	p.do("type a room", chromedp.SetValue(chromedp.ID("join-room-input"), room))
	p.click("#join-room")
	p.waitFor("joined "+room, roomStateIs(room, "joined"))
}

func (p *page) sayInRoom(room, text string) {
	p.t.Helper()
	pane := fmt.Sprintf(`section.room[data-room=%q]`, room)
	p.do("type a room message", chromedp.SetValue(chromedp.CSS(pane+" .room-input"), text))
	p.click(pane + " .room-send-button")
}

// ---- Go clients and the proxy -------------------------------------------------

// dialSynced connects a Go client and waits until the server has admitted
// it (subscribed it to chat), which Dial alone does not promise.
func dialSynced(t *testing.T, url string) *wstest.Client {
	t.Helper()
	c := wstest.Open(t, url)
	c.Send(protocol.ChannelChat, protocol.TypeGetHistory, protocol.GetHistory{})
	c.WaitFor(protocol.ChannelChat, protocol.TypeHistory)
	return c
}

// proxy forwards TCP connections to a target. down cuts every connection
// and refuses new ones (it still listens, so clients see their attempts
// fail rather than hang); up lets them through again.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	paused bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

func (p *proxy) forward(client net.Conn) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, upstream) {
		_ = client.Close()
		_ = upstream.Close()
		return
	}
	defer p.untrack(client, upstream)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(upstream, client)
	go pipe(client, upstream)
	<-done
	// One side ended: end both, which ends the other copy.
	_ = client.Close()
	_ = upstream.Close()
	<-done
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
	}
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset, as a dropped network would
		}
		_ = c.Close()
	}
}

func (p *proxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
}
