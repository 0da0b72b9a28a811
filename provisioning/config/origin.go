package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// HubHTTPSection is [http]: the hub's HTTP server as other web origins see it.
type HubHTTPSection struct {
	// AllowedOrigins are the web origins (scheme://host[:port], as a
	// browser sends them in Origin) whose pages may call the API and the
	// WHEP endpoint (CORS); empty: the hub's own page only.
	AllowedOrigins []string `toml:"allowed_origins"`
}

// CanonicalOrigin returns s as a browser writes an origin in its Origin
// header: an http or https scheme, a lower-case host, the port only when it
// is not the scheme's default, nothing after. It fails for anything else
// (a path, a query, user info, "*", "null").
func CanonicalOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: want an http:// or https:// origin", s)
	}
	if u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%q is not an origin: only scheme://host[:port]", s)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, " \t*%") {
		return "", fmt.Errorf("%q has no valid host", s)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	out := u.Scheme + "://" + host
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", fmt.Errorf("%q has an invalid port %q", s, p)
		}
		if !(u.Scheme == "http" && n == 80) && !(u.Scheme == "https" && n == 443) {
			out += ":" + p
		}
	}
	return out, nil
}

// origins checks [http] allowed_origins: each written as a browser sends it.
func (p *problems) origins(field string, origins []string) {
	seen := map[string]bool{}
	for i, o := range origins {
		f := fmt.Sprintf("%s[%d]", field, i)
		c, err := CanonicalOrigin(o)
		switch {
		case err != nil:
			p.add(f, "%v", err)
		case c != o:
			p.add(f, "%q: write it as browsers send it, %q", o, c)
		case seen[c]:
			p.add(f, "%q is listed twice", o)
		}
		seen[c] = true
	}
}
