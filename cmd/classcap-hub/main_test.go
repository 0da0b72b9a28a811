package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// watchBuffer collects output and lets a test wait until a pattern shows up.
type watchBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{changed: make(chan struct{})} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return n, err
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor returns the first submatch of re once the output matches it.
func (w *watchBuffer) waitFor(t *testing.T, re *regexp.Regexp, deadline time.Duration) string {
	t.Helper()
	timeout := time.After(deadline)
	for {
		w.mu.Lock()
		m := re.FindStringSubmatch(w.buf.String())
		changed := w.changed
		w.mu.Unlock()
		if m != nil {
			return m[1]
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("output never matched %s:\n%s", re, w.String())
		}
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeHealthz(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "hub-data")
	path := writeConfig(t, `
[hub]
data_dir = "`+dataDir+`"
http_listen = "127.0.0.1:0"
[broker]
listen = "127.0.0.1:0"
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := newWatchBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", path}, io.Discard, stderr) }()

	addr := stderr.waitFor(t, regexp.MustCompile(`msg="serving HTTP" addr=(\S+)`), 10*time.Second)
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		t.Fatalf("data_dir not created: %v", err)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /healthz: %s %q: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	var health struct {
		OK      *bool   `json:"ok"`
		Version *string `json:"version"`
	}
	if err := json.Unmarshal(body, &health); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if health.OK == nil || !*health.OK || health.Version == nil || *health.Version != version {
		t.Fatalf("healthz = %s, want ok true and version %q", body, version)
	}

	resp, err = client.Post("http://"+addr+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz: %s, want 405", resp.Status)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := client.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestListenFailureIsReported(t *testing.T) {
	path := writeConfig(t, `
[hub]
data_dir = "`+t.TempDir()+`"
http_listen = "192.0.2.1:1"
`)
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"-config", path}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "listen 192.0.2.1:1") {
		t.Fatalf("got %v, want a listen error", err)
	}
}

func TestMainExitCodes(t *testing.T) {
	never := filepath.Join(t.TempDir(), "never")
	good := writeConfig(t, "[hub]\ndata_dir = \""+never+"\"\nfuture_key = 1\n")
	bad := writeConfig(t, `
[hub]
http_listen = "localhost"
log_level = "chatty"
[broker]
url = "http://x"
`)
	badLive := writeConfig(t, `
[hub]
data_dir = "`+never+`"
[live]
ice_transport_policy = "relay"
[[live.ice_servers]]
urls = ["http://turn.example.net"]
[[live.ice_servers]]
urls = ["turn:turn.example.net?transport=udp"]
username = "classcap"
`)
	noSecret := writeConfig(t, `
[hub]
data_dir = "`+never+`"
[[live.ice_servers]]
urls = ["turn:turn.example.net?transport=udp"]
auth_secret_file = "`+filepath.Join(never, "turn-secret")+`"
`)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"check unreadable TURN secret", []string{"-config", noSecret, "-check"}, 1, nil,
			[]string{"read live.ice_servers[0].auth_secret_file", "turn-secret", "no such file"}},
		{"check ok", []string{"-config", good, "-check"}, 0,
			[]string{"warning: unknown key hub.future_key\n", "config ok\n"}, nil},
		{"check bad lists every field", []string{"-config", bad, "-check"}, 1, nil,
			[]string{bad, "4 problems", "broker.password_file: is required", `hub.http_listen: "localhost" is not host:port`,
				`hub.log_level: "chatty" is not one of`, `broker.url: "http://x": scheme "http"`}},
		{"check bad live ICE servers", []string{"-config", badLive, "-check"}, 1, nil,
			[]string{badLive, "2 problems", `live.ice_servers[0].urls: "http://turn.example.net": scheme "http" is not one of stun, stuns, turn, turns`,
				"live.ice_servers[1].credential: is required"}},
		{"check missing file", []string{"-config", filepath.Join(t.TempDir(), "none.toml"), "-check"}, 1, nil,
			[]string{"none.toml", "no such file"}},
		{"token bad role", []string{"-config", good, "token", "create", "-role", "teacher", "-name", "x"}, 2, nil,
			[]string{`-role "teacher": want coach or admin`}},
		{"token no name", []string{"-config", good, "token", "create", "-role", "coach"}, 2, nil,
			[]string{`-name is required`}},
		{"device bad id", []string{"-config", good, "device", "add", "room/1"}, 2, nil,
			[]string{`device id "room/1"`}},
		{"device reserved id", []string{"-config", good, "device", "add", "classcap-hub"}, 2, nil,
			[]string{`reserved for the hub`}},
		{"mosquitto-acl no dir", []string{"-config", good, "mosquitto-acl"}, 2, nil,
			[]string{`want -dir DIR`}},
		{"unknown verb", []string{"-config", good, "frobnicate"}, 2, nil,
			[]string{`unknown verb "frobnicate"`}},
		{"unknown flag", []string{"-bogus"}, 2, nil, []string{"flag provided but not defined: -bogus"}},
		{"version", []string{"-version"}, 0, []string{version + "\n"}, nil},
		{"help", []string{"-h"}, 0, nil, []string{"usage: classcap-hub"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := realMain(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if want := strings.Join(tt.stdout, ""); len(tt.stdout) > 0 && stdout.String() != want {
				t.Errorf("stdout = %q, want %q", stdout.String(), want)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
	if _, err := os.Stat(never); err == nil {
		t.Error("-check or a refused verb created the data directory")
	}
}
