package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/hub/api"
	"github.com/classcap/classcap/hub/broker"
	"github.com/classcap/classcap/hub/events"
	"github.com/classcap/classcap/hub/fleet"
	"github.com/classcap/classcap/hub/ingest"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/hub/web"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/wire"
)

// registryPath and socketPath are the hub's files in its data directory.
func registryPath(cfg *config.Hub) string { return filepath.Join(cfg.Hub.DataDir, "registry.db") }
func socketPath(cfg *config.Hub) string   { return filepath.Join(cfg.Hub.DataDir, "hub.sock") }

// readPasswordFile returns the first line of path, broker.password_file.
func readPasswordFile(path string) (string, error) { return readSecret("broker.password_file", path) }

// readSecret returns the first line of path, which the configuration key
// field names.
func readSecret(field, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", field, err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimRight(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%s %s: the first line is empty", field, path)
	}
	return pw, nil
}

// component is a long-lived part of the hub.
type component struct {
	name string
	run  func(context.Context) error
}

// serve opens the registry, starts the broker (embedded) or joins the
// external one, and serves the API until ctx is cancelled.
func serve(ctx context.Context, cfg *config.Hub, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.Hub.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// What changes, told to the API's event stream: the registry publishes
	// what its writes change, the ingest each lesson file it verifies.
	changes := events.NewBroker()
	// The registry: devices, states, lessons, tokens.
	reg, err := registry.Open(registryPath(cfg), registry.Options{Events: changes})
	if err != nil {
		return err
	}
	defer reg.Close()

	var comps []component
	// Enrollment: the CA, claims and identities; HTTPS for the boxes.
	var en *enrollment
	if cfg.Enroll.Listen != "" || cfg.Broker.TLSListen != "" {
		if en, err = openEnrollment(cfg, registerEnrolled(reg), log.With("component", "enroll")); err != nil {
			return err
		}
	}
	if cfg.Enroll.Listen != "" {
		c, err := enrollServer(cfg, en, log.With("component", "enroll"))
		if err != nil {
			return err
		}
		comps = append(comps, c)
	}
	// The broker: embedded, or the external one named by broker.url.
	brokerURL, hubPassword := cfg.Broker.URL, ""
	if cfg.Broker.Listen != "" {
		// A broker that just started has no box connected.
		if err := reg.MarkAllOffline(); err != nil {
			return err
		}
		hubPassword = registry.NewSecret(32)
		b, err := broker.New(cfg.Broker.Listen, reg, hubPassword, log.With("component", "broker"))
		if err != nil {
			return err
		}
		brokerURL = b.LocalURL()
		// Enrolled boxes: mutual TLS, revoked ones cut off.
		if cfg.Broker.TLSListen != "" {
			c, err := brokerTLS(cfg, en, b, log.With("component", "broker"))
			if err != nil {
				return err
			}
			comps = append(comps, c)
		}
		comps = append(comps, component{"broker", b.Run})
	} else if hubPassword, err = readPasswordFile(cfg.Broker.PasswordFile); err != nil {
		return err
	}
	// The hub's MQTT client: follows the boxes, sends commands.
	fl := fleet.New(fleet.Config{Broker: brokerURL, Username: acl.HubUser, Password: hubPassword},
		reg, log.With("component", "fleet"))
	comps = append(comps, component{"fleet", fl.Run})
	// Desired configurations, retained on the boxes' config topics (the
	// store lives beside enrollment's, where the config verbs write it).
	configs, err := openConfigs(cfg, en)
	if err != nil {
		return err
	}
	comps = append(comps, configPusher(en, configs, reg, fl, log.With("component", "config")))
	// The HTTP API, on TCP for people and on the local socket for the CLI verbs.
	a := api.New(reg, fl, log.With("component", "api"))
	ice, err := liveICE(cfg.Live)
	if err != nil {
		return err
	}
	a.SetLiveICE(ice) // the STUN and TURN servers told to live viewers
	a.SetEvents(changes)
	httpLn, err := net.Listen("tcp", cfg.Hub.HTTPListen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Hub.HTTPListen, err)
	}
	// Uploads: tusd with grant tokens, answered over MQTT by the fleet; the
	// lessons they fill, listed and served by the API.
	in, err := openIngest(cfg, changes, log.With("component", "ingest"))
	if err != nil {
		httpLn.Close()
		return err
	}
	tusURL := strings.TrimSuffix(cfg.Hub.PublicURL, "/")
	if tusURL == "" {
		tusURL = "http://" + httpLn.Addr().String()
	}
	tusURL += tusPath
	fl.HandleUploads(func(device string, m wire.UploadMsg) wire.GrantMsg { return in.Answer(device, m, tusURL) })
	// Partial uploads no box came back for, discarded hourly.
	abandon := time.Duration(cfg.Hub.AbandonedUploadHours) * time.Hour
	comps = append(comps, component{"upload janitor", func(ctx context.Context) error { return in.RunJanitor(ctx, abandon, time.Hour) }})
	a.ServeLessons(in.Store())
	localLn, err := listenLocal(socketPath(cfg))
	if err != nil {
		httpLn.Close()
		return err
	}
	// Event streams end when the hub stops: the HTTP server's shutdown
	// waits for the requests under way, and a stream never ends by itself.
	comps = append(comps, component{"event streams", func(ctx context.Context) error {
		<-ctx.Done()
		changes.Close()
		return nil
	}})
	comps = append(comps,
		component{"http", httpServer(httpLn, newMux(api.CORS(cfg.HTTP.AllowedOrigins, a), in.Handler()), log)},
		component{"local socket", httpServer(localLn, a.Local(), log)})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(comps))
	var wg sync.WaitGroup
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(ctx)
			if err != nil {
				err = fmt.Errorf("%s: %w", c.name, err)
			}
			errs <- err
			cancel() // one part ending ends the hub
		}()
	}
	log.Info("serving HTTP", "addr", httpLn.Addr().String(), "version", version, "data_dir", cfg.Hub.DataDir,
		"broker", brokerURL, "socket", socketPath(cfg))
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("sd_notify", "err", err)
	}
	<-ctx.Done()
	log.Info("shutting down")
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		if err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}

