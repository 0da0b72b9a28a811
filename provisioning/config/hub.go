package config

import (
	"fmt"
	"log/slog"
	"net"
	"os"
)

// Hub is the configuration of the district hub, classcap-hub.
type Hub struct {
	Hub    HubSection    `toml:"hub"`
	Broker BrokerSection `toml:"broker"`

	// Warnings lists what the file set that this version does not know.
	Warnings []string `toml:"-"`
}

// HubSection is [hub].
type HubSection struct {
	DataDir    string `toml:"data_dir"`    // registry, uploads, lessons
	HTTPListen string `toml:"http_listen"` // host:port of the HTTP API (port 0: any free port)
	LogLevel   string `toml:"log_level"`   // debug, info, warn, error
}

// BrokerSection is [broker]: either the embedded MQTT broker's listen
// address or the URL of an external broker, never both.
type BrokerSection struct {
	Listen string `toml:"listen"` // host:port of the embedded broker
	URL    string `toml:"url"`    // e.g. tcp://broker:1883
	// PasswordFile holds, on its first line, the password of the hub's own
	// MQTT user (classcap-hub) on an external broker. The embedded broker
	// makes a password for each run instead.
	PasswordFile string `toml:"password_file"`
}

// DefaultHub returns the configuration used for every key a file leaves out.
func DefaultHub() Hub {
	return Hub{
		Hub: HubSection{
			DataDir:    "/var/lib/classcap-hub",
			HTTPListen: "127.0.0.1:8080",
			LogLevel:   "info",
		},
		Broker: BrokerSection{
			Listen: "127.0.0.1:1883",
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
	return p.err()
}

// LogLevel is hub.log_level as a slog level.
func (h *Hub) LogLevel() slog.Level { return parseLogLevel(h.Hub.LogLevel) }
