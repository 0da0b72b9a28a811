package replay

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
)

// videoClip encodes 3 s of test pattern at 640x360, 30 fps, an IDR every
// 30 frames, and returns the file's access units.
func videoClip(t *testing.T, extra ...string) (string, [][][]byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip.h264")
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "3",
		"-c:v", "libx264", "-g", "30", "-bf", "0"}
	args = append(args, extra...)
	args = append(args, "-f", "h264", "-y", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out, mediatest.AccessUnits(t, out)
}

func writeVideo(t *testing.T, aus [][][]byte) string {
	t.Helper()
	var b bytes.Buffer
	for _, au := range aus {
		for _, n := range au {
			b.Write([]byte{0, 0, 0, 1})
			b.Write(n)
		}
	}
	p := filepath.Join(t.TempDir(), "edited.h264")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// filterVideo keeps the NAL units for which keep returns true.
func filterVideo(aus [][][]byte, keep func(i int, nalu []byte) bool) [][][]byte {
	var out [][][]byte
	for i, au := range aus {
		var k [][]byte
		for _, n := range au {
			if keep(i, n) {
				k = append(k, n)
			}
		}
		if len(k) > 0 {
			out = append(out, k)
		}
	}
	return out
}

// ptsAt is n/fps to the nanosecond.
func ptsAt(n int, fps float64) time.Duration {
	return time.Duration(math.Round(float64(n) * float64(time.Second) / fps))
}

// collectVideo runs v until it has delivered n units.
func collectVideo(t *testing.T, v *Video, n int, slow func(media.AccessUnit)) ([]media.AccessUnit, []time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		aus []media.AccessUnit
		at  []time.Time
	)
	err := v.Run(ctx, func(au media.AccessUnit) {
		now := time.Now()
		if slow != nil {
			slow(au)
		}
		mu.Lock()
		defer mu.Unlock()
		aus = append(aus, au)
		at = append(at, now)
		if len(aus) == n {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v (after %d units)", err, len(aus))
	}
	if len(aus) != n {
		t.Fatalf("got %d units, want %d", len(aus), n)
	}
	return aus, at
}

// checkDecodes has ffmpeg decode the units and returns the frame count.
func checkDecodes(t *testing.T, aus []media.AccessUnit) int {
	t.Helper()
	var all [][][]byte
	for _, au := range aus {
		all = append(all, au.NALUs)
	}
	path := writeVideo(t, all)
	cmd := exec.Command("ffprobe", "-v", "error", "-show_frames", "-select_streams", "v",
		"-show_entries", "frame=key_frame,pict_type", "-of", "csv", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v %s", err, stderr.Bytes())
	}
	return strings.Count(string(out), "frame,")
}

func TestVideoLoopsFast(t *testing.T) {
	path, file := videoClip(t)
	if len(file) != 90 {
		t.Fatalf("clip has %d units, want 90", len(file))
	}
	tests := []struct {
		name string
		path string
	}{
		{"params at every idr", path},
		{"params only at the start", writeVideo(t, filterVideo(file, func(i int, n []byte) bool {
			t := h264.Type(n)
			return i == 0 || (t != h264.TypeSPS && t != h264.TypePPS)
		}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVideo(VideoConfig{Path: tt.path, Pace: PaceFast})
			if err != nil {
				t.Fatal(err)
			}
			if p := v.Params(); p.Width != 640 || p.Height != 360 || p.SPS == nil || p.PPS == nil {
				t.Fatalf("params %dx%d", p.Width, p.Height)
			}
			if v.FPS() != 30 {
				t.Fatalf("fps %g from the SPS, want 30", v.FPS())
			}
			const n = 200 // two passes and a bit
			aus, _ := collectVideo(t, v, n, nil)
			for i, au := range aus {
				if want := ptsAt(i, 30); au.PTS != want {
					t.Fatalf("unit %d: PTS %v, want %v", i, au.PTS, want)
				}
				if wantIDR := i%90%30 == 0; au.IDR != wantIDR || h264.IsIDR(au.NALUs) != wantIDR {
					t.Fatalf("unit %d: IDR %v, want %v", i, au.IDR, wantIDR)
				}
				if au.IDR {
					if sps, pps := h264.FindParams(au.NALUs); sps == nil || pps == nil {
						t.Fatalf("IDR unit %d lacks SPS or PPS", i)
					}
				}
			}
			if got := checkDecodes(t, aus); got != n {
				t.Fatalf("ffprobe decodes %d frames, want %d", got, n)
			}
		})
	}
}

func TestVideoRealtime(t *testing.T) {
	path, _ := videoClip(t)
	epoch := time.Now()
	v, err := NewVideo(VideoConfig{Path: path, FPS: 60, Pace: PaceRealtime, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	aus, at := collectVideo(t, v, 15, nil)
	if aus[0].PTS != 0 {
		t.Fatalf("first unit at %v, want 0", aus[0].PTS)
	}
	checkRealtime(t, aus, at, epoch, 60)
	checkDecodes(t, aus)
}

// A sink that stalls makes the replay drop units up to the next IDR, PTS
// still counting, so it stays real time and decodable.
func TestVideoRealtimeResyncsAtIDR(t *testing.T) {
	path, _ := videoClip(t)
	epoch := time.Now()
	v, err := NewVideo(VideoConfig{Path: path, FPS: 60, Pace: PaceRealtime, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	stall := func(au media.AccessUnit) {
		if au.PTS == ptsAt(3, 60) {
			time.Sleep(100 * time.Millisecond) // six frame periods
		}
	}
	aus, at := collectVideo(t, v, 8, stall)
	if aus[3].PTS != ptsAt(3, 60) {
		t.Fatalf("unit 3 has PTS %v", aus[3].PTS)
	}
	if !aus[4].IDR || aus[4].PTS != ptsAt(30, 60) {
		t.Fatalf("after the stall: IDR %v at %v, want the IDR at 500ms", aus[4].IDR, aus[4].PTS)
	}
	checkRealtime(t, aus[4:], at[4:], epoch, 60)
	checkDecodes(t, aus)
}

// checkRealtime checks units replayed in real time: each comes at its
// frame's time, never before it, one frame after the other. A thread held
// up for more than a frame period (a loaded machine) makes the replay skip
// to the next IDR, as TestVideoRealtimeResyncsAtIDR shows, so a jump in
// frame numbers is allowed only onto an IDR.
func checkRealtime(t *testing.T, aus []media.AccessUnit, at []time.Time, epoch time.Time, fps float64) {
	t.Helper()
	frame := int(math.Round(aus[0].PTS.Seconds() * fps))
	for i, au := range aus {
		if i > 0 {
			want := ptsAt(frame+1, fps)
			switch {
			case au.PTS == want:
				frame++
			case au.PTS > want && au.IDR:
				frame = int(math.Round(au.PTS.Seconds() * fps))
				t.Logf("unit %d: skipped to the IDR at %v (the test thread was held up)", i, au.PTS)
			default:
				t.Fatalf("unit %d: PTS %v (IDR %v) after %v, want %v", i, au.PTS, au.IDR, aus[i-1].PTS, want)
			}
		}
		if au.PTS != ptsAt(frame, fps) {
			t.Fatalf("unit %d: PTS %v is not on a frame of %g fps", i, au.PTS, fps)
		}
		if at[i].Before(epoch.Add(au.PTS)) {
			t.Fatalf("unit %d delivered before its time", i)
		}
	}
}

func TestNewVideoRejects(t *testing.T) {
	path, file := videoClip(t)
	bframes, _ := videoClip(t, "-bf", "2")
	noType := func(typ int) string {
		return writeVideo(t, filterVideo(file, func(_ int, n []byte) bool { return h264.Type(n) != typ }))
	}
	garbage := filepath.Join(t.TempDir(), "garbage.h264")
	if err := os.WriteFile(garbage, []byte("RIFF....WAVEfmt "), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.h264")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  VideoConfig
		want string
	}{
		{"missing file", VideoConfig{Path: filepath.Join(t.TempDir(), "nope.h264")}, "no such file"},
		{"no path", VideoConfig{}, "no file"},
		{"no sps", VideoConfig{Path: noType(h264.TypeSPS)}, "SPS"},
		{"no pps", VideoConfig{Path: noType(h264.TypePPS)}, "PPS"},
		{"no idr", VideoConfig{Path: noType(h264.TypeIDR)}, "no IDR"},
		{"b-frames", VideoConfig{Path: bframes}, "B-frames"},
		{"garbage", VideoConfig{Path: garbage}, "start code"},
		{"empty", VideoConfig{Path: empty}, "no IDR"},
		{"bad pace", VideoConfig{Path: path, Pace: 7}, "Pace(7)"},
		{"bad fps", VideoConfig{Path: path, FPS: -1}, "fps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVideo(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.cfg.Path) {
				t.Fatalf("error %q does not name the file and %q", err, tt.want)
			}
		})
	}
}

func TestParsePace(t *testing.T) {
	tests := []struct {
		in   string
		want Pace
		err  bool
	}{
		{"realtime", PaceRealtime, false},
		{"fast", PaceFast, false},
		{"Fast", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePace(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParsePace(%q) = %v, %v", tt.in, got, err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}
