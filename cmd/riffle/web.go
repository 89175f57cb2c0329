package main

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFS holds the web view: one page, its script and its style sheet,
// plain HTML, JavaScript and SVG (no library), served from the binary.
//
//go:embed web
var webFS embed.FS

// registerWeb serves the web view at / and its assets under /web/.
func registerWeb(mux *http.ServeMux) {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /web/", http.StripPrefix("/web/", files))
}
