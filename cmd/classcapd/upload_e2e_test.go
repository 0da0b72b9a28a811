package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/mediatest"
)

var (
	hubOnce sync.Once
	hubBin  string
	hubErr  error
)

// hubBinary builds classcap-hub once per test run.
func hubBinary(t *testing.T) string {
	t.Helper()
	binaries(t) // makes binDir
	hubOnce.Do(func() {
		hubBin = filepath.Join(binDir, "classcap-hub")
		out, err := exec.Command("go", "build", "-o", hubBin, "github.com/classcap/classcap/cmd/classcap-hub").CombinedOutput()
		if err != nil {
			hubErr = fmt.Errorf("go build classcap-hub: %v\n%s", err, out)
		}
	})
	if hubErr != nil {
		t.Fatal(hubErr)
	}
	return hubBin
}

// freePort returns a loopback address free a moment ago: the hub keeps
// its addresses across a restart, as a real one does.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// hubProc is a classcap-hub process with its embedded broker.
type hubProc struct {
	t       *testing.T
	bin     string
	cfg     string
	dataDir string
	http    string
	broker  string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	logMu   sync.Mutex
	exited  chan struct{}
}

func newHub(t *testing.T) *hubProc {
	h := &hubProc{t: t, bin: hubBinary(t), dataDir: filepath.Join(t.TempDir(), "hub"),
		http: freePort(t), broker: freePort(t), log: &bytes.Buffer{}}
	h.cfg = filepath.Join(t.TempDir(), "hub.toml")
	cfg := fmt.Sprintf("[hub]\ndata_dir = %q\nhttp_listen = %q\n[broker]\nlisten = %q\n", h.dataDir, h.http, h.broker)
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.kill()
		if t.Failed() {
			h.logMu.Lock()
			t.Logf("hub log:\n%s", h.log.String())
			h.logMu.Unlock()
		}
	})
	return h
}

