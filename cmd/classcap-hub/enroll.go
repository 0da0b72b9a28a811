package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/classcap/classcap/hub/broker"
	"github.com/classcap/classcap/hub/fleet"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/provisioning/ca"
	"github.com/classcap/classcap/provisioning/claim"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/provisioning/groupconfig"
	"github.com/classcap/classcap/provisioning/registrar"
)

// The enrollment files in the data directory: the CA (root and server
// certificate) and the claims and identities database, which the hub and
// the verbs open per transaction, so the verbs work while the hub runs.
func caDir(cfg *config.Hub) string        { return filepath.Join(cfg.Hub.DataDir, "ca") }
func enrollDBPath(cfg *config.Hub) string { return filepath.Join(cfg.Hub.DataDir, "enroll.db") }

// enrollment is the CA, the claims, the registrar and the desired
// configurations of one hub.
type enrollment struct {
	ca      *ca.CA
	claims  *claim.Store
	reg     *registrar.Registrar
	configs *groupconfig.Store
}

func openEnrollment(cfg *config.Hub, onEnrolled func(registrar.Device) error, log *slog.Logger) (*enrollment, error) {
	authority, err := ca.LoadOrCreate(caDir(cfg), "classcap hub CA")
	if err != nil {
		return nil, err
	}
	db := &registrar.File{Path: enrollDBPath(cfg)}
	claims, err := claim.NewStore(db)
	if err != nil {
		return nil, err
	}
	reg, err := registrar.New(registrar.Config{
		BrokerURL:  enrollBrokerURL(cfg),
		Validity:   time.Duration(cfg.Enroll.CertDays) * 24 * time.Hour,
		OnEnrolled: onEnrolled,
	}, authority, claims, db, log)
	if err != nil {
		return nil, err
	}
	configs, err := groupconfig.New(db)
	if err != nil {
		return nil, err
	}
	return &enrollment{ca: authority, claims: claims, reg: reg, configs: configs}, nil
}

// openConfigs returns the store of desired configurations: enrollment's,
// or on a hub without enrollment the same file opened for it alone (the
// config verbs write there either way).
func openConfigs(cfg *config.Hub, en *enrollment) (*groupconfig.Store, error) {
	if en != nil {
		return en.configs, nil
	}
	if err := os.MkdirAll(filepath.Dir(enrollDBPath(cfg)), 0o700); err != nil {
		return nil, fmt.Errorf("configurations: %w", err)
	}
	return groupconfig.New(&registrar.File{Path: enrollDBPath(cfg)})
}

// enrollURL is the enrollment endpoint boxes are told in claim files.
func enrollURL(cfg *config.Hub) string {
	e := cfg.Enroll
	if e.URL != "" {
		return e.URL
	}
	host, port := "localhost", "8443"
	if len(e.Names) > 0 {
		host = e.Names[0]
	}
	if _, p, err := net.SplitHostPort(e.Listen); err == nil {
		port = p
	}
	return "https://" + net.JoinHostPort(host, port)
}

// enrollBrokerURL is the broker URL enrolled boxes are given.
func enrollBrokerURL(cfg *config.Hub) string {
	e := cfg.Enroll
	if e.BrokerURL != "" {
		return e.BrokerURL
	}
	host, port := "localhost", "8883"
	if len(e.Names) > 0 {
		host = e.Names[0]
	}
	if _, p, err := net.SplitHostPort(cfg.Broker.TLSListen); err == nil {
		port = p
	}
	return "ssl://" + net.JoinHostPort(host, port)
}

