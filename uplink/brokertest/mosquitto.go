// Package brokertest runs a real MQTT broker for tests: Debian's
// mosquitto on a free loopback port, configured from a tiny mosquitto.conf
// in the test's temporary directory, with persistence so that persistent
// sessions and their queued messages survive a restart. A test skips when
// mosquitto is missing, unless CI is set (then it fails).
package brokertest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a running mosquitto.
type Mosquitto struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
	exit chan error
	bin  string
}

// Dir is the broker's directory: mosquitto.conf, mosquitto.log and the
// persistence file.
func (m *Mosquitto) Dir() string { return m.dir }

// Start runs mosquitto for the test; it stops at the test's end. Anonymous
// clients are allowed.
func Start(t *testing.T) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto is not installed (apt-get install mosquitto); CI must run these tests")
		}
		t.Skip("mosquitto is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &Mosquitto{t: t, dir: t.TempDir(), port: port}
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 1
log_dest file %s
log_type error
log_type warning
log_type notice
`, port, m.dir, filepath.Join(m.dir, "mosquitto.log"))
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	if err := os.WriteFile(filepath.Join(m.dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.bin = bin
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// URL is tcp://127.0.0.1:<port>.
func (m *Mosquitto) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }

// Start runs the broker again after Stop and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", filepath.Join(m.dir, "mosquitto.conf"))
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.exit = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(m.cmd, m.exit)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(m.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-m.exit:
			log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			m.t.Fatalf("mosquitto exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto does not accept connections on %d: %v", m.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the broker cleanly (it saves its persistence file).
func (m *Mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exit:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.exit
	}
	m.cmd = nil
}

// Restart stops and starts the broker on the same port and files.
func (m *Mosquitto) Restart() {
	m.t.Helper()
	m.Stop()
	m.Start()
}
