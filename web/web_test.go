package web_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard/switchboard/internal/testnode"
	"github.com/switchboard/switchboard/web"
)

func TestHandlerServesPageAndAssetsOnly(t *testing.T) {
	h := web.Handler()
	for _, tc := range []struct {
		method, path string
		status       int
		contentType  string
		body         string
	}{
		{http.MethodGet, "/", http.StatusOK, "text/html", `<script type="module" src="/static/app.js"`},
		{http.MethodHead, "/", http.StatusOK, "text/html", ""},
		{http.MethodGet, "/static/app.js", http.StatusOK, "text/javascript", "from './lib/index.js'"},
		{http.MethodGet, "/static/ui/tabs.js", http.StatusOK, "text/javascript", "role: 'tab'"},
		{http.MethodGet, "/static/lib/index.js", http.StatusOK, "text/javascript", "export { Client"},
		{http.MethodGet, "/static/style.css", http.StatusOK, "text/css", ":root"},
		{http.MethodGet, "/static/", http.StatusNotFound, "", ""},
		{http.MethodGet, "/static/lib/", http.StatusNotFound, "", ""},
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

// TestLibraryCopyIsCurrent fails when web/static/lib, which the binary
// embeds, differs from the JavaScript client in clients/js/src: run
// `make web` after changing the client.
func TestLibraryCopyIsCurrent(t *testing.T) {
	src, err := filepath.Glob("../clients/js/src/*.js")
	if err != nil || len(src) == 0 {
		t.Fatalf("no client sources in ../clients/js/src (%v)", err)
	}
	dst, err := filepath.Glob("static/lib/*.js")
	if err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		slices.Sort(out)
		return out
	}
	if a, b := names(src), names(dst); !slices.Equal(a, b) {
		t.Fatalf("static/lib has %v, clients/js/src has %v: run make web", b, a)
	}
	for _, p := range src {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("static/lib", filepath.Base(p)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("static/lib/%s differs from clients/js/src: run make web", filepath.Base(p))
		}
	}
}

func TestNodeServesPage(t *testing.T) {
	n := testnode.StartMemory(t, testnode.Config(t, nil))
	for _, path := range []string{"/", "/static/app.js", "/static/lib/client.js"} {
		if status, body := n.Do(t, http.MethodGet, path, "", nil); status != http.StatusOK || body == "" {
			t.Errorf("GET %s = %d %.80q", path, status, body)
		}
	}
}

// TestRefusedRejoinAfterReconnectRemovesThatTab: the ticket URL's tickets
// after the first no longer allow #dropped, so after a lost connection the
// library's automatic re-join of #dropped is refused (forbidden). The page
// learns it from the room's "left" event carrying the error: it removes
// only that tab and says why, while #kept is joined again.
func TestRefusedRejoinAfterReconnectRemovesThatTab(t *testing.T) {
	var node atomic.Pointer[testnode.Node]
	var issued atomic.Int32
	app := startApp(t, func(w http.ResponseWriter, r *http.Request) {
		rooms := `["#kept","#dropped"]`
		if issued.Add(1) > 1 {
			rooms = `["#kept"]`
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, node.Load().URL+"/tokens", strings.NewReader(`{"user":"dave","rooms":`+rooms+`}`))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(w, res.Body)
	})
	n := authNode(t, "ALLOWED_ORIGINS", strings.TrimPrefix(app.URL, "http://"))
	node.Store(n)
	px := startProxy(t, strings.TrimPrefix(n.URL, "http://"))
	p := openPage(t, app.URL+"/?ticketUrl=/ticket&server="+strings.Replace(px.URL(), "http", "ws", 1)+"/websockets", desktop)
	p.click("#connect")
	p.waitFor("connected", statusIs("online"))
	p.joinRoom("#kept")
	p.joinRoom("#dropped")

	px.down()
	p.waitFor("the page to notice", statusIs("reconnecting"))
	px.up()
	p.retryNow()
	p.waitFor("#kept joined again", `document.getElementById('status').dataset.connects === '2' && `+roomStateIs("#kept", "joined"))
	p.waitFor("the refused re-join told", `document.getElementById('join-error').dataset.room === '#dropped'`)
	if code := p.evalString(`document.getElementById('join-error').dataset.code`); code != "forbidden" {
		t.Errorf("join error code %q, want forbidden", code)
	}
	p.waitList("tabs", tabsJS, "Chat", "Inbox", "#kept")
	p.waitFor("the problem announced", `[...document.querySelectorAll('#alerts li')].some(li => li.dataset.code === 'forbidden')`)
}
