package config

import (
	"strings"
	"testing"
)

func TestICEServersValidation(t *testing.T) {
	turn := ICEServer{URLs: []string{"turn:turn.example.net:3478?transport=udp"}, Username: "u", Credential: "p"}
	stunOnly := ICEServer{URLs: []string{"stun:stun.example.net:3478"}}
	tests := []struct {
		name    string
		servers []ICEServer
		policy  string
		field   string // "" means valid
		reason  string
	}{
		{"none", nil, "all", "", ""},
		{"stun", []ICEServer{stunOnly}, "all", "", ""},
		{"stun default port", []ICEServer{{URLs: []string{"stun:stun.example.net"}}}, "all", "", ""},
		{"stuns", []ICEServer{{URLs: []string{"stuns:stun.example.net:5349"}}}, "all", "", ""},
		{"turn udp and tcp", []ICEServer{{URLs: []string{"turn:t.example.net:3478?transport=udp", "turn:t.example.net:3478?transport=tcp"},
			Username: "u", Credential: "p"}}, "all", "", ""},
		{"turns", []ICEServer{{URLs: []string{"turns:t.example.net:5349"}, Username: "u", Credential: "p"}}, "all", "", ""},
		{"ipv6", []ICEServer{{URLs: []string{"stun:[2001:db8::1]:3478"}}}, "all", "", ""},
		{"relay with turn", []ICEServer{stunOnly, turn}, "relay", "", ""},
		{"credential with quotes", []ICEServer{{URLs: turn.URLs, Username: `a"b`, Credential: `c\d`}}, "all", "", ""},

		{"no urls", []ICEServer{{}}, "all", "live.ice_servers[0].urls", "is required"},
		{"http scheme", []ICEServer{{URLs: []string{"http://stun.example.net"}}}, "all", "live.ice_servers[0].urls", `scheme "http" is not one of stun, stuns, turn, turns`},
		{"no scheme", []ICEServer{{URLs: []string{"stun.example.net"}}}, "all", "live.ice_servers[0].urls", "is not a URL"},
		{"bad port", []ICEServer{{URLs: []string{"stun:stun.example.net:http"}}}, "all", "live.ice_servers[0].urls", "is not a STUN or TURN URI"},
		{"no host", []ICEServer{{URLs: []string{"stun::3478"}}}, "all", "live.ice_servers[0].urls", "is not a STUN or TURN URI"},
		{"stun query", []ICEServer{{URLs: []string{"stun:s.example.net?transport=udp"}}}, "all", "live.ice_servers[0].urls", "is not a STUN or TURN URI"},
		{"bad transport", []ICEServer{{URLs: []string{"turn:t.example.net?transport=sctp"}, Username: "u", Credential: "p"}}, "all",
			"live.ice_servers[0].urls", "is not a STUN or TURN URI"},
		{"space", []ICEServer{{URLs: []string{"stun:stun.example.net :3478"}}}, "all", "live.ice_servers[0].urls", "contains a space"},
		{"angle bracket", []ICEServer{{URLs: []string{"stun:a>b"}}}, "all", "live.ice_servers[0].urls", "contains"},
		{"turn without username", []ICEServer{stunOnly, {URLs: turn.URLs, Credential: "p"}}, "all", "live.ice_servers[1].username", "is required"},
		{"turn without credential", []ICEServer{{URLs: turn.URLs, Username: "u"}}, "all", "live.ice_servers[0].credential", "is required"},
		{"credential newline", []ICEServer{{URLs: turn.URLs, Username: "u", Credential: "p\n"}}, "all", "live.ice_servers[0].credential", "control character"},
		{"bad policy", nil, "public", "live.ice_transport_policy", `"public" is not one of all, relay`},
		{"relay without servers", nil, "relay", "live.ice_transport_policy", `"relay" needs a turn: or turns: server`},
		{"relay with stun only", []ICEServer{stunOnly}, "relay", "live.ice_transport_policy", `"relay" needs a turn: or turns: server`},
	}
	for _, tt := range tests {
		t.Run("box/"+tt.name, func(t *testing.T) {
			b := validBox()
			b.Live.ICEServers, b.Live.ICETransportPolicy = tt.servers, tt.policy
			check(t, b.Validate(), tt.field, tt.reason)
		})
		t.Run("hub/"+tt.name, func(t *testing.T) {
			h := DefaultHub()
			h.Live.ICEServers, h.Live.ICETransportPolicy = tt.servers, tt.policy
			check(t, h.Validate(), tt.field, tt.reason)
		})
	}
}

