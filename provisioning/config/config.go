// Package config reads, defaults and validates the TOML configuration of the
// box daemon (classcapd) and of the district hub (classcap-hub).
//
// Parsing starts from the defaults (DefaultBox, DefaultHub) and lays the
// file's values over them, so a file only names what it changes. Keys the
// program does not know are allowed and reported in Warnings. Every parse
// ends with Validate: a returned config is valid, and a rejected one names
// every bad field (see FieldError) so an operator fixes them all at once.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// FieldError is one bad configuration value: the dotted TOML key and why it
// is rejected.
type FieldError struct {
	Field  string // dotted TOML key, e.g. "recording.segment_seconds"
	Reason string // what is wrong, e.g. "0.5 is below the minimum 1"
}

// Error returns "field: reason".
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// FieldErrors returns every FieldError inside err (which may be joined or
// wrapped), in order. It returns nil when err holds none.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// fileError is returned by LoadBox and LoadHub when a file is read and parsed
// but its values are invalid: one line per problem, under the file's name.
type fileError struct {
	path string
	errs []error
}

func (e *fileError) Error() string {
	if len(e.errs) == 1 {
		return "config " + e.path + ": " + e.errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d problems:", e.path, len(e.errs))
	for _, err := range e.errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *fileError) Unwrap() []error { return e.errs }

// wrapFile names path in err. Validation errors keep one problem per line.
func wrapFile(path string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return &fileError{path: path, errs: j.Unwrap()}
	}
	if fe, ok := err.(*FieldError); ok {
		return &fileError{path: path, errs: []error{fe}}
	}
	return fmt.Errorf("config %s: %w", path, err)
}

// problems collects FieldErrors during validation.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (p problems) err() error { return errors.Join(p...) }

// fmtFloat prints a float the way a person wrote it: 0.5, 1, 2.5e+06.
func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func (p *problems) oneOf(field, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.add(field, "%q is not one of %s", value, strings.Join(allowed, ", "))
}

func (p *problems) intRange(field string, v, lo, hi int64) {
	switch {
	case v < lo:
		p.add(field, "%d is below the minimum %d", v, lo)
	case v > hi:
		p.add(field, "%d is above the maximum %d", v, hi)
	}
}

func (p *problems) floatRange(field string, v, lo, hi float64) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		p.add(field, "%s is not a finite number", fmtFloat(v))
	case v < lo:
		p.add(field, "%s is below the minimum %s", fmtFloat(v), fmtFloat(lo))
	case v > hi:
		p.add(field, "%s is above the maximum %s", fmtFloat(v), fmtFloat(hi))
	}
}

// required reports an empty string value.
func (p *problems) required(field, v string) bool {
	if strings.TrimSpace(v) == "" {
		p.add(field, "is required")
		return false
	}
	return true
}

// noControl reports strings carrying control characters (a pasted newline,
// a NUL), which no path, name or address may contain.
func (p *problems) noControl(field, v string) bool {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			p.add(field, "%q contains a control character", v)
			return false
		}
	}
	return true
}

// hostPort checks "host:port" with a numeric port (0 picks a free port).
func (p *problems) hostPort(field, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.add(field, "%q is not host:port", v)
		return
	}
	if strings.ContainsAny(host, " \t/") {
		p.add(field, "%q has an invalid host %q", v, host)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port != strconv.Itoa(n) {
		p.add(field, "%q has an invalid port %q (want 0..65535)", v, port)
	}
}

// brokerURL checks an MQTT broker URL such as tcp://host:1883.
func (p *problems) brokerURL(field, v string) {
	u, err := url.Parse(v)
	if err != nil {
		p.add(field, "%q is not a URL", v)
		return
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		p.add(field, "%q: scheme %q is not one of tcp, mqtt, ssl, tls, mqtts, ws, wss", v, u.Scheme)
		return
	}
	if u.Host == "" || u.Hostname() == "" {
		p.add(field, "%q has no host", v)
		return
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			p.add(field, "%q has an invalid port %q (want 1..65535)", v, port)
		}
	}
}

func (p *problems) logLevel(field, v string) {
	p.oneOf(field, v, "debug", "info", "warn", "error")
}

// parseLogLevel returns the slog level for v, or Info for an unknown value.
func parseLogLevel(v string) slog.Level {
	switch v {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// decode lays data over v (already holding defaults) and returns the keys
// the file set that v has no field for, as warnings.
func decode(data []byte, v any) (toml.MetaData, []string, error) {
	md, err := toml.Decode(string(data), v)
	if err != nil {
		return md, nil, fmt.Errorf("parse: %w", err)
	}
	var warnings []string
	reported := map[string]bool{}
	for _, k := range md.Undecoded() {
		// Report an unknown table once, not each key inside it.
		skip := false
		for i := 1; i < len(k); i++ {
			if reported[k[:i].String()] {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		reported[k.String()] = true
		warnings = append(warnings, fmt.Sprintf("unknown key %s", k.String()))
	}
	return md, warnings, nil
}