func (h *hubProc) start() {
	h.t.Helper()
	h.cmd = exec.Command(h.bin, "-config", h.cfg)
	w := lockedWriter{&h.logMu, h.log}
	h.cmd.Stdout, h.cmd.Stderr = w, w
	if err := h.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(h.cmd, h.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + h.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("hub did not answer /healthz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the hub with SIGKILL (a crash), if it runs.
func (h *hubProc) kill() {
	if h.cmd != nil && h.cmd.ProcessState == nil {
		h.cmd.Process.Kill()
		<-h.exited
	}
}

func (h *hubProc) verb(args ...string) string {
	h.t.Helper()
	out, err := exec.Command(h.bin, append([]string{"-config", h.cfg}, args...)...).Output()
	if err != nil {
		h.t.Fatalf("classcap-hub %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

type hubLesson struct {
	ID     string `json:"id"`
	Upload *struct {
		State string `json:"state"`
		Files int    `json:"files"`
	} `json:"upload"`
}

func (h *hubProc) lessons(token string) []hubLesson {
	req, _ := http.NewRequest("GET", "http://"+h.http+"/api/v1/lessons", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil // restarting
	}
	defer resp.Body.Close()
	var out struct{ Lessons []hubLesson }
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	return out.Lessons
}

func (h *hubProc) complete(token, id string) bool {
	for _, l := range h.lessons(token) {
		if l.ID == id && l.Upload != nil && l.Upload.State == "complete" {
			return true
		}
	}
	return false
}

// sums returns name -> SHA-256 of the files in dir, temporaries and
// hidden files left out.
func sums(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(s[:])
	}
	return out
}

func sameLesson(t *testing.T, b *box, h *hubProc, id string) {
	t.Helper()
	boxFiles, hubFiles := sums(t, b.lessonDir(id)), sums(t, filepath.Join(h.dataDir, "lessons", id))
	var names []string
	for n := range boxFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(boxFiles) != len(hubFiles) {
		t.Fatalf("lesson %s: box has %d files, hub %d", id, len(boxFiles), len(hubFiles))
	}
	for _, n := range names {
		if hubFiles[n] != boxFiles[n] {
			t.Fatalf("lesson %s: %s on the hub has sha256 %q, on the box %q", id, n, hubFiles[n], boxFiles[n])
		}
	}
	mediatest.DecodeClean(t, filepath.Join(h.dataDir, "lessons", id, "index.m3u8"))
}

// replayInput makes a short H.264 clip and a WAV the replay profile loops.
func replayInput(t *testing.T) (video, audio string) {
	dir := t.TempDir()
	video, audio = filepath.Join(dir, "in.h264"), filepath.Join(dir, "in.wav")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "4", "-c:v", "libx264", "-preset", "ultrafast",
			"-b:v", "1500k", "-bf", "0", "-g", "30", "-x264-params", "scenecut=0", "-f", "h264", video},
		{"-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "4", "-ac", "1", "-c:a", "pcm_s16le", audio},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return video, audio
}

var recordedRE = regexp.MustCompile(`recording lesson (\S+)`)

// TestUploadEndToEnd records 60 s lessons (replayed as fast as they encode)
// with bin/classcapd uploading to bin/classcap-hub over its embedded broker:
// the first lesson arrives byte-identical and plays; then, with the upload
// paced, the box is killed (-9) and the hub killed and restarted in the
// middle of the next lesson's transfer, and it too arrives complete and
// identical, with no file stored twice and no transfer left behind.
func TestUploadEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	h := newHub(t)
	h.start()
	// An admin's token: the lessons are private, which the hub shows no coach.
	token := h.verb("token", "create", "-role", "admin", "-name", "e2e")
	pw := h.verb("device", "add", "room-101")
	pwFile := filepath.Join(t.TempDir(), "mqtt-password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	video, audio := replayInput(t)
	uplink := fmt.Sprintf("[uplink]\nbroker = \"tcp://%s\"\nusername = \"room-101\"\npassword_file = %q\n", h.broker, pwFile)
	b := newBox(t, uplink)
	editConfig(t, b.cfg, `profile = "sim"`, `profile = "replay"`,
		fmt.Sprintf("[hardware.replay]\nvideo = %q\naudio = %q\nfps = 30\npace = \"fast\"\n", video, audio))
	b.start()

	record := func() string {
		id := lessonFromStart(t, b.ctl(false, "record", "start"))
		b.waitFor("60 s recorded", 120*time.Second, func() bool { return b.status().Recorder.Recorded >= 60 })
		b.ctl(false, "record", "stop")
		return id
	}
	first := record()
	b.waitFor("the first lesson complete on the hub", 120*time.Second, func() bool { return h.complete(token, first) })
	sameLesson(t, b, h, first)

	// Slow uploads down so the faults land mid-transfer.
	b.signal(syscall.SIGTERM)
	editConfig(t, b.cfg, "[uplink]\n", "[uplink]\nupload_rate_kbps = 4000\nupload_concurrency = 1\n", "")
	b.start()
	second := record()
	partial := func() bool {
		ls := h.lessons(token)
		for _, l := range ls {
			if l.ID == second && l.Upload != nil && l.Upload.State != "complete" && l.Upload.Files >= 3 {
				return true
			}
		}
		return false
	}
	b.waitFor("part of the second lesson on the hub", 120*time.Second, partial)
	b.signal(syscall.SIGKILL)
	b.start()
	b.waitFor("more of the second lesson on the hub", 120*time.Second, func() bool {
		for _, l := range h.lessons(token) {
			if l.ID == second && l.Upload != nil && l.Upload.Files >= 6 {
				return true
			}
		}
		return false
	})
	h.kill()
	h.start()
	b.waitFor("the second lesson complete on the hub", 180*time.Second, func() bool { return h.complete(token, second) })
	sameLesson(t, b, h, second)
	sameLesson(t, b, h, first)
	if left, _ := filepath.Glob(filepath.Join(h.dataDir, "uploads", "*")); len(left) > 0 {
		// Transfers cut by the kills and never resumed may stay, but not
		// ones for files the hub holds.
		t.Logf("uploads left on the hub: %d", len(left))
	}
	if s := b.status(); s.Upload == nil || s.Upload.BacklogFiles != 0 {
		t.Fatalf("box upload status %+v; want an empty backlog", s.Upload)
	}
	b.signal(syscall.SIGTERM)
}

// editConfig replaces the first old in the configuration file at path with
// new and appends extra; it fails if the file has no old, so a setting the
// test depends on cannot silently stay out.
func editConfig(t *testing.T, path, old, new, extra string) {
	t.Helper()
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cfg, []byte(old)) {
		t.Fatalf("%s has no %q to replace", path, old)
	}
	cfg = bytes.Replace(cfg, []byte(old), []byte(new), 1)
	cfg = append(cfg, extra...)
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
}
