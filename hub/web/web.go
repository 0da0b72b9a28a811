// Package web is the hub's page for coaches and district IT: plain HTML,
// a little vanilla JavaScript and CSS, embedded in the binary. The page
// signs in with an API token pasted by the user (kept in the tab's
// sessionStorage), shows every box's state and health and the lessons from
// the JSON API, kept current by the hub's event stream (GET
// /api/v1/events, opened with a short-lived ticket, as an EventSource
// cannot send the token; the lists are polled only when the stream cannot
// be opened), starts and stops recordings, plays the lessons through
// media URLs the API mints (a <video> cannot send a bearer token), and
// watches a box live with a standard WHEP client (static/whep.js), its
// peer connection configured with the hub's STUN and TURN servers
// (GET /api/v1/live/ice).
//
// The page is public (it holds nothing until a token is given); every
// request it makes for data carries the token, or a short-lived ticket the
// token was given.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy allows the page's own scripts and styles and
// nothing else; media may come from the hub and from WebRTC streams.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; media-src 'self' blob:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the page at / and its files under /static/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	files := http.FileServerFS(sub)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure(w)
		files.ServeHTTP(w, r)
	})))
	return mux
}

func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // media URLs carry tickets
	h.Set("Cache-Control", "no-cache")
}
