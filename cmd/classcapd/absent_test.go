package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/device/led"
)

// Under profile auto, a camera and a microphone that are absent when the
// daemon starts do not stop it: it runs, shows both faults and the error
// LED in status, and keeps trying.
func TestAutoStartsWithoutDevices(t *testing.T) {
	b := newBox(t, "")
	cfg := fmt.Sprintf(`[device]
id = "room-101"
data_dir = %q
[hardware]
profile = "auto"
camera = %q
microphone = "hw:CARD=NoSuchCard,DEV=0"
button = ""
led = ""
[recording]
min_free_mb = 100
`, filepath.Join(b.dir, "data"), filepath.Join(b.dir, "video9"))
	if err := os.WriteFile(b.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	b.start()
	b.waitFor("both faults in status", 30*time.Second, func() bool {
		s := b.status()
		return s.Camera.Fault != "" && s.Microphone.Fault != "" && s.LED.Pattern == led.Error.Name
	})
	s := b.status()
	if !strings.Contains(s.Camera.Fault, "video9") || !strings.Contains(s.Microphone.Fault, "NoSuchCard") {
		t.Fatalf("faults do not name the devices: camera %q, microphone %q", s.Camera.Fault, s.Microphone.Fault)
	}
	if s.Recorder.State != "idle" || !strings.Contains(s.Recorder.Fault, "camera") {
		t.Fatalf("recorder %+v", s.Recorder)
	}
	// Still trying: the log shows more than one attempt for each.
	b.waitFor("retries", 30*time.Second, func() bool {
		log := b.logText()
		return strings.Count(log, `part=camera`) >= 2 && strings.Count(log, `part=microphone`) >= 2
	})
	b.signal(syscall.SIGTERM)
	if b.exitErr != nil {
		t.Fatalf("daemon exit: %v", b.exitErr)
	}
}
