package api

import (
	"net/http"
	"slices"
	"strings"
)

// ICE servers for live viewers. The hub tells viewers the STUN and TURN
// servers of its [live] configuration: in every WHEP answer as Link headers
// (RFC 9725 section 4.6, which WHEP reuses), and to the hub's web page,
// which needs them before it makes its offer, at
//
//	GET /api/v1/live/ice   -> {"ice_servers": [...], "ice_transport_policy": "all"|"relay"}
//
// (a coach's token, as every live route).

// ICEServer is a STUN or TURN server told to live viewers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// LiveICE is what the hub tells live viewers.
type LiveICE struct {
	Servers []ICEServer `json:"ice_servers"`
	// Policy is "all" or "relay": the hub's web page asks its browser for
	// it (a WHEP answer has no way to say it).
	Policy string `json:"ice_transport_policy"`
}

// SetLiveICE sets the ICE servers told to viewers from now on.
func (a *API) SetLiveICE(ice LiveICE) {
	c := LiveICE{Policy: ice.Policy, Servers: make([]ICEServer, 0, len(ice.Servers))}
	if c.Policy == "" {
		c.Policy = "all"
	}
	for _, s := range ice.Servers {
		s.URLs = slices.Clone(s.URLs)
		c.Servers = append(c.Servers, s)
	}
	a.iceMu.Lock()
	a.ice = c
	a.iceMu.Unlock()
}

func (a *API) liveICE() LiveICE {
	a.iceMu.Lock()
	defer a.iceMu.Unlock()
	if a.ice.Policy == "" {
		return LiveICE{Servers: []ICEServer{}, Policy: "all"}
	}
	return a.ice
}

func (a *API) getLiveICE(w http.ResponseWriter, _ *http.Request, _ caller) {
	w.Header().Set("Cache-Control", "no-store") // it may carry TURN credentials
	writeJSON(w, http.StatusOK, a.liveICE())
}

// ICELinks returns the Link header values announcing servers, one per URL:
// <stun:host:3478>; rel="ice-server", and for TURN URLs the credential too:
// <turn:host:3478?transport=udp>; rel="ice-server"; username="u";
// credential="p"; credential-type="password".
func ICELinks(servers []ICEServer) []string {
	var out []string
	for _, s := range servers {
		for _, u := range s.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if scheme, _, _ := strings.Cut(strings.ToLower(u), ":"); scheme == "turn" || scheme == "turns" {
				l += "; username=" + quote(s.Username) + "; credential=" + quote(s.Credential) + `; credential-type="password"`
			}
			out = append(out, l)
		}
	}
	return out
}

// quote makes s an HTTP quoted-string (RFC 9110 section 5.6.4): '\' and
// '"' escaped with a backslash. The configuration refuses control
// characters, which a header cannot carry at all.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