// A shared TURN secret (auth_secret_file) is the hub's alone: it makes
// credentials for each viewer in place of a username and credential.
func TestICEAuthSecretFile(t *testing.T) {
	secret := ICEServer{URLs: []string{"turn:turn.example.net:3478?transport=udp"}, AuthSecretFile: "/etc/classcap-hub/turn-secret"}
	tests := []struct {
		name    string
		servers []ICEServer
		policy  string
		field   string // "" means valid
		reason  string
	}{
		{"turn with a secret", []ICEServer{secret}, "relay", "", ""},
		{"secret and username", []ICEServer{{URLs: secret.URLs, AuthSecretFile: secret.AuthSecretFile, Username: "u", Credential: "p"}},
			"all", "live.ice_servers[0].auth_secret_file", "not both"},
		{"secret for stun", []ICEServer{{URLs: []string{"stun:stun.example.net"}, AuthSecretFile: secret.AuthSecretFile}},
			"all", "live.ice_servers[0].auth_secret_file", "needs a turn: or turns: URL"},
		{"secret path newline", []ICEServer{{URLs: secret.URLs, AuthSecretFile: "/etc/x\n"}},
			"all", "live.ice_servers[0].auth_secret_file", "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := DefaultHub()
			h.Live.ICEServers, h.Live.ICETransportPolicy = tt.servers, tt.policy
			check(t, h.Validate(), tt.field, tt.reason)
		})
	}
	t.Run("box", func(t *testing.T) {
		b := validBox()
		b.Live.ICEServers = []ICEServer{secret}
		check(t, b.Validate(), "live.ice_servers[0].auth_secret_file", "hub's configuration only")
	})
	for _, hours := range []int{0, 7*24 + 1} {
		h := DefaultHub()
		h.Live.TURNCredentialHours = hours
		check(t, h.Validate(), "live.turn_credential_hours", "")
	}
	h, err := ParseHub([]byte("[live]\nturn_credential_hours = 2\n[[live.ice_servers]]\nurls = [\"turns:t.example.net\"]\nauth_secret_file = \"/s\"\n"))
	if err != nil || h.Live.TURNCredentialHours != 2 || h.Live.ICEServers[0].AuthSecretFile != "/s" {
		t.Errorf("ParseHub: %+v, %v", h.Live, err)
	}
	if d := DefaultHub().Live.TURNCredentialHours; d != 12 {
		t.Errorf("default turn_credential_hours %d, want 12", d)
	}
}

func check(t *testing.T, err error, field, reason string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	onlyProblem(t, err, field, reason)
}

const iceTOML = `
[live]
ice_transport_policy = "relay"

[[live.ice_servers]]
urls = ["stun:stun.example.net:3478"]

[[live.ice_servers]]
urls = ["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"]
username = "classcap"
credential = "s3cret"
`

func TestParseICEServers(t *testing.T) {
	want := []ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"}, Username: "classcap", Credential: "s3cret"},
	}
	b, err := ParseBox([]byte("[device]\nid = \"room-101\"\n[hardware]\nprofile = \"sim\"\n" + iceTOML))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Warnings) != 0 || b.Live.ICETransportPolicy != "relay" || !equalServers(b.Live.ICEServers, want) {
		t.Errorf("box [live]: %+v, warnings %v", b.Live, b.Warnings)
	}
	h, err := ParseHub([]byte(iceTOML))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Warnings) != 0 || h.Live.ICETransportPolicy != "relay" || !equalServers(h.Live.ICEServers, want) {
		t.Errorf("hub [live]: %+v, warnings %v", h.Live, h.Warnings)
	}
	if d := DefaultBox().Live.ICETransportPolicy; d != "all" {
		t.Errorf("box default policy %q, want all", d)
	}
	if d := DefaultHub().Live.ICETransportPolicy; d != "all" {
		t.Errorf("hub default policy %q, want all", d)
	}

	_, err = ParseHub([]byte("[live]\nice_transport_policy = \"relay\"\n[[live.ice_servers]]\nurls = [\"turn:t.example.net\"]\n"))
	fes := FieldErrors(err)
	if len(fes) != 2 || fes[0].Field != "live.ice_servers[0].username" || fes[1].Field != "live.ice_servers[0].credential" {
		t.Errorf("turn without credentials: %v", err)
	}
}

func equalServers(a, b []ICEServer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i].URLs, " ") != strings.Join(b[i].URLs, " ") || a[i].Username != b[i].Username || a[i].Credential != b[i].Credential {
			return false
		}
	}
	return true
}

func TestWithSettingsICEServers(t *testing.T) {
	base, err := ParseBox([]byte("[device]\nid = \"room-101\"\n[hardware]\nprofile = \"sim\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := base.WithSettings([]byte(`{"live":{"ice_transport_policy":"relay","ice_servers":[` +
		`{"urls":["stun:stun.example.net:3478"]},` +
		`{"urls":["turn:turn.example.net:3478?transport=udp"],"username":"classcap","credential":"s3cret"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:turn.example.net:3478?transport=udp"}, Username: "classcap", Credential: "s3cret"},
	}
	if got.Live.ICETransportPolicy != "relay" || !equalServers(got.Live.ICEServers, want) {
		t.Errorf("applied: %+v", got.Live)
	}
	if base.Live.ICETransportPolicy != "all" || len(base.Live.ICEServers) != 0 {
		t.Errorf("the base changed: %+v", base.Live)
	}

	for _, tc := range []struct{ name, in, field, reason string }{
		{"relay without turn", `{"live":{"ice_transport_policy":"relay"}}`, "live.ice_transport_policy", "needs a turn"},
		{"bad url", `{"live":{"ice_servers":[{"urls":["http://x"]}]}}`, "live.ice_servers[0].urls", "scheme"},
		{"unknown key in a server", `{"live":{"ice_servers":[{"urls":["stun:x"],"secret":"y"}]}}`, "live.ice_servers.secret", "unknown key"},
		{"other live keys", `{"live":{"allow":"always"}}`, "live.allow", "cannot be set by the hub"},
		{"no credential", `{"live":{"ice_servers":[{"urls":["turn:x"],"username":"u"}]}}`, "live.ice_servers[0].credential", "is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := base.WithSettings([]byte(tc.in))
			fes := FieldErrors(err)
			if len(fes) == 0 || fes[0].Field != tc.field || !strings.Contains(fes[0].Reason, tc.reason) {
				t.Errorf("err %v, want field %s saying %q", err, tc.field, tc.reason)
			}
		})
	}
}
