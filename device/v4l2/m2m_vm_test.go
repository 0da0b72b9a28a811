//go:build linux

package v4l2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestM2MOnVicodec runs the memory-to-memory encoder code against a kernel
// driver: it boots the hwsim VM (scripts/hwsim/) with the kernel's vicodec
// codec (built once by scripts/hwsim/build-vicodec.sh) and runs
// internal/m2mcheck inside, with the multi-planar API (as bcm2835-codec
// speaks it) and then the single-planar one: finding the encoder, format
// and size negotiation, buffers, 12 frames each from YU12 and NV12 with
// their sequence numbers and GOP key frames, a keyframe request the driver
// lacks, drain, and ErrDeviceLost after the driver is unbound. Set
// CLASSCAP_HWSIM=0 to skip it.
func TestM2MOnVicodec(t *testing.T) {
	if os.Getenv("CLASSCAP_HWSIM") == "0" {
		t.Skip("CLASSCAP_HWSIM=0")
	}
	if testing.Short() {
		t.Skip("-short: no VM")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the VM and its check program are amd64; nothing to learn from an emulated test binary")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	hwsim := filepath.Join(root, "scripts", "hwsim")
	out, err := exec.Command(filepath.Join(hwsim, "build-vicodec.sh")).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("scripts/hwsim/build-vicodec.sh: %v\n%s", err, stderr)
	}
	mods := strings.TrimSpace(string(out))

	bin := filepath.Join(t.TempDir(), "m2mcheck")
	build := exec.Command("go", "build", "-o", bin, "./internal/m2mcheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build m2mcheck: %v\n%s", err, out)
	}
	log := filepath.Join(t.TempDir(), "console.log")
	script := "insmod /lib/v4l2-mem2mem.ko && insmod /lib/vicodec.ko multiplanar=1 && m2mcheck -vanish && " +
		"rmmod vicodec && insmod /lib/vicodec.ko multiplanar=0 && m2mcheck -mplane=false"
	vm := exec.Command(filepath.Join(hwsim, "run-vm.sh"), "-q", "-G", "-l", log, "-t", "100",
		"-m", "videobuf2-vmalloc,videobuf2-v4l2", "-b", bin,
		"-f", filepath.Join(mods, "v4l2-mem2mem.ko")+":/lib/v4l2-mem2mem.ko",
		"-f", filepath.Join(mods, "vicodec.ko")+":/lib/vicodec.ko", "--", script)
	var stderr bytes.Buffer
	vm.Stderr = &stderr
	start := time.Now()
	err = vm.Run()
	console, _ := os.ReadFile(log)
	if err != nil {
		t.Fatalf("run-vm.sh: %v\n%s\nconsole:\n%s", err, stderr.Bytes(), console)
	}
	if n := strings.Count(string(console), "m2mcheck: ok"); n != 2 {
		t.Fatalf("%d of 2 m2mcheck runs reported ok\nconsole:\n%s", n, console)
	}
	for _, line := range strings.Split(string(console), "\n") {
		if strings.HasPrefix(line, "m2mcheck:") {
			t.Log(strings.TrimSpace(line))
		}
	}
	t.Logf("VM run took %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
}
