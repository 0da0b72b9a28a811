package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/registry"
)

func TestICELinks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []ICEServer
		want    []string
	}{
		{"none", nil, nil},
		{"stun", []ICEServer{{URLs: []string{"stun:stun.example.net:3478"}}},
			[]string{`<stun:stun.example.net:3478>; rel="ice-server"`}},
		{"turn", []ICEServer{{URLs: []string{"turn:t.example.net:3478?transport=udp"}, Username: "u", Credential: "p"}},
			[]string{`<turn:t.example.net:3478?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`}},
		{"one link per url", []ICEServer{
			{URLs: []string{"stun:s.example.net"}},
			{URLs: []string{"turn:t.example.net?transport=udp", "turns:t.example.net:5349"}, Username: "u", Credential: "p"},
		}, []string{
			`<stun:s.example.net>; rel="ice-server"`,
			`<turn:t.example.net?transport=udp>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`,
			`<turns:t.example.net:5349>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`,
		}},
		{"quotes and backslashes escaped", []ICEServer{{URLs: []string{"turn:t.example.net"}, Username: `a"b`, Credential: `c\d;e,f`}},
			[]string{`<turn:t.example.net>; rel="ice-server"; username="a\"b"; credential="c\\d;e,f"; credential-type="password"`}},
		{"stun carries no credential", []ICEServer{{URLs: []string{"stun:s.example.net", "turn:t.example.net"}, Username: "u", Credential: "p"}},
			[]string{`<stun:s.example.net>; rel="ice-server"`,
				`<turn:t.example.net>; rel="ice-server"; username="u"; credential="p"; credential-type="password"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ICELinks(tc.servers); !slices.Equal(got, tc.want) {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestWHEPAnswerCarriesICEServers(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.AddDevice("room-1"); err != nil {
		t.Fatal(err)
	}
	token, err := reg.CreateToken(registry.RoleCoach, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a := New(reg, &liveBoxes{}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(a)
	defer srv.Close()
	do := func(token, method, path, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/sdp")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	offer := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"

	// Without servers: no Link, and the page is told so.
	resp, _ := do(token, "POST", "/live/room-1/whep", offer)
	if resp.StatusCode != http.StatusCreated || len(resp.Header.Values("Link")) != 0 {
		t.Fatalf("without servers: %d, Link %q", resp.StatusCode, resp.Header.Values("Link"))
	}
	resp, body := do(token, "GET", "/api/v1/live/ice", "")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{
  "ice_servers": [],
  "ice_transport_policy": "all"
}` {
		t.Fatalf("ice without servers: %d %s", resp.StatusCode, body)
	}

	servers := []ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:turn.example.net:3478?transport=udp"}, Username: "classcap", Credential: `pa"ss`},
	}
	a.SetLiveICE(LiveICE{Servers: servers, Policy: "relay"})
	servers[0].URLs[0] = "stun:changed.example.net" // SetLiveICE keeps its own copy
	resp, _ = do(token, "POST", "/live/room-1/whep", offer)
	want := []string{
		`<stun:stun.example.net:3478>; rel="ice-server"`,
		`<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="classcap"; credential="pa\"ss"; credential-type="password"`,
	}
	if resp.StatusCode != http.StatusCreated || !slices.Equal(resp.Header.Values("Link"), want) {
		t.Fatalf("WHEP answer: %d, Link %q, want %q", resp.StatusCode, resp.Header.Values("Link"), want)
	}
	resp, body = do(token, "GET", "/api/v1/live/ice", "")
	var got LiveICE
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("ice: %d %s %v", resp.StatusCode, body, err)
	}
	if got.Policy != "relay" || len(got.Servers) != 2 || got.Servers[0].URLs[0] != "stun:stun.example.net:3478" ||
		got.Servers[1].Credential != `pa"ss` || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("ice: %+v, Cache-Control %q", got, resp.Header.Get("Cache-Control"))
	}
	// The servers are a coach's to know: no token, no servers.
	if resp, _ := do("", "GET", "/api/v1/live/ice", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("ice without a token: %d", resp.StatusCode)
	}
	if resp, _ := do("", "POST", "/live/room-1/whep", offer); resp.StatusCode != http.StatusUnauthorized || len(resp.Header.Values("Link")) != 0 {
		t.Fatalf("offer without a token: %d, Link %q", resp.StatusCode, resp.Header.Values("Link"))
	}
}