// enrollServer serves the registrar over HTTPS on cfg.Enroll.Listen with a
// server certificate from the hub's CA.
func enrollServer(cfg *config.Hub, en *enrollment, log *slog.Logger) (component, error) {
	cert, err := en.ca.ServerCertificate(caDir(cfg), cfg.Enroll.Names)
	if err != nil {
		return component{}, err
	}
	ln, err := net.Listen("tcp", cfg.Enroll.Listen)
	if err != nil {
		return component{}, fmt.Errorf("listen %s: %w", cfg.Enroll.Listen, err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	log.Info("enrollment endpoint", "addr", ln.Addr().String(), "url", enrollURL(cfg),
		"ca_sha256", en.ca.Fingerprint(), "broker_url", enrollBrokerURL(cfg))
	return component{"enroll", httpServer(tln, en.reg.Handler(), log)}, nil
}

// revocationPoll is how often the hub looks for devices revoked (by the
// verb, in another process) to disconnect them.
var revocationPoll = 5 * time.Second

// brokerTLS adds the broker's mutual-TLS listener for enrolled boxes and
// returns the component that disconnects a box once it is revoked.
func brokerTLS(cfg *config.Hub, en *enrollment, b *broker.Broker, log *slog.Logger) (component, error) {
	if len(cfg.Enroll.Names) == 0 {
		return component{}, errors.New("broker.tls_listen needs enroll.names for the broker's certificate")
	}
	cert, err := en.ca.ServerCertificate(caDir(cfg), cfg.Enroll.Names)
	if err != nil {
		return component{}, err
	}
	if err := b.ListenTLS(cfg.Broker.TLSListen, cert, en.ca.Pool(), en.reg); err != nil {
		return component{}, err
	}
	log.Info("MQTT mutual-TLS listener", "addr", b.TLSAddr())
	return component{"revocations", func(ctx context.Context) error {
		t := time.NewTicker(revocationPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			list, err := en.reg.List()
			if err != nil {
				log.Warn("list devices for revocations", "err", err)
				continue
			}
			for _, d := range list {
				if d.Revoked {
					if n := b.DisconnectDevice(d.ID); n > 0 {
						log.Info("revoked device disconnected", "device", d.ID)
					}
				}
			}
		}
	}}, nil
}

// configPoll is how often the hub looks for configuration changes (made by
// the verb, in another process) and newly enrolled boxes.
var configPoll = 5 * time.Second

// configPusher publishes each box's desired configuration, retained, when
// its version is above the one last published (so at start every box's
// configuration is published once again): enrolled boxes get their group's
// settings under their own, boxes added with a password (no group) their
// own. en is nil on a hub without enrollment.
func configPusher(en *enrollment, configs *groupconfig.Store, reg *registry.Registry, fl *fleet.Fleet, log *slog.Logger) component {
	return component{"config", func(ctx context.Context) error {
		sent := map[string]int64{}
		t := time.NewTicker(configPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-fl.Connected():
			}
			for _, d := range configTargets(en, reg, log) {
				c, ok, err := configs.Effective(d.id, d.group)
				if err != nil {
					log.Warn("configuration", "device", d.id, "err", err)
					continue
				}
				if !ok || c.Version <= sent[d.id] {
					continue
				}
				payload, err := json.Marshal(c)
				if err != nil {
					continue
				}
				if err := fl.PublishConfig(ctx, d.id, payload); err != nil {
					log.Warn("publish configuration", "device", d.id, "err", err)
					continue
				}
				sent[d.id] = c.Version
				log.Info("configuration published", "device", d.id, "version", c.Version)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}}
}

// configTarget is a box the hub keeps a configuration for.
type configTarget struct{ id, group string }

// configTargets lists the enrolled boxes that are not revoked, with their
// groups, and the boxes of the registry that never enrolled, without one.
func configTargets(en *enrollment, reg *registry.Registry, log *slog.Logger) []configTarget {
	var out []configTarget
	enrolled := map[string]bool{}
	if en != nil {
		list, err := en.reg.List()
		if err != nil {
			log.Warn("list enrolled devices for configuration", "err", err)
		}
		for _, d := range list {
			enrolled[d.ID] = true // a revoked box gets nothing, not even as a password box
			if !d.Revoked {
				out = append(out, configTarget{d.ID, d.Group})
			}
		}
	}
	devices, err := reg.Devices()
	if err != nil {
		log.Warn("list devices for configuration", "err", err)
	}
	for _, d := range devices {
		if !enrolled[d.ID] {
			out = append(out, configTarget{d.ID, ""})
		}
	}
	return out
}

// registerEnrolled adds a newly enrolled box to the hub's registry, so it
// is listed and followed like a device added by hand.
func registerEnrolled(reg *registry.Registry) func(registrar.Device) error {
	return func(d registrar.Device) error {
		if _, err := reg.AddDevice(d.ID); err != nil && !errors.Is(err, registry.ErrDeviceExists) {
			return err
		}
		return nil
	}
}

const enrollVerbUsage = `  claim create -group G -uses N -expires 30d  print a claim file for G's boxes (holds the token)
  claim list                                  list claims: id, group, uses left, expiry
  claim revoke CLAIM_ID                       refuse a claim from now on
  device certs                                list enrolled devices: certificate serial and expiry
  device revoke ID                            cut an enrolled box off (broker and renewals refuse it)
  config set -group G | -device ID FILE.toml  desired box settings ([recording], [video], [audio], upload keys)
  config show -group G | -device ID           print the stored settings (a device: its effective configuration)
`

// parseEnrollVerb parses the claim and device certs/revoke verbs; nil, nil
// when args are not one of them.
func parseEnrollVerb(args []string) (verbFunc, error) {
	bad := func(format string, a ...any) (verbFunc, error) {
		return nil, &usageError{msg: fmt.Sprintf(format, a...) + "\nverbs:\n" + enrollVerbUsage}
	}
	switch {
	case len(args) >= 2 && args[0] == "claim" && args[1] == "create":
		fs := flag.NewFlagSet("claim create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		group := fs.String("group", "", "the group the boxes join (their ids start with it)")
		uses := fs.Int("uses", 1, "how many boxes may enroll with the claim")
		expires := fs.String("expires", "30d", "how long the claim is valid: 30d, 12h, ...")
		if err := fs.Parse(args[2:]); err != nil {
			return bad("claim create: %v", err)
		}
		if fs.NArg() > 0 {
			return bad("claim create: unexpected %q", fs.Arg(0))
		}
		if err := claim.ValidateGroup(*group); err != nil {
			return bad("claim create: -group: %v", err)
		}
		if *uses < 1 {
			return bad("claim create: -uses %d: want at least 1", *uses)
		}
		ttl, err := parseDays(*expires)
		if err != nil {
			return bad("claim create: -expires: %v", err)
		}
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			token, c, err := en.claims.Create(*group, *uses, ttl)
			if err != nil {
				return err
			}
			file := enroll.Claim{Hub: enrollURL(cfg), Token: token, CASHA256: en.ca.Fingerprint()}
			_, err = stdout.Write(file.Format(fmt.Sprintf(
				"classcap claim %s: group %s, %d uses, expires %s\nWrite this file to the boot partition of each box as %s",
				c.ID, c.Group, c.Uses, c.ExpiresAt.Format(time.RFC3339), enroll.DefaultClaimPath)))
			return err
		}, nil
	case len(args) == 2 && args[0] == "claim" && args[1] == "list":
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			list, err := en.claims.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLAIM\tGROUP\tUSES LEFT\tEXPIRES\tREVOKED")
			for _, c := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%v\n", c.ID, c.Group, c.UsesLeft, c.Uses, c.ExpiresAt.Format(time.RFC3339), c.Revoked)
			}
			return tw.Flush()
		}, nil
	case len(args) == 3 && args[0] == "claim" && args[1] == "revoke":
		id := args[2]
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			if err := en.claims.Revoke(id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "claim %s revoked\n", id)
			return nil
		}, nil
	case len(args) == 2 && args[0] == "device" && args[1] == "certs":
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			list, err := en.reg.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tGROUP\tSERIAL\tNOT AFTER\tREVOKED")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", d.ID, d.Group, d.Serial, d.NotAfter.Format(time.RFC3339), d.Revoked)
			}
			return tw.Flush()
		}, nil
	case len(args) >= 2 && args[0] == "config" && (args[1] == "set" || args[1] == "show"):
		verb := args[1]
		fs := flag.NewFlagSet("config "+verb, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		group := fs.String("group", "", "a group")
		device := fs.String("device", "", "a device")
		if err := fs.Parse(args[2:]); err != nil {
			return bad("config %s: %v", verb, err)
		}
		if (*group == "") == (*device == "") {
			return bad("config %s: give -group or -device", verb)
		}
		scope, name := "group", *group
		if *device != "" {
			scope, name = "device", *device
		}
		if verb == "set" {
			if fs.NArg() != 1 {
				return bad("config set: want one TOML file")
			}
			file := fs.Arg(0)
			return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
				text, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				settings, err := groupconfig.SettingsFromTOML(text)
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
				if err != nil {
					return err
				}
				v, err := en.configs.Set(scope, name, settings)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "%s %s: configuration version %d\n", scope, name, v)
				return nil
			}, nil
		}
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			var out any
			if scope == "device" {
				d, ok, err := en.reg.Device(name)
				if err != nil {
					return err
				}
				group := ""
				if ok {
					group = d.Group
				}
				c, _, err := en.configs.Effective(name, group)
				if err != nil {
					return err
				}
				out = c
			} else {
				e, _, err := en.configs.Get(scope, name)
				if err != nil {
					return err
				}
				out = e
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}, nil
	case len(args) >= 2 && args[0] == "device" && args[1] == "revoke":
		if len(args) != 3 {
			return bad("device revoke: want \"device revoke ID\"")
		}
		id := args[2]
		return func(ctx context.Context, cfg *config.Hub, stdout io.Writer) error {
			en, err := openEnrollment(cfg, nil, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			if err := en.reg.Revoke(id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "device %s revoked\n", id)
			return nil
		}, nil
	}
	return nil, nil
}

// parseDays parses "30d" (days) or a Go duration ("12h").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 1 {
			return 0, fmt.Errorf("%q: want a number of days like 30d", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want 30d, 12h, ...", s)
	}
	return d, nil
}
