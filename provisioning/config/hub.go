package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
)

// Hub is the configuration of the district hub, classcap-hub.
type Hub struct {
	Hub    HubSection       `toml:"hub"`
	Broker BrokerSection    `toml:"broker"`
	Enroll HubEnrollSection `toml:"enroll"`
	Live   HubLiveSection   `toml:"live"`
	HTTP   HubHTTPSection   `toml:"http"`

	// Warnings lists what the file set that this version does not know.
	Warnings []string `toml:"-"`
}

// HubSection is [hub].
type HubSection struct {
	DataDir    string `toml:"data_dir"`    // registry, uploads, lessons
	HTTPListen string `toml:"http_listen"` // host:port of the HTTP API (port 0: any free port)
	LogLevel   string `toml:"log_level"`   // debug, info, warn, error
	// PublicURL is the hub's HTTP address as boxes reach it (upload grants
	// carry <public_url>/tus/); default http://<http_listen>.
	PublicURL string `toml:"public_url"`
	// AbandonedUploadHours: a partial upload that received no byte for
	// this long is discarded (its box was replaced or wiped); the box, if
	// it comes back, sends that file again. Default 168 (a week).
	AbandonedUploadHours int `toml:"abandoned_upload_hours"`
}

// BrokerSection is [broker]: either the embedded MQTT broker's listen
// address or the URL of an external broker, never both.
type BrokerSection struct {
	Listen string `toml:"listen"` // host:port of the embedded broker
	URL    string `toml:"url"`    // e.g. tcp://broker:1883
	// TLSListen is host:port of the embedded broker's mutual-TLS listener
	// for enrolled boxes (client certificates from the hub's CA); empty:
	// none. Needs enroll.names.
	TLSListen string `toml:"tls_listen"`
	// PasswordFile holds, on its first line, the password of the hub's own
	// MQTT user (classcap-hub) on an external broker. The embedded broker
	// makes a password for each run instead.
	PasswordFile string `toml:"password_file"`
}

// HubEnrollSection is [enroll]: the enrollment CA and its HTTPS endpoint.
type HubEnrollSection struct {
	// Listen is host:port of the HTTPS enrollment endpoint; empty: off.
	Listen string `toml:"listen"`
	// Names are the host names and IP addresses boxes reach the hub by:
	// the hub's TLS server certificate carries them. Required with Listen.
	Names []string `toml:"names"`
	// URL is the enrollment endpoint as boxes see it, written into claim
	// files; default https://<first name>:<listen port>.
	URL string `toml:"url"`
	// BrokerURL is the MQTT-over-TLS URL enrolled boxes are given; default
	// ssl://<first name>:<broker.tls_listen port>.
	BrokerURL string `toml:"broker_url"`
	// CertDays is the validity of device certificates; boxes renew them
	// with a third left.
	CertDays int `toml:"cert_days"`
}

// HubLiveSection is [live]: what the hub tells live viewers.
type HubLiveSection struct {
	// ICEServers are the STUN and TURN servers offered to viewers
	// ([[live.ice_servers]]): in each WHEP answer as Link headers, and to
	// the hub's web page.
	ICEServers []ICEServer `toml:"ice_servers"`
	// ICETransportPolicy is what the hub's web page asks of its browser:
	// "all" or "relay" (only through a TURN server of ICEServers).
	ICETransportPolicy string `toml:"ice_transport_policy"`
	// TURNCredentialHours is how long the credentials made for a viewer
	// from a TURN server's auth_secret_file stay valid: a view that runs
	// longer loses its relay.
	TURNCredentialHours int `toml:"turn_credential_hours"`
}

// DefaultHub returns the configuration used for every key a file leaves out.
func DefaultHub() Hub {
	return Hub{
		Hub: HubSection{
			DataDir:              "/var/lib/classcap-hub",
			HTTPListen:           "127.0.0.1:8080",
			LogLevel:             "info",
			AbandonedUploadHours: 168,
		},
		Broker: BrokerSection{
			Listen: "127.0.0.1:1883",
		},
		Enroll: HubEnrollSection{
			CertDays: 30,
		},
		Live: HubLiveSection{
			ICETransportPolicy:  "all",
			TURNCredentialHours: 12,
		},
	}
}

