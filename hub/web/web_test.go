package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tt := range []struct {
		path, ctype, contains string
		status                int
	}{
		{"/", "text/html", `<script src="/static/app.js"`, 200},
		{"/static/app.js", "text/javascript", "sessionStorage", 200},
		{"/static/whep.js", "text/javascript", "application/sdp", 200},
		{"/static/style.css", "text/css", "font-family", 200},
		{"/static/nope.js", "", "", 404},
		{"/index.html", "", "", 404},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
			}
			if !strings.Contains(string(b), tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			if resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("Referrer-Policy %q", resp.Header.Get("Referrer-Policy"))
			}
		})
	}
}
