package main

// End-to-end tests: the real classcapd and classcapctl binaries, simulated
// hardware, ffmpeg and ffprobe as judges of what lands on disk.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/device/sysinfo"
	"github.com/classcap/classcap/uplink/control"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds classcapd twice, with and without the race detector, and
// classcapctl, once per test run.
func binaries(t *testing.T) (daemon, ctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "classcap-bin-")
		if buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg, race string }{
			{"classcapd", "github.com/classcap/classcap/cmd/classcapd", "-race"},
			{"classcapd-plain", "github.com/classcap/classcap/cmd/classcapd", ""},
			{"classcapctl", "github.com/classcap/classcap/cmd/classcapctl", ""},
		} {
			args := []string{"build", "-o", filepath.Join(binDir, b.out)}
			if b.race != "" {
				args = append(args, b.race)
			}
			out, err := exec.Command("go", append(args, b.pkg)...).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
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

type box struct {
	t       *testing.T
	dir     string
	cfg     string
	socket  string
	daemon  string
	ctlBin  string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	logMu   sync.Mutex
	exited  chan struct{}
	exitErr error
}

// newBox writes a sim config with small pictures (CI has two cores).
func newBox(t *testing.T, extra string) *box {
	t.Helper()
	d, c := binaries(t)
	dir := t.TempDir()
	b := &box{t: t, dir: dir, cfg: filepath.Join(dir, "box.toml"), socket: filepath.Join(dir, "data", "classcapd.sock"), daemon: d, ctlBin: c}
	cfg := fmt.Sprintf(`[device]
id = "room-101"
data_dir = %q
[hardware]
profile = "sim"
[hardware.sim]
width = 640
height = 360
fps = 30
[recording]
segment_seconds = 2
min_free_mb = 100
%s`, filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(b.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.cmd != nil && b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			<-b.exited
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", b.logText())
		}
	})
	return b
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (b *box) logText() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	if b.log == nil {
		return ""
	}
	return b.log.String()
}

// start runs the daemon and waits until its socket answers.
func (b *box) start() {
	b.t.Helper()
	b.logMu.Lock()
	if b.log == nil {
		b.log = &bytes.Buffer{}
	}
	fmt.Fprintf(b.log, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	b.logMu.Unlock()
	b.cmd = exec.Command(b.daemon, "-config", b.cfg)
	w := lockedWriter{&b.logMu, b.log}
	b.cmd.Stdout, b.cmd.Stderr = w, w
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		b.exitErr = cmd.Wait()
		close(done)
	}(b.cmd, b.exited)
	b.waitFor("the control socket", 30*time.Second, func() bool {
		_, err := b.client().Status(context.Background())
		return err == nil
	})
}

func (b *box) client() *control.Client { return control.NewClient(b.socket) }

func (b *box) waitFor(what string, d time.Duration, cond func() bool) {
	b.t.Helper()
	waitUntil(b.t, what, d, func() bool {
		select {
		case <-b.exited:
			b.t.Fatalf("daemon exited while waiting for %s: %v", what, b.exitErr)
		default:
		}
		return cond()
	}, func() string { return "" })
}

// waitUntil polls cond until it holds, failing t after d with what and
// what state says about the daemon.
func waitUntil(t testing.TB, what string, d time.Duration, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s%s", d, what, state())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *box) signal(sig syscall.Signal) {
	b.t.Helper()
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatal(err)
	}
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		b.t.Fatalf("daemon did not exit after %v", sig)
	}
}

// ctl runs classcapctl and returns its output; it fails the test on a
// non-zero exit unless wantErr.
func (b *box) ctl(wantErr bool, args ...string) string {
	b.t.Helper()
	out, err := exec.Command(b.ctlBin, append([]string{"-socket", b.socket}, args...)...).CombinedOutput()
	if (err != nil) != wantErr {
		b.t.Fatalf("classcapctl %v: err %v\n%s", args, err, out)
	}
	return string(out)
}

func (b *box) status() control.Status {
	b.t.Helper()
	s, err := b.client().Status(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *box) lessonDir(id string) string { return filepath.Join(b.dir, "data", "lessons", id) }

func (b *box) meta(id string) lesson.Meta {
	b.t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.lessonDir(id), lesson.MetaName))
	if err != nil {
		b.t.Fatal(err)
	}
	m, err := lesson.ParseMeta(raw)
	if err != nil {
		b.t.Fatal(err)
	}
	return m
}

var lessonRE = "recording lesson "

func lessonFromStart(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, lessonRE)
	if i < 0 {
		t.Fatalf("record start said: %s", out)
	}
	return strings.Fields(out[i+len(lessonRE):])[0]
}

