package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestDefaultHubIsValid(t *testing.T) {
	h := DefaultHub()
	if err := h.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestHubValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Hub)
		field  string // "" means valid
		reason string
	}{
		{"data_dir missing", func(h *Hub) { h.Hub.DataDir = "" }, "hub.data_dir", "is required"},
		{"data_dir control char", func(h *Hub) { h.Hub.DataDir = "/var\n" }, "hub.data_dir", "control character"},
		{"http_listen missing", func(h *Hub) { h.Hub.HTTPListen = "" }, "hub.http_listen", "is required"},
		{"public_url https", func(h *Hub) { h.Hub.PublicURL = "https://hub.example.org" }, "", ""},
		{"public_url no scheme", func(h *Hub) { h.Hub.PublicURL = "hub.example.org:8080" }, "hub.public_url", "is not an http:// or https:// URL"},
		{"public_url mqtt", func(h *Hub) { h.Hub.PublicURL = "tcp://hub:1883" }, "hub.public_url", "is not an http:// or https:// URL"},
		{"http_listen no port", func(h *Hub) { h.Hub.HTTPListen = "127.0.0.1" }, "hub.http_listen", "is not host:port"},
		{"http_listen bad port", func(h *Hub) { h.Hub.HTTPListen = "127.0.0.1:http" }, "hub.http_listen", "invalid port"},
		{"http_listen port too big", func(h *Hub) { h.Hub.HTTPListen = "127.0.0.1:65536" }, "hub.http_listen", "invalid port"},
		{"http_listen url", func(h *Hub) { h.Hub.HTTPListen = "http://127.0.0.1:8080" }, "hub.http_listen", "is not host:port"},
		{"http_listen all interfaces", func(h *Hub) { h.Hub.HTTPListen = ":8080" }, "", ""},
		{"http_listen ipv6", func(h *Hub) { h.Hub.HTTPListen = "[::1]:8080" }, "", ""},
		{"http_listen port 0", func(h *Hub) { h.Hub.HTTPListen = "127.0.0.1:0" }, "", ""},
		{"log_level bad", func(h *Hub) { h.Hub.LogLevel = "verbose" }, "hub.log_level", `"verbose" is not one of debug, info, warn, error`},
		{"broker neither", func(h *Hub) { h.Broker = BrokerSection{} }, "broker", "set listen"},
		{"broker both", func(h *Hub) { h.Broker.URL = "tcp://broker:1883" }, "broker.url", "cannot be set together with broker.listen"},
		{"broker url only", func(h *Hub) {
			h.Broker = BrokerSection{URL: "tcp://broker:1883", PasswordFile: "/etc/classcap/hub-mqtt-password"}
		}, "", ""},
		{"broker url without password file", func(h *Hub) { h.Broker = BrokerSection{URL: "tcp://broker:1883"} }, "broker.password_file", "is required"},
		{"broker url bad scheme", func(h *Hub) { h.Broker = BrokerSection{URL: "https://broker", PasswordFile: "/etc/pw"} }, "broker.url", "is not one of"},
		{"broker url no host", func(h *Hub) { h.Broker = BrokerSection{URL: "tcp://", PasswordFile: "/etc/pw"} }, "broker.url", "has no host"},
		{"broker listen bad", func(h *Hub) { h.Broker.Listen = "1883" }, "broker.listen", "is not host:port"},
		{"broker listen same as http", func(h *Hub) { h.Broker.Listen = h.Hub.HTTPListen }, "broker.listen", "also hub.http_listen"},
		{"origins", func(h *Hub) {
			h.HTTP.AllowedOrigins = []string{"https://player.example.org", "http://10.0.0.5:8080", "http://[::1]:3000"}
		}, "", ""},
		{"origin with path", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"https://player.example.org/app"} }, "http.allowed_origins[0]", "is not an origin"},
		{"origin upper case", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"https://Player.example.org"} }, "http.allowed_origins[0]", `write it as browsers send it, "https://player.example.org"`},
		{"origin default port", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"https://p.example.org:443"} }, "http.allowed_origins[0]", `"https://p.example.org"`},
		{"origin trailing slash", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"https://p.example.org/"} }, "http.allowed_origins[0]", `"https://p.example.org"`},
		{"origin wildcard", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"*"} }, "http.allowed_origins[0]", "want an http:// or https:// origin"},
		{"origin ftp", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"ftp://p.example.org"} }, "http.allowed_origins[0]", "want an http:// or https:// origin"},
		{"origin user", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"https://u@p.example.org"} }, "http.allowed_origins[0]", "is not an origin"},
		{"origin twice", func(h *Hub) { h.HTTP.AllowedOrigins = []string{"https://p.example.org", "https://p.example.org"} }, "http.allowed_origins[1]", "listed twice"},
		{"both on port 0", func(h *Hub) {
			h.Hub.HTTPListen = "127.0.0.1:0"
			h.Broker.Listen = "127.0.0.1:0"
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := DefaultHub()
			tt.mutate(&h)
			err := h.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			onlyProblem(t, err, tt.field, tt.reason)
		})
	}
}

