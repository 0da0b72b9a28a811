package api

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// iceRig is an API with a registry holding room-1 and a coach, alice,
// whose token it returns, and do, which sends a request with a token.
func iceRig(t *testing.T) (a *API, reg *registry.Registry, token string, do func(token, method, path, body string) (*http.Response, string)) {
	t.Helper()
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if _, err := reg.AddDevice("room-1"); err != nil {
		t.Fatal(err)
	}
	token, err = reg.CreateToken(registry.RoleCoach, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a = New(reg, &liveBoxes{}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	do = func(token, method, path, body string) (*http.Response, string) {
		t.Helper()
		var hdr []string
		if body != "" {
			hdr = []string{"Content-Type", "application/sdp"}
		}
		resp, b := send(t, srv.URL, token, method, path, body, hdr...)
		return resp, string(b)
	}
	return a, reg, token, do
}

const iceOffer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"

func TestWHEPAnswerCarriesICEServers(t *testing.T) {
	a, _, token, do := iceRig(t)
	offer := iceOffer

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

// A TURN server with a shared secret is told to each caller with
// credentials of its own (the TURN REST API scheme): "<expiry>:<role>.<name>"
// and base64(HMAC-SHA1(secret, username)), expiring CredentialTTL after the
// request, in the JSON and in the WHEP answer's Link. The secret itself is
// told to no one.
func TestTURNCredentialsMadeForEachViewer(t *testing.T) {
	a, reg, alice, do := iceRig(t)
	bob, err := reg.CreateToken(registry.RoleAdmin, "bob smith")
	if err != nil {
		t.Fatal(err)
	}
	const secret = "district-turn-secret"
	url := "turn:turn.example.net:3478?transport=udp"
	a.SetLiveICE(LiveICE{Policy: "relay", CredentialTTL: 2 * time.Hour,
		Servers: []ICEServer{{URLs: []string{"stun:stun.example.net"}}, {URLs: []string{url}, AuthSecret: secret}}})
	check := func(who, username, credential, user string, before, after time.Time) {
		t.Helper()
		exp, u, ok := strings.Cut(username, ":")
		ts, err := strconv.ParseInt(exp, 10, 64)
		if !ok || err != nil || u != user {
			t.Fatalf("%s: username %q, want <expiry>:%s", who, username, user)
		}
		if lo, hi := before.Add(2*time.Hour).Unix(), after.Add(2*time.Hour).Unix(); ts < lo || ts > hi {
			t.Errorf("%s: expires at %d, want between %d and %d (two hours after the request)", who, ts, lo, hi)
		}
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write([]byte(username))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); credential != want {
			t.Errorf("%s: credential %q, want %q", who, credential, want)
		}
	}
	for _, c := range []struct{ token, user string }{{alice, "coach.alice"}, {bob, "admin.bob_smith"}} {
		before := time.Now()
		resp, body := do(c.token, "GET", "/api/v1/live/ice", "")
		after := time.Now()
		var got LiveICE
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 200 || len(got.Servers) != 2 {
			t.Fatalf("ice for %s: %d %s %v", c.user, resp.StatusCode, body, err)
		}
		if strings.Contains(body, secret) {
			t.Fatalf("ice for %s tells the secret: %s", c.user, body)
		}
		if got.Servers[0].Username != "" || got.Servers[0].Credential != "" {
			t.Errorf("the STUN server was given credentials: %+v", got.Servers[0])
		}
		check("ice for "+c.user, got.Servers[1].Username, got.Servers[1].Credential, c.user, before, after)
	}

	before := time.Now()
	resp, _ := do(alice, "POST", "/live/room-1/whep", iceOffer)
	after := time.Now()
	links := resp.Header.Values("Link")
	if resp.StatusCode != http.StatusCreated || len(links) != 2 {
		t.Fatalf("WHEP answer: %d, Link %q", resp.StatusCode, links)
	}
	m := regexp.MustCompile(`^<` + regexp.QuoteMeta(url) + `>; rel="ice-server"; username="([^"]*)"; credential="([^"]*)"; credential-type="password"$`).FindStringSubmatch(links[1])
	if m == nil {
		t.Fatalf("WHEP answer's TURN Link %q", links[1])
	}
	check("WHEP answer", m[1], m[2], "coach.alice", before, after)
}

// send makes one request to the API at base with token (none if empty),
// body and header pairs hdr, and returns the response and its body.
func send(t *testing.T, base, token, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}
