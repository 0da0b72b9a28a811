package config

import (
	"fmt"
	"strings"

	"github.com/pion/stun/v4"
)

// ICEServer is one STUN or TURN server offered to WebRTC peers for live
// view (live.ice_servers, on the box and on the hub).
type ICEServer struct {
	// URLs are stun:, stuns:, turn: or turns: URIs (RFC 7064, RFC 7065),
	// e.g. "stun:stun.example.net:3478" or "turn:turn.example.net?transport=udp".
	URLs []string `toml:"urls" json:"urls"`
	// Username and Credential are the TURN server's long-term credentials;
	// required for turn: and turns: URLs.
	Username   string `toml:"username" json:"username,omitempty"`
	Credential string `toml:"credential" json:"credential,omitempty"`
	// AuthSecretFile, on the hub only, names a file whose first line is
	// the TURN server's shared secret (coturn's static-auth-secret, the
	// "TURN REST API" scheme) in place of Username and Credential: each
	// viewer is then given credentials of its own that expire after
	// live.turn_credential_hours, rather than one that works for ever.
	// It never leaves the hub (no JSON).
	AuthSecretFile string `toml:"auth_secret_file" json:"-"`
}

// IsTURN reports whether one of s's URLs is a TURN server (turn: or turns:).
func (s ICEServer) IsTURN() bool {
	for _, u := range s.URLs {
		if isTURN(u) {
			return true
		}
	}
	return false
}

func isTURN(u string) bool {
	scheme, _, _ := strings.Cut(u, ":")
	scheme = strings.ToLower(scheme)
	return scheme == "turn" || scheme == "turns"
}

// ICE transport policies (live.ice_transport_policy).
var icePolicies = []string{"all", "relay"}

// iceServers checks a [[live.ice_servers]] list and the transport policy
// under prefix ("live"): every URL parses as a STUN or TURN URI, TURN
// servers carry credentials (or, on the hub, a shared secret to make
// them from), and "relay" has a TURN server to relay through.
func (p *problems) iceServers(prefix string, servers []ICEServer, policy string, hub bool) {
	turn := false
	for i, s := range servers {
		field := fmt.Sprintf("%s.ice_servers[%d]", prefix, i)
		if len(s.URLs) == 0 {
			p.add(field+".urls", "is required: one or more stun:, stuns:, turn: or turns: URLs")
		}
		for _, u := range s.URLs {
			if err := checkICEURL(u); err != nil {
				p.add(field+".urls", "%s", err)
			}
		}
		if s.AuthSecretFile != "" {
			switch {
			case !hub:
				p.add(field+".auth_secret_file", "is for the hub's configuration only: a box is given no TURN secret; give it a username and credential of its own")
			case !s.IsTURN():
				p.add(field+".auth_secret_file", "needs a turn: or turns: URL in urls (STUN servers take no credentials)")
			case s.Username != "" || s.Credential != "":
				p.add(field+".auth_secret_file", "set either auth_secret_file or username and credential, not both")
			default:
				p.noControl(field+".auth_secret_file", s.AuthSecretFile)
			}
			turn = turn || s.IsTURN()
			continue
		}
		if s.IsTURN() {
			turn = true
			if p.required(field+".username", s.Username) {
				p.noControl(field+".username", s.Username)
			}
			if p.required(field+".credential", s.Credential) {
				p.noControl(field+".credential", s.Credential)
			}
		} else {
			p.noControl(field+".username", s.Username)
			p.noControl(field+".credential", s.Credential)
		}
	}
	p.oneOf(prefix+".ice_transport_policy", policy, icePolicies...)
	if policy == "relay" && !turn {
		p.add(prefix+".ice_transport_policy", `"relay" needs a turn: or turns: server in %s.ice_servers`, prefix)
	}
}

// checkICEURL checks one STUN or TURN URI. Besides what the URI grammar
// allows, it refuses characters that would break the URL out of a Link
// header's <...> (WHEP announces the servers that way).
func checkICEURL(u string) error {
	if strings.ContainsFunc(u, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune(`<>"\,;`, r)
	}) {
		return fmt.Errorf("%q contains a space, a control character or one of <>\"\\,;", u)
	}
	scheme, _, ok := strings.Cut(u, ":")
	switch strings.ToLower(scheme) {
	case "stun", "stuns", "turn", "turns":
	default:
		if !ok {
			return fmt.Errorf("%q is not a URL: want stun:host[:port] or turn:host[:port][?transport=udp|tcp]", u)
		}
		return fmt.Errorf("%q: scheme %q is not one of stun, stuns, turn, turns", u, scheme)
	}
	if _, err := stun.ParseURI(u); err != nil {
		return fmt.Errorf("%q is not a STUN or TURN URI (stun:host[:port], turn:host[:port][?transport=udp|tcp]): %w", u, err)
	}
	return nil
}
