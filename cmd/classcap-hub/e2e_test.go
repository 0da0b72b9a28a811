package main

// End to end: the hub (in this process, embedded broker) and the real
// classcapd and classcapctl binaries, simulated hardware; a coach starts and
// stops a recording through the hub, ffmpeg and ffprobe judge the lesson.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/mediatest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// boxBinaries builds classcapd and classcapctl once per test run.
func boxBinaries(t *testing.T) (daemon, ctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "classcap-hub-e2e-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"./cmd/classcapd", "./cmd/classcapctl"} {
			cmd := exec.Command("go", "build", "-o", binDir+"/", pkg)
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "classcapd"), filepath.Join(binDir, "classcapctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRemoteRecordingEndToEnd(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := runSimBox(t, h, "room-e2e", `
[hardware.sim]
width = 320
height = 240
fps = 15.0
mic_channels = 2
[recording]
segment_seconds = 2.0
min_free_mb = 10
veto_seconds = 1
`, "")
	ctl, data := box.ctl, box.data

	remote := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ctl, append([]string{"-hub", h.http, "-token", coach}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("classcapctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	device := func() map[string]any {
		t.Helper()
		_, m := h.call(t, "GET", "/api/v1/devices/room-e2e", coach, "")
		return m
	}
	waitUntil(t, "the box is online and idle at the hub", func() bool {
		m := device()
		return m["online"] == true && m["recorder"] == "idle"
	})
	if out := remote("devices"); !regexp.MustCompile(`room-e2e\s+yes\s+idle`).MatchString(out) {
		t.Fatalf("devices:\n%s", out)
	}

	// Start: the answer comes once the box records (after its 1 s veto window).
	out := remote("record", "start", "-device", "room-e2e", "-visibility", "coaching")
	m := regexp.MustCompile(`room-e2e is recording lesson (\S+) \(the teacher's window ([0-9.]+) s`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("record start answered:\n%s", out)
	}
	lessonID := m[1]
	if m[2] == "0.0" {
		t.Errorf("the box began without its veto window: %s", out)
	}
	waitUntil(t, "the hub sees the box recording two segments", func() bool {
		d := device()
		st, _ := d["state"].(map[string]any)
		rec, _ := st["recorder"].(map[string]any)
		segs, _ := rec["segments"].(float64)
		return d["recorder"] == "recording" && d["lesson"] == lessonID && segs >= 2
	})
	// A second start is refused by the box while it records.
	status, resp := h.call(t, "POST", "/api/v1/devices/room-e2e/record/start", coach, "")
	if status != 409 || resp["from_box"] != true {
		t.Fatalf("start while recording: %d %v", status, resp)
	}

	out = remote("record", "stop", "-device", "room-e2e")
	if !strings.Contains(out, "room-e2e stopped lesson "+lessonID) {
		t.Fatalf("record stop answered:\n%s", out)
	}
	waitUntil(t, "the hub lists the lesson as stopped", func() bool {
		return regexp.MustCompile(`room-e2e\s+` + regexp.QuoteMeta(lessonID) + `\s+stopped\s+coaching\s+`).MatchString(remote("lessons"))
	})
	if out := remote("lessons"); !strings.Contains(out, "coach:alice") {
		t.Fatalf("lessons do not say who started it:\n%s", out)
	}
	waitUntil(t, "the box is idle again", func() bool { return device()["recorder"] == "idle" })

	// The lesson on the box is playable.
	lessonDir := filepath.Join(data, "lessons", lessonID)
	pl := filepath.Join(lessonDir, "index.m3u8")
	if b, err := os.ReadFile(pl); err != nil || !strings.Contains(string(b), "#EXT-X-ENDLIST") {
		t.Fatalf("playlist %s: %v\n%s", pl, err, b)
	}
	video, audio := mediatest.Durations(t, pl)
	if video < 1.5 || audio < 1.5 {
		t.Fatalf("ffprobe: video %.2f s, audio %.2f s; want at least the two segments the box reported", video, audio)
	}
	mediatest.DecodeClean(t, pl)
	mediatest.DecodeClean(t, mediatest.Concat(t, lessonDir))
}
