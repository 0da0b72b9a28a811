package systemd

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/classcap/classcap/provisioning/config"
)

// maxExposure is the highest systemd-analyze security exposure the box
// daemon's unit may have (0 is locked down, 10 is unprotected).
const maxExposure = 2.0

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (scripts/install-deps.sh installs it): %v", name, err)
	}
	return p
}

// exposure runs systemd-analyze security offline on unit and returns the
// overall exposure it prints.
func exposure(t *testing.T, unit string) float64 {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure in systemd-analyze output:\n%s", out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("exposure %q: %v", m[1], err)
	}
	return v
}

func TestUnitSecurityExposure(t *testing.T) {
	needTool(t, "systemd-analyze")
	for _, tc := range []struct {
		unit string
		max  float64
	}{
		{"classcapd.service", maxExposure},
		{"classcap-hub.service", maxExposure},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			got := exposure(t, tc.unit)
			t.Logf("%s: exposure %.1f", tc.unit, got)
			if got > tc.max {
				out, _ := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", tc.unit).CombinedOutput()
				t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", tc.unit, got, tc.max, out)
			}
		})
	}
}

// TestUnitSecurityCheckSees makes sure the exposure check above measures the
// unit: a copy stripped of its hardening must score far worse.
func TestUnitSecurityCheckSees(t *testing.T) {
	needTool(t, "systemd-analyze")
	b, err := os.ReadFile("classcapd.service")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	hardening := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "# Hardening.") {
			hardening = true
		}
		if strings.HasPrefix(line, "[Install]") {
			hardening = false
		}
		if !hardening {
			kept = append(kept, line)
		}
	}
	stripped := filepath.Join(t.TempDir(), "classcapd.service")
	if err := os.WriteFile(stripped, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := exposure(t, stripped); got <= maxExposure+2 {
		t.Errorf("unit without its hardening section scores %.1f: the check does not see the hardening", got)
	}
}

// TestUnitVerify runs systemd-analyze verify on each unit, with ExecStart
// pointed at an executable that exists (verify checks the command), in a
// scratch directory.
func TestUnitVerify(t *testing.T) {
	needTool(t, "systemd-analyze")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"classcapd", "classcap-hub"} {
		t.Run(name, func(t *testing.T) {
			exe := filepath.Join(bin, name)
			if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(name + ".service")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("/usr/bin/"+name+" ")) {
				t.Fatalf("%s.service does not run /usr/bin/%s", name, name)
			}
			unit := filepath.Join(dir, name+".service")
			b = bytes.ReplaceAll(b, []byte("/usr/bin/"+name+" "), []byte(exe+" "))
			if err := os.WriteFile(unit, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
			}
		})
	}
}

// TestUnitNames checks the settings docs/operations.md promises.
func TestUnitNames(t *testing.T) {
	b, err := os.ReadFile("classcapd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Type=notify", "WatchdogSec=", "Restart=always", "User=classcap",
		"SupplementaryGroups=video audio gpio", "StateDirectory=classcap",
		"DeviceAllow=char-video4linux rw", "DeviceAllow=char-alsa rw", "DeviceAllow=char-gpiochip rw",
	} {
		if !bytes.Contains(b, []byte("\n"+want)) {
			t.Errorf("classcapd.service lacks %q", want)
		}
	}
}

// TestUdevRules checks the rules give each device class to the group the
// daemon runs in, in the syntax udev reads.
func TestUdevRules(t *testing.T) {
	b, err := os.ReadFile("60-classcap.rules")
	if err != nil {
		t.Fatal(err)
	}
	assign := regexp.MustCompile(`^[A-Z_]+(\{[^}]*\})?(==|!=)"[^"]*"(, [A-Z_]+(\{[^}]*\})?(==|!=|=|\+=|:=)"[^"]*")*$`)
	groups := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !assign.MatchString(line) {
			t.Errorf("line %d: %q is not a udev rule (KEY==\"v\", KEY=\"v\", ...)", i+1, line)
			continue
		}
		sub := regexp.MustCompile(`SUBSYSTEM=="([^"]+)"`).FindStringSubmatch(line)
		grp := regexp.MustCompile(`GROUP="([^"]+)"`).FindStringSubmatch(line)
		if sub == nil || grp == nil || !strings.Contains(line, `MODE="0660"`) {
			t.Errorf("line %d: %q: want SUBSYSTEM==, GROUP= and MODE=\"0660\"", i+1, line)
			continue
		}
		groups[sub[1]] = grp[1]
	}
	for sub, grp := range map[string]string{"gpio": "gpio", "video4linux": "video", "sound": "audio"} {
		if groups[sub] != grp {
			t.Errorf("subsystem %s: group %q, want %q", sub, groups[sub], grp)
		}
	}
}

