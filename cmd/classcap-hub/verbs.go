package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/hub/api"
	"github.com/classcap/classcap/hub/mosquitto"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/provisioning/config"
)

const verbUsage = `verbs:
  token create -role coach|admin -name NAME   print a new API bearer token
  device add ID                               register a box; print its MQTT password
  mosquitto-acl -dir DIR                      write DIR/passwords and DIR/acl for an external mosquitto
` + enrollVerbUsage + `The verbs work whether the hub runs or not: they ask the running hub over
<data_dir>/hub.sock, or open the registry themselves when no hub runs.
`

// verbFunc runs a parsed verb.
type verbFunc func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error

// parseVerb checks a verb's arguments before the configuration is read.
func parseVerb(args []string) (verbFunc, error) {
	bad := func(format string, a ...any) (verbFunc, error) {
		return nil, &usageError{msg: fmt.Sprintf(format, a...) + "\n" + verbUsage}
	}
	if f, err := parseEnrollVerb(args); f != nil || err != nil {
		return f, err
	}
	switch {
	case len(args) >= 2 && args[0] == "token" && args[1] == "create":
		fs := flag.NewFlagSet("token create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		role := fs.String("role", "", "coach or admin")
		name := fs.String("name", "", "who holds the token")
		if err := fs.Parse(args[2:]); err != nil {
			return bad("token create: %v", err)
		}
		if fs.NArg() > 0 {
			return bad("token create: unexpected %q", fs.Arg(0))
		}
		if !registry.ValidRole(*role) {
			return bad("token create: -role %q: want coach or admin", *role)
		}
		if *name == "" {
			return bad("token create: -name is required (who holds the token)")
		}
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			tok, err := adminOf(cfg).createToken(ctx, *role, *name)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, tok)
			return nil
		}, nil
	case len(args) >= 1 && args[0] == "device":
		if len(args) != 3 || args[1] != "add" {
			return bad("device: want \"device add ID\"")
		}
		id := args[2]
		if err := registry.ValidateDeviceID(id); err != nil {
			return bad("device add: %v", err)
		}
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			pw, err := adminOf(cfg).addDevice(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, pw)
			return nil
		}, nil
	case len(args) >= 1 && args[0] == "mosquitto-acl":
		fs := flag.NewFlagSet("mosquitto-acl", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dir := fs.String("dir", "", "where to write passwords and acl")
		if err := fs.Parse(args[1:]); err != nil {
			return bad("mosquitto-acl: %v", err)
		}
		if *dir == "" || fs.NArg() > 0 {
			return bad("mosquitto-acl: want -dir DIR")
		}
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			return writeMosquitto(ctx, cfg, *dir, stdout)
		}, nil
	}
	return bad("unknown verb %q", args[0])
}

func writeMosquitto(ctx context.Context, cfg *config.Hub, dir string, stdout io.Writer) error {
	if cfg.Broker.PasswordFile == "" {
		return errors.New("mosquitto-acl: set broker.password_file (the hub's own MQTT password) in the config")
	}
	pw, err := readPasswordFile(cfg.Broker.PasswordFile)
	if err != nil {
		return fmt.Errorf("mosquitto-acl: %w", err)
	}
	hubHash, err := registry.MosquittoHash(pw, registry.MosquittoIterations)
	if err != nil {
		return err
	}
	users, err := adminOf(cfg).mosquittoUsers(ctx)
	if err != nil {
		return err
	}
	if err := mosquitto.Write(dir, acl.HubUser, hubHash, users); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s/passwords (%d devices and %s) and %s/acl\n", dir, len(users), acl.HubUser, dir)
	return nil
}

// admin does what the verbs need, through the running hub or directly.
type admin struct{ cfg *config.Hub }

func adminOf(cfg *config.Hub) admin { return admin{cfg} }

// errNoHub means no hub answers on the local socket.
var errNoHub = errors.New("no hub answers on the local socket")

// viaHub sends a request to the running hub's local socket and decodes the
// answer into out. It returns errNoHub when no hub listens there.
func (a admin) viaHub(ctx context.Context, method, path string, in, out any) error {
	sock := socketPath(a.cfg)
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}, Timeout: 30 * time.Second}
	body, err := api.JSONBody(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hub"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return errNoHub
		}
		return fmt.Errorf("ask the hub on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("ask the hub on %s: %w", sock, err)
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("the hub answered %s", resp.Status)
	}
	return json.Unmarshal(data, out)
}

// direct opens the registry when no hub runs (a running hub holds its lock,
// and then Open fails after a second with registry.ErrLocked).
func (a admin) direct(f func(*registry.Registry) error) error {
	reg, err := registry.Open(registryPath(a.cfg), registry.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, registry.ErrLocked) {
			return fmt.Errorf("%w; and no hub answers on %s", err, socketPath(a.cfg))
		}
		return err
	}
	defer reg.Close()
	return f(reg)
}

func (a admin) createToken(ctx context.Context, role, name string) (string, error) {
	var resp api.TokenResponse
	err := a.viaHub(ctx, http.MethodPost, "/api/v1/tokens", api.TokenRequest{Role: role, Name: name}, &resp)
	if errors.Is(err, errNoHub) {
		err = a.direct(func(r *registry.Registry) (err error) {
			resp.Token, err = r.CreateToken(role, name)
			return err
		})
	}
	return resp.Token, err
}

func (a admin) addDevice(ctx context.Context, id string) (string, error) {
	var resp api.AddDeviceResponse
	err := a.viaHub(ctx, http.MethodPost, "/api/v1/devices", api.AddDeviceRequest{ID: id}, &resp)
	if errors.Is(err, errNoHub) {
		err = a.direct(func(r *registry.Registry) (err error) {
			resp.Password, err = r.AddDevice(id)
			return err
		})
	}
	return resp.Password, err
}

func (a admin) mosquittoUsers(ctx context.Context) ([]mosquitto.User, error) {
	var resp api.MosquittoUsers
	err := a.viaHub(ctx, http.MethodGet, api.LocalMosquittoUsersPath, nil, &resp)
	if errors.Is(err, errNoHub) {
		err = a.direct(func(r *registry.Registry) error {
			ds, err := r.Devices()
			if err != nil {
				return err
			}
			resp.Users = api.MosquittoUsersOf(ds)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	users := make([]mosquitto.User, len(resp.Users))
	for i, u := range resp.Users {
		users[i] = mosquitto.User{Name: u.Name, Hash: u.Hash}
	}
	return users, nil
}
