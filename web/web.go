// Package web serves the browser client, embedded in the binary: a page for
// Switchboard's chat, rooms and inbox built on the JavaScript client, whose
// ES modules static/lib holds as a copy of clients/js/src (`make web`
// refreshes it; a test fails when it is stale), so nothing is built at run
// time.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static
var files embed.FS

// static is the client's files, rooted at the static directory.
var static = func() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic("web: " + err.Error()) // the directory is embedded at build time
	}
	return sub
}()

// AssetsPrefix is the URL path under which the page's scripts and styles
// are served.
const AssetsPrefix = "/static/"

// Handler serves the page at "/" and its assets under AssetsPrefix; any
// other path is 404. It only answers GET and HEAD.
func Handler() http.Handler {
	assets := http.StripPrefix(strings.TrimSuffix(AssetsPrefix, "/"), http.FileServerFS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		setHeaders(w.Header())
		switch {
		case r.URL.Path == "/":
			http.ServeFileFS(w, r, static, "index.html")
		case strings.HasPrefix(r.URL.Path, AssetsPrefix) && !strings.HasSuffix(r.URL.Path, "/"):
			// Files only: FileServer would list a directory.
			assets.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// Register adds the page ("/") and its assets to e.
func Register(e *echo.Echo) {
	h := echo.WrapHandler(Handler())
	e.GET("/", h)
	e.GET(AssetsPrefix+"*", h)
}

// setHeaders keeps the page fresh across deploys (embedded files carry no
// modification time to revalidate against) and locks it down: only its own
// scripts and styles run, and it may open WebSockets to any server the user
// types in.
func setHeaders(h http.Header) {
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "+
		"img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
}