// checkAV asserts what users rely on: video and audio agree within 100 ms.
func checkAV(t *testing.T, file string) (video, audio float64) {
	t.Helper()
	v, a := mediatest.Durations(t, file)
	if v <= 0 || a <= 0 || v-a > 0.1 || a-v > 0.1 {
		t.Fatalf("%s: video %.3f s and audio %.3f s disagree by more than 100 ms", file, v, a)
	}
	return v, a
}

func TestRecordWithCLIAndButton(t *testing.T) {
	b := newBox(t, "")
	b.start()
	if s := b.status(); s.Recorder.State != "idle" || s.LED.Pattern != "idle" || s.Camera.Encoder != "openh264" {
		t.Fatalf("status at start %+v", s)
	}
	if st, err := os.Stat(b.socket); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Fatalf("control socket: %v, mode %v; want a socket with mode 0660", err, st.Mode())
	}
	// A hold is not a tap: it starts nothing.
	if out := b.ctl(false, "sim", "hold", "2.2"); !strings.Contains(out, "held") {
		t.Fatalf("sim hold said %q", out)
	}
	if s := b.status(); s.Recorder.State != "idle" {
		t.Fatalf("a hold changed the state to %s", s.Recorder.State)
	}

	// The CLI: start, and the reply comes once the first picture is in.
	t0 := time.Now()
	id := lessonFromStart(t, b.ctl(false, "record", "start", "-visibility", "coaching"))
	if s := b.status(); s.Recorder.State != "recording" || s.LED.Pattern != "recording" || s.LED.Color != "red" {
		t.Fatalf("status while recording %+v", s)
	}
	b.waitFor("5 s of recording", 20*time.Second, func() bool { return b.status().Recorder.Recorded >= 5 })
	out := b.ctl(false, "record", "stop")
	wall := time.Since(t0).Seconds()
	if !strings.Contains(out, id) {
		t.Fatalf("stop said %q", out)
	}
	m := b.meta(id)
	if m.State != lesson.StateComplete || m.Visibility != "coaching" || m.StartedBy != "cli" || m.Device != "room-101" {
		t.Fatalf("lesson.json %+v", m)
	}
	// The sim's 4-capsule array matches the default geometry: the array
	// processing ran, lesson.json says so, status shows its meters.
	if p := m.Audio.Processing; p == nil || p.Chain != "array" || p.Geometry != "linear4" || len(p.Mics) != 4 {
		t.Fatalf("lesson.json audio processing %+v", p)
	}
	if a := b.status().Microphone.Array; a == nil || !a.Running || a.NoiseDBFS >= 0 {
		t.Fatalf("status of the array processing %+v", a)
	}
	if out := b.ctl(false, "status"); !strings.Contains(out, "array      talker at") {
		t.Fatalf("status has no array line:\n%s", out)
	}
	playlist := filepath.Join(b.lessonDir(id), lesson.PlaylistName)
	mediatest.DecodeClean(t, playlist)
	v, _ := checkAV(t, playlist)
	// Media matches the time recorded within one segment.
	if d := wall - v; d < -0.2 || d > m.SegmentDuration {
		t.Fatalf("recorded %.3f s of media in %.3f s of wall time", v, wall)
	}
	for _, sg := range m.Segments {
		st, err := os.Stat(filepath.Join(b.lessonDir(id), sg.Name))
		if err != nil || st.Size() != sg.Bytes {
			t.Fatalf("segment %s: %v, size on disk vs lesson.json %d", sg.Name, err, sg.Bytes)
		}
	}

	// The button: a tap starts, the next tap stops.
	b.ctl(false, "sim", "press")
	b.waitFor("a lesson started by the button", 10*time.Second, func() bool { return b.status().Recorder.Lesson != "" })
	bid := b.status().Recorder.Lesson
	b.waitFor("3 s of recording", 20*time.Second, func() bool { return b.status().Recorder.Recorded >= 3 })
	b.ctl(false, "sim", "press")
	b.waitFor("idle", 10*time.Second, func() bool { return b.status().Recorder.State == "idle" })
	bm := b.meta(bid)
	if bm.StartedBy != "button" || bm.Visibility != "private" || bm.Stop == nil || bm.Stop.By != "button" {
		t.Fatalf("button lesson %+v", bm)
	}

	// lessons lists both; export gives one playable MP4.
	var ls []map[string]any
	if err := json.Unmarshal([]byte(b.ctl(false, "lessons", "-json")), &ls); err != nil || len(ls) != 2 {
		t.Fatalf("lessons: %v %v", ls, err)
	}
	outMP4 := filepath.Join(t.TempDir(), "out.mp4")
	b.ctl(false, "export", id, outMP4)
	mediatest.DecodeClean(t, outMP4)
	checkAV(t, outMP4)

	// Clear messages for mistakes.
	if out := b.ctl(true, "export", "000099-abcdefghij", outMP4); !strings.Contains(out, "not found") {
		t.Fatalf("unknown lesson: %s", out)
	}
	if out := b.ctl(true, "record", "stop"); !strings.Contains(out, "not recording") {
		t.Fatalf("stop when idle: %s", out)
	}
	if out := b.ctl(true, "record", "start", "-visibility", "public"); !strings.Contains(out, "visibility") {
		t.Fatalf("bad visibility: %s", out)
	}

	// SIGTERM while recording: the lesson is finalized, never left torn.
	tid := lessonFromStart(t, b.ctl(false, "record", "start"))
	b.waitFor("3 s of recording", 20*time.Second, func() bool { return b.status().Recorder.Recorded >= 3 })
	b.signal(syscall.SIGTERM)
	if b.exitErr != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", b.exitErr)
	}
	tm := b.meta(tid)
	if tm.State != lesson.StateComplete || tm.Stop == nil || tm.Stop.Reason != "shutdown" {
		t.Fatalf("lesson after SIGTERM %+v", tm)
	}
	if parts, _ := filepath.Glob(filepath.Join(b.lessonDir(tid), "*.part")); len(parts) > 0 {
		t.Fatalf("torn segments left: %v", parts)
	}
	mediatest.DecodeClean(t, filepath.Join(b.lessonDir(tid), lesson.PlaylistName))
	if out := b.ctl(true, "status"); !strings.Contains(out, "not running") {
		t.Fatalf("status with no daemon: %s", out)
	}
}