// listenLocal listens on the unix socket at path (mode 0600). The caller
// holds the registry's lock, so a socket file already there is stale.
func listenLocal(path string) (net.Listener, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// httpServer serves h on ln until ctx is cancelled.
func httpServer(ln net.Listener, h http.Handler, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutCtx); err != nil {
			return fmt.Errorf("shut down: %w", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// tusPath is where the hub's tus endpoint is mounted.
const tusPath = "/tus/"

// openIngest opens the lesson store and the tus ingest under the data
// directory, with the upload-token key kept in upload.key (made on first
// start).
func openIngest(cfg *config.Hub, changes *events.Broker, log *slog.Logger) (*ingest.Ingest, error) {
	store, err := ingest.NewStore(filepath.Join(cfg.Hub.DataDir, "lessons"))
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(cfg.Hub.DataDir, "upload.key")
	key, err := os.ReadFile(keyPath)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := durable.WriteFile(keyPath, key, 0o600); err != nil {
			return nil, fmt.Errorf("upload key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("upload key: %w", err)
	}
	return ingest.New(ingest.Config{UploadDir: filepath.Join(cfg.Hub.DataDir, "uploads"), Store: store,
		BasePath: tusPath, Key: key, Log: log,
		Verified: func(device, lessonID string, _ ingest.File) {
			changes.Publish(events.Event{Kind: events.KindLesson, Device: device, Lesson: lessonID})
		}})
}

// newMux returns the hub's HTTP routes: /healthz, the API, the lessons'
// files, the tus endpoint, and the web page at /.
func newMux(a http.Handler, tus http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			OK      bool   `json:"ok"`
			Version string `json:"version"`
		}{true, version})
	})
	mux.Handle("/api/", a)
	mux.Handle("/lessons/", a)
	mux.Handle("/live/", a) // WHEP
	mux.Handle(tusPath, tus)
	page := web.Handler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /static/", page)
	return mux
}

// liveICE is the hub's [live] ICE servers as the API tells them to
// viewers, with the shared secrets of TURN servers read from their files.
func liveICE(lc config.HubLiveSection) (api.LiveICE, error) {
	ice := api.LiveICE{Policy: lc.ICETransportPolicy, CredentialTTL: time.Duration(lc.TURNCredentialHours) * time.Hour}
	for i, s := range lc.ICEServers {
		srv := api.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential}
		if s.AuthSecretFile != "" {
			secret, err := readSecret(fmt.Sprintf("live.ice_servers[%d].auth_secret_file", i), s.AuthSecretFile)
			if err != nil {
				return api.LiveICE{}, err
			}
			srv.AuthSecret = secret
		}
		ice.Servers = append(ice.Servers, srv)
	}
	return ice, nil
}