// ParseHub lays data over DefaultHub and validates the result. A file that
// sets broker.url and not broker.listen turns the embedded broker off.
func ParseHub(data []byte) (*Hub, error) {
	h, err := decodeHub(data)
	if err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// LoadHub reads the file at path and parses it as ParseHub does. Its errors
// name the file.
func LoadHub(path string) (*Hub, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	h, err := decodeHub(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if err := h.Validate(); err != nil {
		return nil, wrapFile(path, err)
	}
	return h, nil
}

func decodeHub(data []byte) (*Hub, error) {
	h := DefaultHub()
	md, warnings, err := decode(data, &h)
	if err != nil {
		return nil, err
	}
	if md.IsDefined("broker", "url") && !md.IsDefined("broker", "listen") {
		h.Broker.Listen = ""
	}
	h.Warnings = warnings
	return &h, nil
}

// Validate checks every field and returns all problems joined
// (errors.Join of *FieldError), or nil.
func (h *Hub) Validate() error {
	var p problems
	if p.required("hub.data_dir", h.Hub.DataDir) {
		p.noControl("hub.data_dir", h.Hub.DataDir)
	}
	if p.required("hub.http_listen", h.Hub.HTTPListen) {
		p.hostPort("hub.http_listen", h.Hub.HTTPListen)
	}
	p.logLevel("hub.log_level", h.Hub.LogLevel)
	p.intRange("hub.abandoned_upload_hours", int64(h.Hub.AbandonedUploadHours), 1, 24*365)
	if h.Hub.PublicURL != "" {
		if u, err := url.Parse(h.Hub.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("hub.public_url", "%q is not an http:// or https:// URL with a host", h.Hub.PublicURL)
		}
	}

	b := h.Broker
	switch {
	case b.Listen == "" && b.URL == "":
		p.add("broker", "set listen (the embedded broker) or url (an external broker)")
	case b.Listen != "" && b.URL != "":
		p.add("broker.url", "cannot be set together with broker.listen; remove one")
	case b.Listen != "":
		p.hostPort("broker.listen", b.Listen)
	default:
		p.brokerURL("broker.url", b.URL)
		if p.required("broker.password_file", b.PasswordFile) {
			p.noControl("broker.password_file", b.PasswordFile)
		}
	}

	if _, port, err := net.SplitHostPort(b.Listen); err == nil && port != "0" && b.Listen == h.Hub.HTTPListen {
		p.add("broker.listen", "%q is also hub.http_listen", b.Listen)
	}

	if b.TLSListen != "" {
		if b.Listen == "" {
			p.add("broker.tls_listen", "needs the embedded broker (broker.listen)")
		} else {
			p.hostPort("broker.tls_listen", b.TLSListen)
		}
		if len(h.Enroll.Names) == 0 {
			p.add("broker.tls_listen", "needs enroll.names: the names boxes reach the broker by")
		}
	}

	// [enroll]
	e := h.Enroll
	if e.Listen != "" {
		p.hostPort("enroll.listen", e.Listen)
		if len(e.Names) == 0 {
			p.add("enroll.names", "is required with enroll.listen: the host names or addresses boxes reach the hub by")
		}
	}
	for i, n := range e.Names {
		field := fmt.Sprintf("enroll.names[%d]", i)
		if p.required(field, n) && p.noControl(field, n) && strings.ContainsAny(n, " /:@") && net.ParseIP(n) == nil {
			p.add(field, "%q is not a host name or IP address", n)
		}
	}
	if e.URL != "" {
		if u, err := url.Parse(e.URL); err != nil || u.Scheme != "https" || u.Hostname() == "" {
			p.add("enroll.url", "%q is not an https://host[:port] URL", e.URL)
		}
	}
	if e.BrokerURL != "" {
		p.brokerURL("enroll.broker_url", e.BrokerURL)
	}
	p.intRange("enroll.cert_days", int64(e.CertDays), 1, 825)

	// [live]
	p.iceServers("live", h.Live.ICEServers, h.Live.ICETransportPolicy, true)
	p.intRange("live.turn_credential_hours", int64(h.Live.TURNCredentialHours), 1, 7*24)

	// [http]
	p.origins("http.allowed_origins", h.HTTP.AllowedOrigins)
	return p.err()
}

// LogLevel is hub.log_level as a slog level.
func (h *Hub) LogLevel() slog.Level { return parseLogLevel(h.Hub.LogLevel) }
