// Package console is the web console, embedded in the binary and served by
// 'zhisou serve' at / on its HTTP port: a search playground (query,
// collection, mode and fusion weights; hits with highlights, heading path and
// the evidence of how each was found), a document's outline, uploads with
// progress, and each collection's statistics. It is plain HTML and
// JavaScript, nothing fetched from elsewhere at run time; it calls the
// HTTP/JSON API with the API key typed into it (kept in the tab's session
// storage). Document text is only ever put into the page as text, never as
// markup.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console's files.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only this origin's scripts and styles; no inline script, no frames.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
