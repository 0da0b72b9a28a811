//go:build linux

package gpio

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHWSim runs package gpio against the kernel's own GPIO code: it boots a
// throw-away QEMU VM with a Debian kernel and gpio-sim (scripts/hwsim/), and
// runs internal/gpiocheck inside: button edges (active-low, bias none and
// pull-up, kernel debounce) with kernel timestamps, one-colour and RGB LED
// levels (active-high and active-low), and a chip that vanishes. The first run downloads and builds into a cache (see
// scripts/hwsim/prepare.sh); set CLASSCAP_HWSIM=0 to skip it.
func TestHWSim(t *testing.T) {
	if os.Getenv("CLASSCAP_HWSIM") == "0" {
		t.Skip("CLASSCAP_HWSIM=0")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	hwsim := filepath.Join(root, "scripts", "hwsim")

	prep := exec.Command(filepath.Join(hwsim, "prepare.sh"))
	if out, err := prep.CombinedOutput(); err != nil {
		t.Fatalf("scripts/hwsim/prepare.sh: %v\n%s", err, out)
	}

	bin := filepath.Join(t.TempDir(), "gpiocheck")
	build := exec.Command("go", "build", "-o", bin, "./internal/gpiocheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build gpiocheck: %v\n%s", err, out)
	}

	log := filepath.Join(t.TempDir(), "console.log")
	script := strings.Join([]string{
		"gpiocheck -bias none -presses 3",
		"gpiocheck -bias pull-up -presses 2",
		"gpiocheck -bias none -debounce 5ms -presses 2",
		"gpiocheck -rgb /sys/kernel/config/gpio-sim/rgb",
		"gpiocheck -vanish /sys/kernel/config/gpio-sim/chip0/live",
	}, " && ")
	vm := exec.Command(filepath.Join(hwsim, "run-vm.sh"), "-q", "-l", log, "-m", "gpio-sim", "-t", "90",
		"-b", bin, "--", script)
	var stderr bytes.Buffer
	vm.Stderr = &stderr
	start := time.Now()
	err = vm.Run()
	console, _ := os.ReadFile(log)
	if err != nil {
		t.Fatalf("run-vm.sh: %v\n%s\nconsole:\n%s", err, stderr.Bytes(), console)
	}
	oks := strings.Count(string(console), "gpiocheck: ok")
	if oks != 5 {
		t.Fatalf("%d of 5 gpiocheck runs reported ok\nconsole:\n%s", oks, console)
	}
	t.Logf("VM run took %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
}
