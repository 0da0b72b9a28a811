package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/capture/rawaudio"
)

// probeRaw returns what ffprobe reads of a WAV file: channels, rate and
// duration.
func probeRaw(t *testing.T, path string) (int, int, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
		"stream=channels,sample_rate,duration", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var ch, rate int
	var d float64
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "channels":
			ch, _ = strconv.Atoi(v)
		case "sample_rate":
			rate, _ = strconv.Atoi(v)
		case "duration":
			d, _ = strconv.ParseFloat(v, 64)
		}
	}
	return ch, rate, d
}

// TestRawAudioKept records with [audio] keep_raw on, kills the daemon with
// SIGKILL mid-lesson, and checks what is left and what the lesson lists:
// raw files ffprobe reads (the one open at the kill as it was left, and
// once repaired), with the array's channel count, lasting as long as the
// lesson within a segment.
func TestRawAudioKept(t *testing.T) {
	b := newBox(t, "[audio]\nkeep_raw = true\n")
	b.start()
	id := lessonFromStart(t, b.ctl(false, "record", "start"))
	dir := b.lessonDir(id)
	b.waitFor("two segments", 60*time.Second, func() bool { return len(b.meta(id).Segments) >= 2 })
	// An open raw file holding more than 1.5 s: its header has been brought
	// up to date at least once (after every rawaudio.SyncEvery of sound),
	// which is what a crash can count on. A raw file holds one segment, so
	// with 2 s segments it is over 1.5 s for about the last quarter of its
	// segment.
	b.waitFor("an open raw file with 1.5 s of sound", 30*time.Second, func() bool {
		parts, _ := filepath.Glob(filepath.Join(dir, "*.wav"+rawaudio.PartSuffix))
		if len(parts) == 0 {
			return false
		}
		st, err := os.Stat(parts[0])
		return err == nil && st.Size() > 4*3*48000*3/2
	})
	b.signal(syscall.SIGKILL)
	parts, _ := filepath.Glob(filepath.Join(dir, "*.wav"+rawaudio.PartSuffix))
	if len(parts) != 1 {
		t.Fatalf("after the kill: raw files open %v, want one", parts)
	}
	// As left by the kill, before any repair.
	if ch, rate, d := probeRaw(t, parts[0]); ch != 4 || rate != 48000 || d <= 0 {
		t.Fatalf("raw file left by the kill: %d channels, %d Hz, %.3f s", ch, rate, d)
	}
	b.start()
	b.waitFor("the lesson to continue", 30*time.Second, func() bool { return b.status().Recorder.Lesson == id })
	n := len(b.meta(id).Segments)
	b.waitFor("two more segments", 60*time.Second, func() bool { return len(b.meta(id).Segments) >= n+2 })
	b.ctl(false, "record", "stop")
	m := b.meta(id)
	if m.State != lesson.StateComplete || len(m.Raw) == 0 {
		t.Fatalf("lesson %s, %d raw files", m.State, len(m.Raw))
	}
	var total float64
	for _, r := range m.Raw {
		ch, rate, d := probeRaw(t, filepath.Join(dir, r.Name))
		if ch != 4 || rate != 48000 || r.Channels != 4 || r.Rate != 48000 || math.Abs(d-r.Duration) > 0.001 {
			t.Fatalf("%s: ffprobe %d channels, %d Hz, %.3f s; lesson.json %+v", r.Name, ch, rate, d, r)
		}
		total += r.Duration
	}
	if math.Abs(total-m.Duration) > m.SegmentDuration {
		t.Fatalf("raw audio lasts %.3f s, the lesson %.3f s (more than a segment apart)", total, m.Duration)
	}
	// Cut at the segments' starts to the sample: no file holds sound of
	// another segment or sound another file holds; a file begins later
	// than its segment or the file before it ends only where the sound
	// paused. The kill is where the run continued after it begins: the
	// segment cut off by the kill loses its last pictures but the raw file
	// of that moment keeps its sound, which the continued run records anew.
	starts := map[int]float64{}
	for _, sg := range m.Segments {
		starts[sg.Number] = sg.Start
	}
	var wrong, pauses int
	for i, r := range m.Raw {
		half := 0.5 / float64(r.Rate)
		s, ok := starts[r.Segment]
		var prevEnd float64
		if i > 0 {
			prevEnd = m.Raw[i-1].Start + m.Raw[i-1].Duration
		}
		switch {
		case i > 0 && r.Start < prevEnd-half:
			wrong++
			t.Logf("%s begins at %.6f s, before %s ends at %.6f s", r.Name, r.Start, m.Raw[i-1].Name, prevEnd)
		case ok && r.Name == rawaudio.Name(r.Segment, 0) && (r.Start < s-half || i > 0 && prevEnd > s+half):
			wrong++
			t.Logf("%s begins at %.6f s, the file before it ends at %.6f s, its segment begins at %.6f s", r.Name, r.Start, prevEnd, s)
		case i > 0 && r.Start > prevEnd+half:
			pauses++
		}
	}
	t.Logf("raw files: %d pauses in the sound, %d files out of place", pauses, wrong)
	if wrong > 2 {
		t.Fatalf("%d raw files out of place (more than where the kill cut the lesson): %+v", wrong, m.Raw)
	}
	t.Logf("%d raw files, %.3f s; lesson %.3f s in %d segments", len(m.Raw), total, m.Duration, len(m.Segments))
	if left, _ := filepath.Glob(filepath.Join(dir, "*"+rawaudio.PartSuffix)); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	mediatest.DecodeClean(t, filepath.Join(dir, lesson.PlaylistName))
	b.signal(syscall.SIGTERM)
}

// TestRawAudioOffByDefault: without keep_raw no raw file is written and
// lesson.json lists none.
func TestRawAudioOffByDefault(t *testing.T) {
	b := newBox(t, "")
	b.start()
	id := lessonFromStart(t, b.ctl(false, "record", "start"))
	b.waitFor("a segment", 60*time.Second, func() bool { return len(b.meta(id).Segments) >= 1 })
	b.ctl(false, "record", "stop")
	if m := b.meta(id); len(m.Raw) != 0 {
		t.Fatalf("raw files listed: %+v", m.Raw)
	}
	if wavs, _ := filepath.Glob(filepath.Join(b.lessonDir(id), "*.wav*")); len(wavs) > 0 {
		t.Fatalf("raw files written: %v", wavs)
	}
	if raw, _ := os.ReadFile(filepath.Join(b.lessonDir(id), lesson.MetaName)); strings.Contains(string(raw), `"raw"`) {
		t.Fatalf("lesson.json mentions raw audio:\n%s", raw)
	}
	b.signal(syscall.SIGTERM)
}
