// Command classcap-hub is the district side of classcap: it runs the MQTT
// broker the boxes connect to (or joins an external one), keeps the device
// registry, and serves the HTTP API with which coaches start and stop
// recordings remotely. This file parses the command line; hub.go wires the
// components; verbs.go holds the administration verbs.
//
// Usage:
//
//	classcap-hub -config FILE                                    run until SIGINT or SIGTERM
//	classcap-hub -config FILE -check                             validate FILE and exit
//	classcap-hub -config FILE token create -role R -name NAME    print a new API token
//	classcap-hub -config FILE device add ID                      register a box, print its MQTT password
//	classcap-hub -config FILE mosquitto-acl -dir DIR             write DIR/passwords and DIR/acl for mosquitto
//	classcap-hub -version                                        print the version
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
	"syscall"

	"github.com/classcap/classcap/provisioning/config"
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
		fmt.Fprintf(fs.Output(), "usage: classcap-hub [-config FILE] [-check | -version | VERB ...]\n%s", verbUsage)
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
		if *check {
			return &usageError{msg: "-check takes no verb"}
		}
		verb, err := parseVerb(rest)
		if err != nil {
			return err
		}
		cfg, err := config.LoadHub(*configPath)
		if err != nil {
			return err
		}
		return verb(ctx, cfg, stdout)
	}
	cfg, err := config.LoadHub(*configPath)
	if *check {
		if err != nil {
			return err
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		if _, err := liveICE(cfg.Live); err != nil { // the TURN secrets can be read
			return err
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