// TestExampleConfigs loads the configurations the packages install: they
// must be valid and use only known keys.
func TestExampleConfigs(t *testing.T) {
	box, err := config.LoadBox("classcapd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(box.Warnings) > 0 {
		t.Errorf("classcapd.toml: %v", box.Warnings)
	}
	hub, err := config.LoadHub("classcap-hub.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(hub.Warnings) > 0 {
		t.Errorf("classcap-hub.toml: %v", hub.Warnings)
	}
}

// TestDebInstalls builds the amd64 packages with scripts/deb.sh, unpacks
// them with dpkg into a scratch root, and checks the files, their modes and
// the maintainer scripts. Small scripts stand in for the binaries (building
// the real ones costs minutes on a loaded machine; make deb builds them), so
// the test checks the packaging, not the programs.
func TestDebInstalls(t *testing.T) {
	needTool(t, "dpkg-deb")
	needTool(t, "dpkg")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"classcapd", "classcapctl", "classcap-hub"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command("../scripts/deb.sh", "amd64", bin, out, "1.2.3")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deb.sh: %v\n%s", err, b)
	}

	root := filepath.Join(dir, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	debs := []string{filepath.Join(out, "classcap_1.2.3_amd64.deb"), filepath.Join(out, "classcap-hub_1.2.3_amd64.deb")}
	for _, deb := range debs {
		info, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version", "Architecture").CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v\n%s", deb, err, info)
		}
		if !bytes.Contains(info, []byte("Version: 1.2.3\n")) || !bytes.Contains(info, []byte("Architecture: amd64\n")) {
			t.Errorf("%s: control fields:\n%s", filepath.Base(deb), info)
		}
		// Unpack (no maintainer scripts run: they would create users on
		// this machine); the postinst is checked below.
		b, err := exec.Command("dpkg", "--root="+root, "--log=/dev/null", "--force-not-root",
			"--force-script-chrootless", "--unpack", deb).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg --unpack %s: %v\n%s", deb, err, b)
		}
	}

	// Conffiles stay *.dpkg-new until configure.
	want := map[string]fs.FileMode{
		"usr/bin/classcapd":                                     0o755,
		"usr/bin/classcapctl":                                   0o755,
		"usr/bin/classcap-hub":                                  0o755,
		"usr/lib/systemd/system/classcapd.service":              0o644,
		"usr/lib/systemd/system/classcap-hub.service":           0o644,
		"usr/lib/udev/rules.d/60-classcap.rules":                0o644,
		"etc/classcap/classcapd.toml.dpkg-new":                  0o640,
		"etc/classcap/classcap-hub.toml.dpkg-new":               0o640,
		"usr/share/doc/classcap/examples/classcapd.toml":        0o644,
		"usr/share/doc/classcap-hub/examples/classcap-hub.toml": 0o644,
	}
	for p, mode := range want {
		st, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), mode)
		}
	}
	for _, p := range []string{"classcapd.service", "60-classcap.rules"} {
		installed := map[string]string{
			"classcapd.service": "usr/lib/systemd/system/classcapd.service",
			"60-classcap.rules": "usr/lib/udev/rules.d/60-classcap.rules",
		}[p]
		a, _ := os.ReadFile(p)
		b, _ := os.ReadFile(filepath.Join(root, installed))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from systemd/%s", installed, p)
		}
	}

	// The installed binaries are the ones given, and the installed
	// configuration is the one TestExampleConfigs checks.
	for _, b := range []string{"classcapd", "classcapctl", "classcap-hub"} {
		o, err := exec.Command(filepath.Join(root, "usr/bin", b)).Output()
		if err != nil || strings.TrimSpace(string(o)) != b {
			t.Errorf("installed %s: %q, %v", b, o, err)
		}
	}
	for installed, src := range map[string]string{
		"etc/classcap/classcapd.toml.dpkg-new":    "classcapd.toml",
		"etc/classcap/classcap-hub.toml.dpkg-new": "classcap-hub.toml",
	} {
		a, _ := os.ReadFile(src)
		b, _ := os.ReadFile(filepath.Join(root, installed))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from systemd/%s", installed, src)
		}
	}

	// The postinst creates the user in the device groups only, is valid sh,
	// and hands the config to the user's group.
	post, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info/classcap.postinst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"adduser --system --group", "for g in video audio gpio", "chgrp classcap /etc/classcap/classcapd.toml", "systemctl enable classcapd.service"} {
		if !bytes.Contains(post, []byte(want)) {
			t.Errorf("classcap.postinst lacks %q", want)
		}
	}
	if o, err := exec.Command("sh", "-n", filepath.Join(root, "var/lib/dpkg/info/classcap.postinst")).CombinedOutput(); err != nil {
		t.Errorf("classcap.postinst: %v\n%s", err, o)
	}
}
