// Command classcap-hub is the district side of classcap: it will coordinate
// boxes over MQTT, ingest their uploads and serve lessons. This version
// loads and checks its configuration, prepares its data directory and serves
// the HTTP health endpoint.
//
// Usage:
//
//	classcap-hub -config FILE          run until SIGINT or SIGTERM
//	classcap-hub -config FILE -check   validate FILE and exit
//	classcap-hub -version              print the version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/classcap/classcap/provisioning/config"
	"github.com/coreos/go-systemd/v22/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/classcap/classcap-hub.toml"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// realMain runs the hub, prints a failure to stderr and returns the exit
// status: 0 on success, 2 for a command-line mistake, 1 otherwise.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdout, stderr)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "classcap-hub: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run parses args and runs the hub until ctx is cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("classcap-hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "configuration `file` (TOML)")
	check := fs.Bool("check", false, "validate the configuration, print every problem and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: classcap-hub [-config FILE] [-check | -version]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{msg: err.Error()}
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return nil
	}
	if rest := fs.Args(); len(rest) > 0 {
		switch rest[0] {
		case "token", "device":
			return &usageError{msg: fmt.Sprintf("%q is not available in this version (%s)", rest[0], version)}
		default:
			return &usageError{msg: fmt.Sprintf("unknown command %q", rest[0])}
		}
	}

	cfg, err := config.LoadHub(*configPath)
	if *check {
		if err != nil {
			return err
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		fmt.Fprintln(stdout, "config ok")
		return nil
	}
	if err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel()}))
	for _, w := range cfg.Warnings {
		log.Warn("config", "file", *configPath, "warning", w)
	}
	return serve(ctx, cfg, log)
}

// serve prepares the data directory and serves HTTP until ctx is cancelled.
func serve(ctx context.Context, cfg *config.Hub, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.Hub.DataDir, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if cfg.Broker.Listen != "" {
		log.Warn("the embedded MQTT broker is not implemented in this version; broker.listen is not served",
			"listen", cfg.Broker.Listen)
	} else {
		log.Warn("connecting to an external MQTT broker is not implemented in this version", "url", cfg.Broker.URL)
	}

	ln, err := net.Listen("tcp", cfg.Hub.HTTPListen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Hub.HTTPListen, err)
	}
	srv := &http.Server{
		Handler:           newMux(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving HTTP", "addr", ln.Addr().String(), "version", version, "data_dir", cfg.Hub.DataDir)
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("sd_notify", "err", err)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// newMux returns the hub's HTTP routes.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			OK      bool   `json:"ok"`
			Version string `json:"version"`
		}{true, version})
	})
	return mux
}