func TestCheckNamesBadField(t *testing.T) {
	d, _ := binaries(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg, want string
	}{
		{"[hardware]\nprofile = \"webcam\"\n", "hardware.profile"},
		{"[recording]\nsegment_seconds = 0.1\n", "recording.segment_seconds"},
		{"[recording]\nvisibility = \"everyone\"\n", "recording.visibility"},
		{"[device\n", "toml"},
		{"[[live.ice_servers]]\nurls = [\"http://turn.example.net\"]\n", `live.ice_servers[0].urls: "http://turn.example.net": scheme "http" is not one of stun, stuns, turn, turns`},
		{"[[live.ice_servers]]\nurls = [\"turn:turn.example.net\"]\nusername = \"u\"\n", "live.ice_servers[0].credential: is required"},
		{"[live]\nice_transport_policy = \"relay\"\n", `live.ice_transport_policy: "relay" needs a turn: or turns: server`},
	} {
		p := filepath.Join(dir, "c.toml")
		os.WriteFile(p, []byte(tc.cfg), 0o644)
		out, err := exec.Command(d, "-config", p, "-check").CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("config %q: err %v, output %q; want a failure naming %s", tc.cfg, err, out, tc.want)
		}
	}
	p := filepath.Join(dir, "ok.toml")
	os.WriteFile(p, []byte("[device]\nid = \"room-1\"\ndata_dir = \""+dir+"\"\n"), 0o644)
	if out, err := exec.Command(d, "-config", p, "-check").CombinedOutput(); err != nil {
		t.Fatalf("good config: %v %s", err, out)
	}
}

