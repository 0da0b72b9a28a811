// Command classcapd is the box daemon: it captures the camera and the
// microphone array, records lessons on the button, the local CLI or the hub,
// and keeps every lesson safe on disk.
//
// Usage:
//
//	classcapd -config FILE          run until SIGINT or SIGTERM
//	classcapd -config FILE -check   validate FILE, name every bad field, exit
//	classcapd -version              print the version, and the libopus linked in
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/classcap/classcap/capture/audio"
	"github.com/classcap/classcap/provisioning/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultConfig = "/etc/classcap/classcapd.toml"

func main() {
	setRuntimeDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "classcapd: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// setRuntimeDefaults runs Go code on one processor unless GOMAXPROCS says
// otherwise. The daemon's heavy work is C (libopus, openh264), which runs
// beside Go code once the scheduler hands a blocked processor on; its Go side
// is a hundred or so short wake-ups a second. With a second processor every
// hand-off between goroutines (source -> recorder) also wakes an idle thread
// that finds nothing to do: that doubled the context switches and cost the
// replayed recording about a fifth of its CPU (docs/operations.md).
func setRuntimeDefaults() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

// run parses the command line and runs the daemon until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("classcapd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", defaultConfig, "configuration `file` (TOML)")
	check := fs.Bool("check", false, "validate the configuration, print every problem and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		fmt.Fprintln(stdout, audio.OpusVersion())
		return nil
	}
	cfg, err := config.LoadBox(*configPath)
	if err != nil {
		return err
	}
	if *check {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		fmt.Fprintln(stdout, "config ok")
		return nil
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel()}))
	for _, w := range cfg.Warnings {
		log.Warn("config", "warning", w)
	}
	d, err := newDaemon(cfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
