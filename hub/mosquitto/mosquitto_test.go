package mosquitto

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

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/hub/acl/acltest"
	"github.com/classcap/classcap/hub/registry"
)

// needMosquitto returns the path of the mosquitto binary, skipping the test
// when it is missing outside CI (CI=true fails instead).
func needMosquitto(t *testing.T, name string) string {
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

// StartMosquitto runs mosquitto on a free loopback port with the password
// and ACL files in dir and returns its URL.
func startMosquitto(t *testing.T, dir string) string {
	t.Helper()
	bin := needMosquitto(t, "mosquitto")
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

func TestMosquittoWithGeneratedFilesIsolatesDevices(t *testing.T) {
	dir := t.TempDir()
	reg, err := registry.Open(filepath.Join(dir, "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	pwA, err := reg.AddDevice("room-101")
	if err != nil {
		t.Fatal(err)
	}
	pwB, err := reg.AddDevice("room-102")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := reg.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var users []User
	for _, d := range ds {
		users = append(users, User{Name: d.ID, Hash: d.MosquittoHash})
	}
	hubPw := registry.NewSecret(16)
	hubHash, err := registry.MosquittoHash(hubPw, registry.MosquittoIterations)
	if err != nil {
		t.Fatal(err)
	}
	files := filepath.Join(dir, "mosquitto")
	if err := Write(files, acl.HubUser, hubHash, users); err != nil {
		t.Fatal(err)
	}
	url := startMosquitto(t, files)
	acltest.CheckIsolation(t, url, acltest.Login{User: acl.HubUser, Password: hubPw},
		acltest.Login{User: "room-101", Password: pwA}, acltest.Login{User: "room-102", Password: pwB})
}

// The registry's hashes and mosquitto_passwd's agree both ways.
func TestHashMatchesMosquittoPasswd(t *testing.T) {
	bin := needMosquitto(t, "mosquitto_passwd")
	path := filepath.Join(t.TempDir(), "pw")
	if out, err := exec.Command(bin, "-c", "-b", path, "alice", "s3cret:with$odd chars").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, hash, _ := strings.Cut(strings.TrimSpace(string(data)), ":")
	for _, tt := range []struct {
		pw   string
		want bool
	}{{"s3cret:with$odd chars", true}, {"s3cret", false}} {
		ok, err := registry.CheckMosquittoHash(hash, tt.pw)
		if err != nil || ok != tt.want {
			t.Errorf("CheckMosquittoHash(mosquitto_passwd's %q, %q) = %v, %v; want %v", hash, tt.pw, ok, err, tt.want)
		}
	}
}

func TestPasswordFileRefusesBadNames(t *testing.T) {
	h, err := registry.MosquittoHash("x", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a:b", "a\nb"} {
		if _, err := PasswordFile([]User{{Name: name, Hash: h}}); err == nil {
			t.Errorf("PasswordFile accepted user %q", name)
		}
	}
	if _, err := PasswordFile([]User{{Name: "a", Hash: h}, {Name: "a", Hash: h}}); err == nil {
		t.Error("PasswordFile accepted a user twice")
	}
	if _, err := PasswordFile([]User{{Name: "a", Hash: "$6$bcrypt"}}); err == nil {
		t.Error("PasswordFile accepted a hash not in $7$ format")
	}
}