// TestKill9 kills the daemon at random moments while it records: after
// every restart each lesson decodes, no more than 1 s of media before the
// kill is missing, and the lesson continues with a discontinuity.
func TestKill9(t *testing.T) {
	kills := 20
	if testing.Short() {
		kills = 5
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewSource(seed))
	b := newBox(t, "")
	// Timing is what this test measures: the daemon without the race
	// detector's slowdown (the other tests run it with).
	b.daemon = filepath.Join(binDir, "classcapd-plain")
	b.start()
	id := lessonFromStart(t, b.ctl(false, "record", "start"))
	// Each run of the lesson records the boot-time clock of its first
	// picture; the kill is timed on the same clock, so no polling delay
	// enters the figure.
	runStart := b.meta(id).Runs[0].Start.BootTime
	for k := 1; k <= kills; k++ {
		wait := time.Duration(300+rnd.Intn(2700)) * time.Millisecond
		time.Sleep(wait) // a random moment: this is the experiment, not a wait for a condition
		killAt := sysinfo.BootTime().Seconds()
		b.signal(syscall.SIGKILL)
		expected := killAt - runStart

		// With the daemon down, every lesson on disk must decode as it
		// was left: the closed ones through their playlists, the open one
		// through its segments (it is repaired at the next start).
		checkAllLessons(t, b, id, k)

		b.start()
		b.waitFor("the lesson to continue", 30*time.Second, func() bool { return b.status().Recorder.Lesson == id })
		m := b.meta(id)
		runs := len(m.Runs)
		runStart = m.Runs[runs-1].Start.BootTime
		if runs != k+1 {
			t.Fatalf("kill %d: lesson has %d runs, want %d", k, runs, k+1)
		}
		got := m.Runs[runs-1].MediaStart - m.Runs[runs-2].MediaStart
		if missing := expected - got; missing > 1.0 {
			t.Fatalf("kill %d after %.3f s of recording: %.3f s of media kept, %.3f s lost (more than 1 s)", k, expected, got, missing)
		} else {
			t.Logf("kill %d: recorded %.3f s, kept %.3f s (lost %.3f s)", k, expected, got, missing)
		}
		if len(m.Gaps) != k || m.Gaps[k-1].Reason == "" || m.Gaps[k-1].Duration < 0 {
			t.Fatalf("kill %d: gaps %+v", k, m.Gaps)
		}
	}
	b.ctl(false, "record", "stop")
	m := b.meta(id)
	if m.State != lesson.StateComplete {
		t.Fatalf("state %s", m.State)
	}
	playlist := filepath.Join(b.lessonDir(id), lesson.PlaylistName)
	raw, _ := os.ReadFile(playlist)
	// Every continued run that recorded media begins with a segment marked
	// as following a discontinuity (a run killed before any media reached
	// disk has no segment of its own: the next run's first one carries the
	// mark for both gaps).
	want := 0
	for j := 1; j < len(m.Runs); j++ {
		end := m.Duration
		if j+1 < len(m.Runs) {
			end = m.Runs[j+1].MediaStart
		}
		if end-m.Runs[j].MediaStart <= 0 {
			continue
		}
		found := false
		for i, sg := range m.Segments {
			if sg.Start > m.Runs[j].MediaStart-0.001 && sg.Start < m.Runs[j].MediaStart+0.001 {
				found = i == 0 || sg.Discontinuity
			}
		}
		if !found {
			t.Fatalf("run %d (from %.3f s) does not start with a discontinuity: %+v", j, m.Runs[j].MediaStart, m.Segments)
		}
		if m.Runs[j].MediaStart > 0 {
			want++
		}
	}
	if n := strings.Count(string(raw), "#EXT-X-DISCONTINUITY\n"); n != want {
		t.Fatalf("%d discontinuities in the playlist, want %d:\n%s", n, want, raw)
	}
	mediatest.DecodeClean(t, playlist)
	checkAV(t, mediatest.Concat(t, b.lessonDir(id)))
	b.signal(syscall.SIGTERM)
}

func checkAllLessons(t *testing.T, b *box, open string, k int) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(b.dir, "data", "lessons", "*"))
	for _, d := range dirs {
		id := filepath.Base(d)
		if id == open {
			if segs, _ := filepath.Glob(filepath.Join(d, "seg_*.m4s")); len(segs) == 0 {
				continue // no closed segment yet: only the open one, repaired at the next start
			}
			if err := mediatest.Decode(mediatest.Concat(t, d)); err != nil {
				t.Fatalf("kill %d: lesson %s: %v", k, id, err)
			}
			continue
		}
		if err := mediatest.Decode(filepath.Join(d, lesson.PlaylistName)); err != nil {
			t.Fatalf("kill %d: lesson %s: %v", k, id, err)
		}
	}
}

// TestReplayPassthrough records from the replay profile: H.264 from a
// file passed through untouched (the lesson starts at the cached keyframe)
// and WAV audio encoded to Opus.
func TestReplayPassthrough(t *testing.T) {
	dir := t.TempDir()
	video, audio := filepath.Join(dir, "in.h264"), filepath.Join(dir, "in.wav")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "6", "-c:v", "libx264", "-preset", "ultrafast",
			"-bf", "0", "-g", "30", "-x264-params", "scenecut=0", "-f", "h264", video},
		{"-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "5", "-ac", "2", "-c:a", "pcm_s16le", audio},
	} {
		if out, err := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	b := newBox(t, "")
	editConfig(t, b.cfg, `profile = "sim"`, `profile = "replay"`,
		fmt.Sprintf("[hardware.replay]\nvideo = %q\naudio = %q\nfps = 30\npace = \"realtime\"\n", video, audio))
	b.start()
	b.waitFor("a second of media", 10*time.Second, func() bool { return b.status().Camera.Frames > 40 })
	out := b.ctl(false, "record", "start")
	id := lessonFromStart(t, out)
	if s := b.status(); s.Camera.Encoder != "passthrough" {
		t.Fatalf("encoder %q", s.Camera.Encoder)
	}
	b.waitFor("7 s of recording", 30*time.Second, func() bool { return b.status().Recorder.Recorded >= 7 })
	b.ctl(false, "record", "stop")
	m := b.meta(id)
	if m.Video.Encoder != "passthrough" || m.Video.Width != 640 || m.Video.Height != 360 {
		t.Fatalf("video %+v", m.Video)
	}
	playlist := filepath.Join(b.lessonDir(id), lesson.PlaylistName)
	mediatest.DecodeClean(t, playlist)
	checkAV(t, playlist)
	b.signal(syscall.SIGTERM)
}
