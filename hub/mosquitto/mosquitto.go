// Package mosquitto writes the password file and ACL file with which an
// external mosquitto (2.0) enforces the same rules as the hub's embedded
// broker: each device logs in with its id and the password the registry
// issued, and reaches only its own topics under classcap/v1/<id>/; the hub's
// user reaches every classcap topic.
package mosquitto

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/uplink/wire"
)

// User is one line of the password file: a user name and its hash in
// mosquitto's "$7$" (PBKDF2-SHA512) format.
type User struct {
	Name string
	Hash string
}

// PasswordFile returns the password file for users ("name:hash" lines,
// ordered by name). Names with ':' or line breaks are refused.
func PasswordFile(users []User) ([]byte, error) {
	sorted := append([]User(nil), users...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var b strings.Builder
	for i, u := range sorted {
		if u.Name == "" || strings.ContainsAny(u.Name, ":\r\n") {
			return nil, fmt.Errorf("password file: user %q: a name must be non-empty without ':' or line breaks", u.Name)
		}
		if !strings.HasPrefix(u.Hash, "$7$") || strings.ContainsAny(u.Hash, ":\r\n") {
			return nil, fmt.Errorf("password file: user %q: the hash is not in mosquitto's $7$ format", u.Name)
		}
		if i > 0 && sorted[i-1].Name == u.Name {
			return nil, fmt.Errorf("password file: user %q appears twice", u.Name)
		}
		fmt.Fprintf(&b, "%s:%s\n", u.Name, u.Hash)
	}
	return []byte(b.String()), nil
}

// ACLFile returns the ACL file: the hub's user reads and writes every
// classcap topic; every other user (a device, whose user name is its id)
// writes only the kinds a box publishes and reads only the kinds the hub
// sends it, under its own prefix (mosquitto's %u pattern). Device ids are
// checked on registration to hold no '+', '#' or '/'.
func ACLFile(hubUser string) []byte {
	var b strings.Builder
	b.WriteString("# Written by classcap-hub mosquitto-acl; regenerate instead of editing.\n")
	b.WriteString("# The hub: every classcap topic.\n")
	fmt.Fprintf(&b, "user %s\ntopic readwrite %s/#\n\n", hubUser, wire.Root)
	b.WriteString("# Every device (user name = device id): its own topics only.\n")
	for _, k := range wire.Kinds {
		mode := "read"
		if k.FromBox() {
			mode = "write"
		}
		fmt.Fprintf(&b, "pattern %s %s/%%u/%s\n", mode, wire.Root, k)
	}
	return []byte(b.String())
}

// Write writes dir/passwords and dir/acl (mode 0600; mosquitto reads them
// at start and on SIGHUP), each crash-safely.
func Write(dir, hubUser, hubHash string, devices []User) error {
	if hubUser != acl.HubUser {
		// mosquitto knows only what the file says; the broker's ACL rules of
		// the embedded broker assume this name.
		for _, d := range devices {
			if d.Name == hubUser {
				return fmt.Errorf("mosquitto files: the hub user %q is also a device", hubUser)
			}
		}
	}
	pw, err := PasswordFile(append([]User{{Name: hubUser, Hash: hubHash}}, devices...))
	if err != nil {
		return err
	}
	if err := durable.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("mosquitto files: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, "passwords"), pw, 0o600); err != nil {
		return fmt.Errorf("mosquitto files: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, "acl"), ACLFile(hubUser), 0o600); err != nil {
		return fmt.Errorf("mosquitto files: %w", err)
	}
	return nil
}
