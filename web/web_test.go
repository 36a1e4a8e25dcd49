package web_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
