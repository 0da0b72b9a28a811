package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/hub/api"
	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/uplink/wire"
)

// TestHubConfigurationEndToEnd: district IT sets a group's configuration
// with classcap-hub config set; a box enrolled in the group (bin/classcapd,
// simulated hardware, mutual TLS to the hub's embedded broker) applies it,
// reports the version in its state, which the hub's API shows
// (classcapctl devices -json), and records its next button lesson with the
// group's default visibility. A set that changes the encoder while a lesson
// records waits, reported pending, and applies once the lesson stops; a set
// that does not fit the box's own file is refused with the field named and
// the previous version stays; a restart keeps the applied version.
func TestHubConfigurationEndToEnd(t *testing.T) {
	h := newHub(t)
	tlsAddr, enrollAddr := freePort(t), freePort(t)
	_, tlsPort, _ := strings.Cut(tlsAddr, ":")
	editConfig(t, h.cfg, "[broker]\n", fmt.Sprintf("[broker]\ntls_listen = %q\n", tlsAddr),
		fmt.Sprintf("[enroll]\nlisten = %q\nnames = [\"localhost\"]\nbroker_url = \"ssl://localhost:%s\"\n", enrollAddr, tlsPort))
	h.start()
	coach := h.verb("token", "create", "-role", "coach", "-name", "it")
	_, ctl := binaries(t)

	// A box of school-12 enrolls with the group's claim and, restarted,
	// connects with its certificate.
	claimText := h.verb("claim", "create", "-group", "school-12", "-uses", "1")
	claimPath := filepath.Join(t.TempDir(), "classcap-claim")
	if err := os.WriteFile(claimPath, []byte(claimText+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBox(t, fmt.Sprintf("[enroll]\nclaim_file = %q\n", claimPath))
	b.start()
	var id *enroll.Identity
	b.waitFor("enrollment", 60*time.Second, func() bool {
		var err error
		id, err = enroll.LoadIdentity(filepath.Join(b.dir, "data", "identity"))
		return err == nil
	})
	b.signal(syscall.SIGTERM)
	b.start()
	dev := id.DeviceID

	// devices -json through the hub's API.
	hubConfig := func() *wire.ConfigStatus {
		out, err := exec.Command(ctl, "-hub", "http://"+h.http, "-token", coach, "devices", "-json").Output()
		if err != nil {
			t.Fatalf("classcapctl devices -json: %v", err)
		}
		var ds []api.DeviceSummary
		if err := json.Unmarshal(out, &ds); err != nil {
			t.Fatalf("devices -json: %v\n%s", err, out)
		}
		for _, d := range ds {
			if d.ID == dev && d.Online {
				return d.Config
			}
		}
		return nil
	}
	b.waitFor("the box online at the hub with its configuration report", 60*time.Second, func() bool {
		return hubConfig() != nil
	})
	if c := hubConfig(); c.Applied != 0 || c.Pending != 0 || c.Rejected != 0 {
		t.Fatalf("before any configuration: %+v", c)
	}

	set := func(toml string) int64 {
		t.Helper()
		f := filepath.Join(t.TempDir(), "group.toml")
		if err := os.WriteFile(f, []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		out := h.verb("config", "set", "-group", "school-12", f)
		m := regexp.MustCompile(`configuration version (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("config set said %q", out)
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	buttonLesson := func() string {
		t.Helper()
		b.ctl(false, "sim", "press")
		b.waitFor("a lesson started by the button", 20*time.Second, func() bool { return b.status().Recorder.Lesson != "" })
		return b.status().Recorder.Lesson
	}
	stop := func() {
		t.Helper()
		b.ctl(false, "sim", "press")
		b.waitFor("idle", 20*time.Second, func() bool { return b.status().Recorder.State == "idle" })
	}

	// Version v1: applied; the next button lesson is a library lesson.
	v1 := set("[recording]\nvisibility = \"library\"\n[uplink]\nupload_rate_kbps = 800\n")
	b.waitFor(fmt.Sprintf("version %d applied at the hub", v1), 60*time.Second, func() bool {
		c := hubConfig()
		return c != nil && c.Applied == v1
	})
	l1 := buttonLesson()
	if v := b.status().Recorder.Visibility; v != "library" {
		t.Errorf("button lesson under version %d: visibility %q, want the group's library", v1, v)
	}

	// Version v2 while recording: it changes the video and audio
	// bitrates and keeps the microphones' raw audio, so it waits for the
	// lesson to end.
	v2 := set("[recording]\nvisibility = \"coaching\"\n[video]\nbitrate_kbps = 1200\n[audio]\nbitrate_kbps = 48\nkeep_raw = true\n")
	b.waitFor(fmt.Sprintf("version %d pending at the hub", v2), 60*time.Second, func() bool {
		c := hubConfig()
		return c != nil && c.Pending == v2 && c.Applied == v1
	})
	if s := b.status(); s.Recorder.Lesson != l1 || s.Recorder.Visibility != "library" {
		t.Fatalf("the lesson changed under a pending configuration: %+v", s.Recorder)
	}
	b.waitFor("2 s recorded", 30*time.Second, func() bool { return b.status().Recorder.Recorded >= 2 })
	stop()
	b.waitFor(fmt.Sprintf("version %d applied after the lesson", v2), 60*time.Second, func() bool {
		c := hubConfig()
		return c != nil && c.Applied == v2 && c.Pending == 0
	})
	if m := b.meta(l1); m.Visibility != "library" {
		t.Errorf("lesson %s: visibility %q", l1, m.Visibility)
	}
	b.waitFor("the encoders restarted with the new bitrates", 20*time.Second, func() bool {
		l := b.logText()
		return strings.Contains(l, "encoder settings changed; reopening at the next picture") &&
			strings.Contains(l, "audio restarted with new settings")
	})
	if m := b.meta(l1); m.Audio.BitrateBps != 32000 {
		t.Errorf("lesson %s recorded before version %d: audio %d bit/s, want 32000", l1, v2, m.Audio.BitrateBps)
	}
	l2 := buttonLesson()
	if v := b.status().Recorder.Visibility; v != "coaching" {
		t.Errorf("button lesson under version %d: visibility %q, want coaching", v2, v)
	}
	b.waitFor("2 s recorded", 30*time.Second, func() bool { return b.status().Recorder.Recorded >= 2 })
	stop()
	if m := b.meta(l2); m.Audio.BitrateBps != 48000 || m.Audio.Channels != 1 {
		t.Errorf("lesson %s under version %d: audio %+v, want 48000 bit/s", l2, v2, m.Audio)
	}
	// keep_raw took effect without a restart: raw audio beside the lesson
	// recorded under v2, none beside the one before.
	if m := b.meta(l1); len(m.Raw) != 0 {
		t.Errorf("lesson %s recorded before version %d has raw audio: %+v", l1, v2, m.Raw)
	}
	if m := b.meta(l2); len(m.Raw) == 0 {
		t.Errorf("lesson %s under version %d (keep_raw) has no raw audio", l2, v2)
	} else if _, err := os.Stat(filepath.Join(b.lessonDir(l2), m.Raw[0].Name)); err != nil {
		t.Errorf("lesson %s: raw audio %s: %v", l2, m.Raw[0].Name, err)
	}
	if strings.Contains(b.logText(), "audio.keep_raw") {
		t.Errorf("the daemon still says audio.keep_raw waits for a restart")
	}
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		mediatest.DecodeClean(t, filepath.Join(b.lessonDir(l2), "index.m3u8"))
	}

	// Version v3 fits the defaults the hub checks against, but not this
	// box, whose segments are 2 s: refused, naming the field; v2 stays.
	v3 := set("[video]\nkeyframe_seconds = 3\n")
	b.waitFor(fmt.Sprintf("version %d refused at the hub", v3), 60*time.Second, func() bool {
		c := hubConfig()
		return c != nil && c.Rejected == v3
	})
	if c := hubConfig(); c.Applied != v2 || c.Field != "video.keyframe_seconds" || !strings.Contains(c.Error, "segment_seconds") {
		t.Errorf("after the refused version: %+v", c)
	}
	if out, err := exec.Command(ctl, "-hub", "http://"+h.http, "-token", coach, "devices").Output(); err != nil ||
		!strings.Contains(string(out), fmt.Sprintf("v%d (v%d refused: video.keyframe_seconds:", v2, v3)) {
		t.Errorf("devices: %v\n%s", err, out)
	}

	// A restart keeps version v2.
	b.signal(syscall.SIGTERM)
	b.start()
	if c := b.status().Config; c == nil || c.Applied != v2 {
		t.Fatalf("after a restart, status config %+v; want version %d applied", c, v2)
	}
	if out := b.ctl(false, "status"); !strings.Contains(out, fmt.Sprintf("config     v%d", v2)) {
		t.Errorf("classcapctl status does not show version %d:\n%s", v2, out)
	}
	buttonLesson()
	if v := b.status().Recorder.Visibility; v != "coaching" {
		t.Errorf("button lesson after a restart: visibility %q, want coaching", v)
	}
	stop()
	b.waitFor("the box back online at the hub, still on version v2", 60*time.Second, func() bool {
		c := hubConfig()
		return c != nil && c.Applied == v2 && c.Rejected == v3
	})
	b.signal(syscall.SIGTERM)
}
