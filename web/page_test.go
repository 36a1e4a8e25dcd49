package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/wstest"
	"github.com/switchboard/switchboard/protocol"
)

// wait bounds every wait on the page.
const wait = 15 * time.Second

// viewport is the size of the browser window a test uses.
type viewport struct {
	width, height int64
	mobile        bool
}

var (
	desktop = viewport{width: 1280, height: 900}
	phone   = viewport{width: 390, height: 844, mobile: true}
)

// page is one browser tab showing the client.
type page struct {
	t   *testing.T
	ctx context.Context // the tab; it has run, so derived timeouts end only their action

	mu      sync.Mutex
	console []string
	thrown  []string
}

// openPage starts a fresh headless Chromium for the test and loads url in
// a window of size vp.
func openPage(t *testing.T, url string, vp viewport) *page {
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
		chromedp.WindowSize(int(vp.width), int(vp.height)),
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

	var emulate []chromedp.EmulateViewportOption
	if vp.mobile {
		emulate = append(emulate, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
	}
	p.do("size the window", chromedp.EmulateViewport(vp.width, vp.height, emulate...))
	p.do("load the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("connect")))
	p.waitFor("the script to run", `document.body.dataset.ready === 'true'`)
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
	if s, err := p.eval(`document.getElementById('status').dataset.state + ' / ' + document.getElementById('status').textContent.replace(/\s+/g, ' ')`); err == nil {
		p.t.Logf("page status: %s", s)
	}
	if s, err := p.eval(`[...document.querySelectorAll('#alerts li, .field-error, .panel-error')].map(e => e.textContent).filter(Boolean).join(' | ')`); err == nil {
		p.t.Logf("page errors: %s", s)
	}
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

// retryNow presses "Retry now" if the page is still waiting to
// reconnect: it may have reconnected by itself since the test looked, in
// which case the button is hidden and there is nothing to press.
func (p *page) retryNow() {
	p.t.Helper()
	if _, err := p.eval(`(() => { const b = document.getElementById('retry-now'); if (!b.hidden) b.click(); return '' })()`); err != nil {
		p.t.Fatalf("retry now: %v", err)
	}
}

func (p *page) setValue(css, value string) {
	p.t.Helper()
	p.do("fill "+css, chromedp.SetValue(chromedp.CSS(css), value))
}

// waitFor polls a JavaScript condition until it holds, failing after wait.
func (p *page) waitFor(what, cond string) {
	p.t.Helper()
	p.waitWithin(what, cond, wait)
}

// waitWithin polls a JavaScript condition until it holds, failing after d.
func (p *page) waitWithin(what, cond string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d+time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void]("!!("+cond+")", chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
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

func (p *page) evalJSON(expr string, dst any) {
	p.t.Helper()
	raw, err := p.eval(expr)
	if err != nil || json.Unmarshal([]byte(raw), dst) != nil {
		p.t.Fatalf("evaluate %s: %v (%s)", expr, err, raw)
	}
}

// ---- The page's controls and state ------------------------------------------

// JavaScript expressions reading the page's state.
const chatJS = `[...document.querySelectorAll('#chat-messages li.msg .text')].map(e => e.textContent)`

func roomSel(room string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('section.room')].find(s => s.dataset.room === %s)`, jsString(room))
}

func roomJS(room string) string {
	return fmt.Sprintf(`[...(%s?.querySelectorAll('.messages li.msg') ?? [])].map(li => li.dataset.user + ': ' + li.querySelector('.text').textContent)`, roomSel(room))
}

func membersJS(room string) string {
	return fmt.Sprintf(`[...(%s?.querySelectorAll('.members li') ?? [])].map(li => li.dataset.user)`, roomSel(room))
}

func roomStateIs(room, state string) string {
	return fmt.Sprintf(`%s?.dataset.state === %s`, roomSel(room), jsString(state))
}

// tabsJS lists the tabs' labels.
const tabsJS = `[...document.querySelectorAll('[role=tab] .tab-label')].map(e => e.textContent)`

func statusIs(state string) string {
	return fmt.Sprintf(`document.getElementById('status').dataset.state === %s`, jsString(state))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// roomPane is the CSS selector of a room's panel.
func roomPane(room string) string {
	return fmt.Sprintf(`section.room[data-room=%s]`, jsString(room))
}

func (p *page) connect(user string) {
	p.t.Helper()
	p.setValue("#user-name", user)
	p.click("#connect")
	p.waitFor("connected", statusIs("online"))
}

func (p *page) sendChat(text string) {
	p.t.Helper()
	p.setValue("#chat .compose-input", text)
	p.click("#chat .send")
}

// startJoin asks to join a room without waiting for the outcome.
func (p *page) startJoin(room string) {
	p.t.Helper()
	p.setValue("#join-room-input", room)
	p.click("#join-room")
}

func (p *page) joinRoom(room string) {
	p.t.Helper()
	p.startJoin(room)
	p.waitFor("joined "+room, roomStateIs(room, "joined"))
}

func (p *page) sayInRoom(room, text string) {
	p.t.Helper()
	p.setValue(roomPane(room)+" .compose-input", text)
	p.click(roomPane(room) + " .send")
}

// ---- Go clients ----------------------------------------------------------------

// dialSynced connects a Go client and waits until the server has admitted
// it (subscribed it to chat), which Dial alone does not promise.
func dialSynced(t *testing.T, url string) *wstest.Client {
	t.Helper()
	c := wstest.Open(t, url)
	c.Send(protocol.ChannelChat, protocol.TypeGetHistory, protocol.GetHistory{})
	c.WaitFor(protocol.ChannelChat, protocol.TypeHistory)
	return c
}
