package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/provisioning/enrollapi"
)

// runVerb runs one verb of the hub's command line and returns its stdout.
func runVerb(t *testing.T, cfgPath string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"-config", cfgPath}, args...), &out, &errOut)
	return out.String(), err
}

// TestEnrollThroughTheHub runs the hub with its enrollment endpoint, makes
// a claim with the verb IT uses, and enrolls boxes with it: the first gets
// a certificate and is registered, the second finds the claim used up, and a
// revoked box cannot renew.
func TestEnrollThroughTheHub(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "hub-data")
	cfgPath := writeConfig(t, `
[hub]
data_dir = "`+dataDir+`"
http_listen = "127.0.0.1:0"
[broker]
listen = "127.0.0.1:0"
[enroll]
listen = "127.0.0.1:0"
names = ["localhost"]
cert_days = 10
`)
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newWatchBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", cfgPath}, io.Discard, stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hub: %v", err)
		}
	}()
	addr := stderr.waitFor(t, regexp.MustCompile(`msg="enrollment endpoint" component=enroll addr=(\S+)`), 10*time.Second)
	_, port, _ := strings.Cut(addr, ":")

	// Verbs are checked before the configuration is read.
	if _, err := runVerb(t, cfgPath, "claim", "create", "-group", "school 12"); err == nil {
		t.Error("claim create accepted a group with a space")
	}
	if _, err := runVerb(t, cfgPath, "claim", "create", "-group", "g", "-expires", "0d"); err == nil {
		t.Error("claim create accepted -expires 0d")
	}

	out, err := runVerb(t, cfgPath, "claim", "create", "-group", "school-12", "-uses", "1", "-expires", "30d")
	if err != nil {
		t.Fatal(err)
	}
	c, err := enroll.ParseClaim([]byte(out))
	if err != nil {
		t.Fatalf("claim create printed an unreadable claim file: %v\n%s", err, out)
	}
	if !strings.Contains(out, "group school-12, 1 uses") || !strings.HasPrefix(c.Token, "ccclaim_") {
		t.Errorf("claim file:\n%s", out)
	}
	// The configured port is 0 (any); boxes in production get enroll.url.
	c.Hub = "https://localhost:" + port
	boot := t.TempDir()
	claimPath := filepath.Join(boot, "classcap-claim")
	if err := os.WriteFile(claimPath, c.Format(""), 0o644); err != nil {
		t.Fatal(err)
	}

	quiet := slog.New(slog.DiscardHandler)
	box, err := enroll.New(enroll.Config{Dir: filepath.Join(t.TempDir(), "id"), ClaimPath: claimPath, Hostname: "pi"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	id, err := box.Enroll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.DeviceID, "school-12-") {
		t.Errorf("device id %q", id.DeviceID)
	}
	// Listed with serial and expiry.
	out, err = runVerb(t, cfgPath, "device", "certs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, id.DeviceID) || !strings.Contains(out, id.Serial) || !strings.Contains(out, id.NotAfter.Format(time.RFC3339)) {
		t.Errorf("device certs does not list %s %s %s:\n%s", id.DeviceID, id.Serial, id.NotAfter.Format(time.RFC3339), out)
	}
	if d := time.Until(id.NotAfter); d < 9*24*time.Hour || d > 10*24*time.Hour {
		t.Errorf("certificate valid %v, want cert_days 10", d)
	}
	out, _ = runVerb(t, cfgPath, "claim", "list")
	if !strings.Contains(out, "0/1") {
		t.Errorf("claim list after one use:\n%s", out)
	}

	// A second box: the claim is used up, and it says so.
	box2, _ := enroll.New(enroll.Config{Dir: filepath.Join(t.TempDir(), "id"), ClaimPath: claimPath}, quiet)
	_, err = box2.Enroll(ctx)
	var rf *enroll.Refusal
	if !errors.As(err, &rf) || rf.Reason != enrollapi.ClaimExhausted {
		t.Errorf("second box: %v", err)
	}

	// Revoked: renewal refused.
	if out, err := runVerb(t, cfgPath, "device", "revoke", id.DeviceID); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("device revoke: %q %v", out, err)
	}
	if _, err := box.Renew(ctx); !errors.As(err, &rf) || rf.Reason != enrollapi.DeviceRevoked {
		t.Errorf("renew after revoke: %v", err)
	}
	if _, err := runVerb(t, cfgPath, "device", "revoke", "nobody"); err == nil {
		t.Error("revoking an unknown device succeeded")
	}
}
