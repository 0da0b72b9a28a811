// Package mosquittotest runs the Debian mosquitto binary for tests, with the
// password and ACL files the hub writes. Without mosquitto a test is skipped,
// except in CI (CI=true), where it fails.
package mosquittotest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Need returns the path of the mosquitto binary, skipping the test
// when it is missing outside CI (CI=true fails instead).
func Need(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (Debian package mosquitto; scripts/install-deps.sh)", name)
	}
	t.Skipf("%s is not installed (Debian package mosquitto)", name)
	return ""
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs mosquitto on a free loopback port with the password and ACL
// files in dir (as package mosquitto writes them), anonymous logins refused,
// and returns its URL. The test's cleanup stops it.
func Start(t *testing.T, dir string) string {
	t.Helper()
	bin := Need(t, "mosquitto")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\n"+
			"persistence false\nuse_username_as_clientid false\nlog_dest stderr\n",
			port, filepath.Join(dir, "passwords"), filepath.Join(dir, "acl"))
		if u, err := user.Current(); err == nil && u.Uid == "0" {
			conf += "user root\n" // as root, mosquitto would drop to the user mosquitto, who cannot read dir
		}
		confPath := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cmd := exec.Command(bin, "-c", confPath)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Cleanup(func() {
					_ = cmd.Process.Kill()
					<-exited
					if t.Failed() {
						t.Logf("mosquitto log:\n%s", logs.String())
					}
				})
				return "tcp://" + addr
			}
			select {
			case err := <-exited:
				lastErr = fmt.Errorf("mosquitto exited (%v): %s", err, logs.String())
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
		if lastErr == nil {
			_ = cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("mosquitto did not listen on %s within 15 s: %s", addr, logs.String())
		}
		if !strings.Contains(lastErr.Error(), "Address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return ""
}
