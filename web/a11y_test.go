package web_test

import (
	_ "embed"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/protocol"
)

// axeSource is axe-core (MPL-2.0, see its header), injected into the page
// to check accessibility.
//
//go:embed testdata/axe.min.js
var axeSource string

var screenshots = flag.Bool("screenshots", false, "write docs/web-desktop.png and docs/web-phone.png")

// violation is one axe-core rule the page breaks.
type violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []string `json:"target"`
	} `json:"nodes"`
}

// axe runs axe-core in the page and returns its serious and critical
// violations of WCAG 2.x A and AA and best practices.
func (p *page) axe() []violation {
	p.t.Helper()
	if _, err := p.eval(axeSource + "\n;typeof axe"); err != nil {
		p.t.Fatalf("inject axe-core: %v", err)
	}
	var out []violation
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]violation](
		`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
		   .then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
		   .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({target: n.target.map(String)}))})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("run axe-core: %v", err)
	}
	out = raw
	return out
}

// TestAccessibilityAndPhoneLayout fills the page (chat, a room with
// members and messages, a refused join, a problem) and checks it with
// axe-core on a desktop and a phone; on the phone the problems region and
// the composer must be on the first screen. With -screenshots it writes the
// README's screenshots.
func TestAccessibilityAndPhoneLayout(t *testing.T) {
	for _, tc := range []struct {
		name string
		vp   viewport
	}{{"desktop", desktop}, {"phone", phone}} {
		t.Run(tc.name, func(t *testing.T) {
			n := testnode.StartMemory(t, testnode.Config(t, map[string]string{"MAX_ROOMS": "2"}))
			bob := dialSynced(t, n.WS()+"?user=bob")
			bob.Join("#general", "bob", "bob")
			p := openPage(t, n.URL+"/", tc.vp)
			p.connect("alice")
			bob.Send(protocol.ChannelChat, protocol.TypeSubmitMessage, "Welcome to Switchboard!")
			p.waitList("chat", chatJS, "Welcome to Switchboard!")
			p.joinRoom("#general")
			p.joinRoom("#random")
			p.startJoin("#third")
			p.waitFor("the refusal", `document.getElementById('join-error').dataset.room === '#third'`)
			p.do("select #general", chromedp.Click(chromedp.CSS(`[role=tab][data-key="#general"]`)))
			for _, m := range []string{"Morning! Who is on call today?", "I am — ping me if the deploy acts up."} {
				bob.Say("#general", m)
			}
			p.sayInRoom("#general", "Thanks, bob. Shipping the release at noon.")
			p.waitFor("three messages", `document.querySelectorAll('section.room[data-room="#general"] li.msg').length === 3`)

			// Tabs follow the WAI-ARIA pattern: arrow keys move the selection.
			p.do("focus the selected tab", chromedp.Focus(chromedp.CSS(`[role=tab][aria-selected=true]`)))
			p.do("press ArrowRight", chromedp.KeyEvent(kb.ArrowRight))
			p.waitFor("the next tab selected and focused", `document.activeElement.dataset.key === '#random' && document.activeElement.getAttribute('aria-selected') === 'true' && !document.querySelector('section.room[data-room="#random"]').hidden`)
			p.do("press ArrowLeft", chromedp.KeyEvent(kb.ArrowLeft))
			p.waitFor("the previous tab selected", `document.activeElement.dataset.key === '#general'`)

			for _, v := range p.axe() {
				var where []string
				for _, n := range v.Nodes {
					where = append(where, strings.Join(n.Target, " "))
				}
				t.Errorf("axe %s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(where, ", "))
			}

			if tc.vp.mobile {
				var r struct{ AlertBottom, ComposerTop, ComposerBottom, Height float64 }
				p.evalJSON(`(() => {
					const a = document.querySelector('#alerts li').getBoundingClientRect();
					const c = document.querySelector('section.room[data-room="#general"] .composer').getBoundingClientRect();
					return {alertBottom: a.bottom, composerTop: c.top, composerBottom: c.bottom, height: innerHeight};
				})()`, &r)
				if r.AlertBottom > r.Height/2 {
					t.Errorf("problems end at %.0f px of a %.0f px screen", r.AlertBottom, r.Height)
				}
				if r.ComposerBottom < r.Height-2 || r.ComposerBottom > r.Height+2 {
					t.Errorf("composer at %.0f–%.0f px, not pinned to the bottom of a %.0f px screen", r.ComposerTop, r.ComposerBottom, r.Height)
				}
			}
			if *screenshots {
				p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur(); window.scrollTo(0, 0)`))
				png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join("..", "docs", "web-"+tc.name+".png"), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
