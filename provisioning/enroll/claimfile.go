package enroll

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultClaimPath is where district IT puts the claim file: the FAT boot
// partition of Raspberry Pi OS, writable from any laptop with an SD reader.
const DefaultClaimPath = "/boot/firmware/classcap-claim"

// Claim is what a claim file holds:
//
//	hub = "https://hub.district.example:8443"
//	token = "ccclaim_..."
//	ca_sha256 = "<64 hex digits: SHA-256 of the hub's root certificate>"
//
// classcap-hub claim create prints such a file.
type Claim struct {
	Hub      string `toml:"hub"`
	Token    string `toml:"token"`
	CASHA256 string `toml:"ca_sha256"`
}

// ErrNoClaim is returned by ReadClaim when the claim file does not exist.
var ErrNoClaim = errors.New("no claim file")

// ReadClaim reads and parses the claim file at path.
func ReadClaim(path string) (Claim, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Claim{}, fmt.Errorf("%w at %s", ErrNoClaim, path)
	}
	if err != nil {
		return Claim{}, fmt.Errorf("read claim: %w", err)
	}
	c, err := ParseClaim(b)
	if err != nil {
		return Claim{}, fmt.Errorf("claim file %s: %w", path, err)
	}
	return c, nil
}

// ParseClaim parses and checks a claim file's content; its errors name the
// bad key.
func ParseClaim(b []byte) (Claim, error) {
	var c Claim
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return Claim{}, fmt.Errorf("parse: %w", err)
	}
	var errs []error
	if und := md.Undecoded(); len(und) > 0 {
		errs = append(errs, fmt.Errorf("unknown key %s", und[0]))
	}
	u, err := url.Parse(c.Hub)
	switch {
	case c.Hub == "":
		errs = append(errs, errors.New("hub: is required"))
	case err != nil || u.Scheme != "https" || u.Host == "" || u.Hostname() == "":
		errs = append(errs, fmt.Errorf("hub: %q is not an https://host[:port] URL", c.Hub))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("token: is required"))
	} else if strings.ContainsAny(c.Token, " \t\r\n\"") || len(c.Token) > 200 {
		errs = append(errs, errors.New("token: not a claim token"))
	}
	c.CASHA256 = strings.ToLower(c.CASHA256)
	if h, err := hex.DecodeString(c.CASHA256); err != nil || len(h) != 32 {
		errs = append(errs, errors.New("ca_sha256: want the 64 hex digits of a SHA-256"))
	}
	if len(errs) > 0 {
		return Claim{}, errors.Join(errs...)
	}
	return c, nil
}

// Format returns the claim file's content, with a comment line on top.
func (c Claim) Format(comment string) []byte {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(comment), "\n") {
		if l != "" {
			b.WriteString("# " + l + "\n")
		}
	}
	fmt.Fprintf(&b, "hub = %q\ntoken = %q\nca_sha256 = %q\n", c.Hub, c.Token, c.CASHA256)
	return []byte(b.String())
}
