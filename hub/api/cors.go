package api

import (
	"net/http"
	"strings"
)

// CORS lets pages of the allowed origins (config [http] allowed_origins,
// each as a browser writes it in Origin) call the API and the WHEP
// endpoint: their preflight is answered here, and every answer to them
// carries Access-Control-Allow-Origin and exposes the headers a WHEP
// player reads (Location, Link, ETag). Callers authenticate with bearer
// tokens, never cookies, so credentials are not allowed. Other origins
// get no CORS headers (their preflight is refused with 403): with no
// allowed origins, only the hub's own page may call.
func CORS(allowed []string, h http.Handler) http.Handler {
	if len(allowed) == 0 {
		return h
	}
	ok := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		ok[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		hdr := w.Header()
		hdr.Add("Vary", "Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin == "" || !ok[origin] {
			if preflight && origin != "" {
				writeError(w, http.StatusForbidden, "origin_not_allowed",
					"origin "+origin+" may not call this hub (the hub's [http] allowed_origins)")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		hdr.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			hdr.Add("Vary", "Access-Control-Request-Method")
			hdr.Add("Vary", "Access-Control-Request-Headers")
			hdr.Set("Access-Control-Allow-Methods", corsMethods)
			hdr.Set("Access-Control-Allow-Headers", corsHeaders)
			hdr.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		hdr.Set("Access-Control-Expose-Headers", corsExposed)
		h.ServeHTTP(w, r)
	})
}

var (
	corsMethods = strings.Join([]string{"GET", "POST", "PATCH", "DELETE", "OPTIONS"}, ", ")
	corsHeaders = strings.Join([]string{"Authorization", "Content-Type", "If-Match"}, ", ")
	corsExposed = strings.Join([]string{"Location", "Link", "ETag"}, ", ")
)
