package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pion/turn/v5"
)

// ICE servers for live viewers. The hub tells viewers the STUN and TURN
// servers of its [live] configuration: in every WHEP answer as Link headers
// (RFC 9725 section 4.6, which WHEP reuses), and to the hub's web page,
// which needs them before it makes its offer, at
//
//	GET /api/v1/live/ice   -> {"ice_servers": [...], "ice_transport_policy": "all"|"relay"}
//
// (a coach's token, as every live route).
//
// A TURN server given with a shared secret (AuthSecret) is told with
// credentials made for the caller (the "TURN REST API" scheme that coturn's
// static-auth-secret and pion/turn accept): username "<expiry>:<caller>",
// where expiry is in Unix seconds, and credential base64(HMAC-SHA1(secret,
// username)). A viewer's credentials stop working CredentialTTL after it
// asked, and the secret never leaves the hub.

// ICEServer is a STUN or TURN server told to live viewers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
	// AuthSecret, when set, is the TURN server's shared secret: each
	// viewer is told credentials made from it instead of Username and
	// Credential.
	AuthSecret string `json:"-"`
}

// LiveICE is what the hub tells live viewers.
type LiveICE struct {
	Servers []ICEServer `json:"ice_servers"`
	// Policy is "all" or "relay": the hub's web page asks its browser for
	// it (a WHEP answer has no way to say it).
	Policy string `json:"ice_transport_policy"`
	// CredentialTTL is how long credentials made from an AuthSecret
	// last; DefaultCredentialTTL when zero.
	CredentialTTL time.Duration `json:"-"`
}

// DefaultCredentialTTL is how long credentials made for a viewer last when
// LiveICE.CredentialTTL is zero.
const DefaultCredentialTTL = 12 * time.Hour

// SetLiveICE sets the ICE servers told to viewers from now on.
func (a *API) SetLiveICE(ice LiveICE) {
	c := LiveICE{Policy: ice.Policy, CredentialTTL: ice.CredentialTTL, Servers: make([]ICEServer, 0, len(ice.Servers))}
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

// liveICE is what the hub tells c: its servers, with credentials made for
// c where a server has a shared secret.
func (a *API) liveICE(c caller) LiveICE {
	a.iceMu.Lock()
	ice := a.ice
	a.iceMu.Unlock()
	if ice.Policy == "" {
		return LiveICE{Servers: []ICEServer{}, Policy: "all"}
	}
	ttl := ice.CredentialTTL
	if ttl <= 0 {
		ttl = DefaultCredentialTTL
	}
	out := LiveICE{Policy: ice.Policy, Servers: make([]ICEServer, 0, len(ice.Servers))}
	for _, s := range ice.Servers {
		if s.AuthSecret != "" {
			var err error
			s.Username, s.Credential, err = turn.GenerateLongTermTURNRESTCredentials(s.AuthSecret, turnUser(c), ttl)
			if err != nil { // an HMAC write, which does not fail
				a.log.Error("TURN credentials", "urls", s.URLs, "err", err)
				continue
			}
			s.AuthSecret = ""
		}
		out.Servers = append(out.Servers, s)
	}
	return out
}

// turnUser is c as the user part of a TURN REST username: the TURN server's
// logs name the viewer. ':' separates the expiry from it, so it is left
// out, as is anything but letters, digits and ._-@.
func turnUser(c caller) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._-@", r):
			return r
		}
		return '_'
	}, c.Role+"."+c.Name)
}

func (a *API) getLiveICE(w http.ResponseWriter, _ *http.Request, c caller) {
	w.Header().Set("Cache-Control", "no-store") // it may carry TURN credentials
	writeJSON(w, http.StatusOK, a.liveICE(c))
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