func TestParseHubBrokerChoice(t *testing.T) {
	tests := []struct {
		name             string
		file             string
		wantListen, wURL string
		wantErr          string
	}{
		{"default", "", "127.0.0.1:1883", "", ""},
		{"url replaces the embedded broker", "[broker]\nurl = \"tcp://mosq:1883\"\npassword_file = \"/etc/pw\"\n", "", "tcp://mosq:1883", ""},
		{"listen moved", "[broker]\nlisten = \"0.0.0.0:1884\"\n", "0.0.0.0:1884", "", ""},
		{"both named", "[broker]\nlisten = \"127.0.0.1:1883\"\nurl = \"tcp://mosq:1883\"\n", "", "", "broker.url: cannot be set together"},
		{"both cleared", "[broker]\nlisten = \"\"\n", "", "", "broker: set listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHub([]byte(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Broker.Listen != tt.wantListen || h.Broker.URL != tt.wURL {
				t.Fatalf("broker = %+v, want listen %q url %q", h.Broker, tt.wantListen, tt.wURL)
			}
		})
	}
}

func TestParseHubWarningsAndErrors(t *testing.T) {
	h, err := ParseHub([]byte("[hub]\ndata_dir = \"/srv/hub\"\ntls_cert = \"x\"\n[storage]\nkind = \"s3\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"unknown key hub.tls_cert", "unknown key storage"}
	if !reflect.DeepEqual(h.Warnings, want) {
		t.Fatalf("warnings = %q, want %q", h.Warnings, want)
	}
	if h.Hub.DataDir != "/srv/hub" || h.Hub.HTTPListen != "127.0.0.1:8080" {
		t.Fatalf("hub = %+v", h.Hub)
	}
	if _, err := ParseHub([]byte("[hub]\nhttp_listen = 8080\n")); err == nil || FieldErrors(err) != nil {
		t.Fatalf("a number for http_listen: got %v, want a parse error", err)
	}

	_, err = ParseHub([]byte("[hub]\nhttp_listen = \"x\"\nlog_level = \"loud\"\nabandoned_upload_hours = 0\n[broker]\nlisten = \"y\"\n"))
	got := FieldErrors(err)
	if len(got) != 4 || got[0].Field != "hub.http_listen" || got[1].Field != "hub.log_level" || got[2].Field != "hub.abandoned_upload_hours" || got[3].Field != "broker.listen" {
		t.Fatalf("want every bad field, got %v", err)
	}
}

func TestDesignExampleHub(t *testing.T) {
	h, err := LoadHub("testdata/design-hub.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Hub{
		Hub:    HubSection{DataDir: "/var/lib/classcap-hub", HTTPListen: "127.0.0.1:8080", LogLevel: "info", AbandonedUploadHours: 168},
		Broker: BrokerSection{Listen: "127.0.0.1:1883"},
		Enroll: HubEnrollSection{CertDays: 30},
		Live:   HubLiveSection{ICETransportPolicy: "all", TURNCredentialHours: 12},
	}
	if !reflect.DeepEqual(*h, want) {
		t.Fatalf("got %+v, want %+v", *h, want)
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(h); err != nil {
		t.Fatal(err)
	}
	again, err := ParseHub(buf.Bytes())
	if err != nil {
		t.Fatalf("parse encoded config: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(again, h) {
		t.Fatalf("round trip changed the config: %+v != %+v", again, h)
	}
	if h.LogLevel() != slog.LevelInfo {
		t.Fatalf("LogLevel = %v", h.LogLevel())
	}
}

func TestLoadHubErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hub.toml")
	if _, err := LoadHub(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("missing file: got %v", err)
	}
	if err := os.WriteFile(path, []byte("[hub]\nhttp_listen = \"nope\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadHub(path)
	want := "config " + path + `: hub.http_listen: "nope" is not host:port`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestHubEnrollSection(t *testing.T) {
	good := "[enroll]\nlisten = \"0.0.0.0:8443\"\nnames = [\"hub.example\", \"10.0.0.5\"]\ncert_days = 7\n"
	h, err := ParseHub([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if h.Enroll.Listen != "0.0.0.0:8443" || len(h.Enroll.Names) != 2 || h.Enroll.CertDays != 7 {
		t.Errorf("parsed %+v", h.Enroll)
	}
	_, err = ParseHub([]byte("[enroll]\nlisten = \"0.0.0.0:8443\"\nnames = [\"a b\"]\nurl = \"http://x\"\nbroker_url = \"ftp://x\"\ncert_days = 0\n"))
	var fields []string
	for _, fe := range FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	if got, want := strings.Join(fields, " "), "enroll.names[0] enroll.url enroll.broker_url enroll.cert_days"; got != want {
		t.Errorf("bad fields %q, want %q (%v)", got, want, err)
	}
	_, err = ParseHub([]byte("[enroll]\nlisten = \"0.0.0.0:8443\"\n"))
	if fe := FieldErrors(err); len(fe) != 1 || fe[0].Field != "enroll.names" {
		t.Errorf("listen without names: %v", err)
	}
}
