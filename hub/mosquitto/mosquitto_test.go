package mosquitto

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/acl"
	"github.com/classcap/classcap/hub/acl/acltest"
	"github.com/classcap/classcap/hub/mosquitto/mosquittotest"
	"github.com/classcap/classcap/hub/registry"
)

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
	url := mosquittotest.Start(t, files)
	acltest.CheckIsolation(t, url, acltest.Login{User: acl.HubUser, Password: hubPw},
		acltest.Login{User: "room-101", Password: pwA}, acltest.Login{User: "room-102", Password: pwB})
}

// The registry's hashes and mosquitto_passwd's agree both ways.
func TestHashMatchesMosquittoPasswd(t *testing.T) {
	bin := mosquittotest.Need(t, "mosquitto_passwd")
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
