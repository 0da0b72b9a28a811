package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	r := newEventsRig(t, "room-1")
	srv := httptest.NewServer(CORS([]string{"https://player.example.org"}, r.api))
	defer srv.Close()
	do := func(method, path, origin string, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}

	t.Run("preflight allowed", func(t *testing.T) {
		for _, path := range []string{"/live/room-1/whep", "/live/room-1/whep/abc", "/api/v1/devices", "/api/v1/events"} {
			resp := do("OPTIONS", path, "https://player.example.org", preflight)
			h := resp.Header
			if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "https://player.example.org" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "PATCH") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") ||
				h.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Fatalf("%s: %d %v", path, resp.StatusCode, h)
			}
		}
	})
	t.Run("preflight refused", func(t *testing.T) {
		resp := do("OPTIONS", "/live/room-1/whep", "https://evil.example.org", preflight)
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("request allowed", func(t *testing.T) {
		resp := do("GET", "/api/v1/devices", "https://player.example.org", map[string]string{"Authorization": "Bearer " + r.coach})
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != "https://player.example.org" {
			t.Fatalf("%d %v", resp.StatusCode, h)
		}
		exposed := map[string]bool{}
		for _, v := range strings.Split(h.Get("Access-Control-Expose-Headers"), ",") {
			exposed[strings.TrimSpace(v)] = true
		}
		if !exposed["Location"] || !exposed["Link"] || !exposed["ETag"] {
			t.Fatalf("exposed: %q", h.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("other origin and same origin", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example.org", "", srv.URL} {
			resp := do("GET", "/api/v1/devices", origin, map[string]string{"Authorization": "Bearer " + r.coach})
			if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Expose-Headers") != "" {
				t.Fatalf("origin %q: %d %v", origin, resp.StatusCode, resp.Header)
			}
		}
	})
	t.Run("WHEP options without CORS", func(t *testing.T) {
		// A WHEP client's own OPTIONS (no Access-Control-Request-Method)
		// still reaches the endpoint.
		resp := do("OPTIONS", "/live/room-1/whep", "", nil)
		if resp.StatusCode != 204 || resp.Header.Get("Accept-Post") != "application/sdp" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("no origins configured", func(t *testing.T) {
		plain := httptest.NewServer(CORS(nil, r.api))
		defer plain.Close()
		req, _ := http.NewRequest("OPTIONS", plain.URL+"/live/room-1/whep", nil)
		req.Header.Set("Origin", "https://player.example.org")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("CORS without allowed origins: %v", resp.Header)
		}
	})
}
