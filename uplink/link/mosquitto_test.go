package link

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

// mosquitto is a real broker (Debian's mosquitto) run by a test on a free
// loopback port, with persistence in the test's directory so that queued
// messages of persistent sessions survive a restart.
type mosquitto struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
	exit chan error
	bin  string
}

func startMosquitto(t *testing.T) *mosquitto {
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
	m := &mosquitto{t: t, dir: t.TempDir(), port: port}
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
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) URL() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }

// start runs the broker and waits until it accepts connections.
func (m *mosquitto) start() {
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

// stop ends the broker cleanly (it saves its persistence file).
func (m *mosquitto) stop() {
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

// restart stops and starts the broker on the same port and files.
func (m *mosquitto) restart() {
	m.t.Helper()
	m.stop()
	m.start()
}
