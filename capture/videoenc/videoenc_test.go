package videoenc

import (
	"bytes"
	"errors"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/sim"
)

func framePTS(n int, fps float64) time.Duration {
	return time.Duration(float64(n) * float64(time.Second) / fps)
}

func newImage(w, h int) *image.YCbCr {
	return image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
}

func writeAnnexB(t *testing.T, aus []media.AccessUnit) string {
	t.Helper()
	var b bytes.Buffer
	for _, au := range aus {
		for _, n := range au.NALUs {
			b.Write([]byte{0, 0, 0, 1})
			b.Write(n)
		}
	}
	p := filepath.Join(t.TempDir(), "out.h264")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type probed struct {
	width, height int
	keys          []bool // key_frame of every frame
	types         []string
}

func ffprobe(t *testing.T, path string) probed {
	t.Helper()
	var p probed
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v",
		"-show_entries", "stream=width,height", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	wh := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(wh) != 2 {
		t.Fatalf("ffprobe stream size: %q", out)
	}
	p.width, _ = strconv.Atoi(wh[0])
	p.height, _ = strconv.Atoi(wh[1])
	cmd := exec.Command("ffprobe", "-v", "error", "-show_frames", "-select_streams", "v",
		"-show_entries", "frame=key_frame,pict_type", "-of", "csv", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe frames %s: %v %s", path, err, stderr.Bytes())
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || f[0] != "frame" {
			continue
		}
		p.keys = append(p.keys, f[1] == "1")
		p.types = append(p.types, f[2])
	}
	return p
}

func TestEncodeJudgedByFFprobe(t *testing.T) {
	const (
		w, h   = 640, 360
		fps    = 30.0
		frames = 95 // about 3 s
		forced = 45
	)
	cfg := Config{Width: w, Height: h, FPS: fps, BitrateBps: 1_000_000, KeyframeInterval: time.Second}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Name() != "openh264" {
		t.Errorf("Name = %q", e.Name())
	}
	img := newImage(w, h)
	var aus []media.AccessUnit
	var firstSPS, firstPPS []byte
	for n := range frames {
		sim.RenderFrame(img, uint64(n))
		if n == forced {
			e.ForceKeyframe()
		}
		pts := framePTS(n, fps)
		au, err := e.Encode(media.RawFrame{Image: img, PTS: pts, Seq: uint64(n)})
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if au.PTS != pts {
			t.Fatalf("frame %d: PTS %v, want %v", n, au.PTS, pts)
		}
		if au.IDR != h264.IsIDR(au.NALUs) {
			t.Fatalf("frame %d: IDR flag %v disagrees with the NAL units", n, au.IDR)
		}
		if au.IDR {
			sps, pps := h264.FindParams(au.NALUs)
			if sps == nil || pps == nil {
				t.Fatalf("IDR frame %d lacks SPS or PPS", n)
			}
			if firstSPS == nil {
				firstSPS, firstPPS = sps, pps
				p, err := h264.ParseParams(sps, pps)
				if err != nil || p.Width != w || p.Height != h {
					t.Fatalf("params %+v, %v", p, err)
				}
			}
			if !bytes.Equal(sps, firstSPS) || !bytes.Equal(pps, firstPPS) {
				t.Fatalf("IDR frame %d: SPS/PPS %x %x differ from the first %x %x", n, sps, pps, firstSPS, firstPPS)
			}
		}
		aus = append(aus, au)
	}

	p := ffprobe(t, writeAnnexB(t, aus))
	if p.width != w || p.height != h {
		t.Errorf("ffprobe size %dx%d, want %dx%d", p.width, p.height, w, h)
	}
	if len(p.keys) != frames {
		t.Fatalf("ffprobe counts %d frames, want %d", len(p.keys), frames)
	}
	maxGap := int(cfg.KeyframeInterval.Seconds() * fps)
	last := -maxGap
	for i, k := range p.keys {
		if k != aus[i].IDR {
			t.Errorf("frame %d: ffprobe key_frame %v, encoder IDR %v", i, k, aus[i].IDR)
		}
		if k {
			if p.types[i] != "I" {
				t.Errorf("key frame %d has picture type %s", i, p.types[i])
			}
			last = i
		}
		if i-last >= maxGap {
			t.Fatalf("frame %d: no keyframe for %d frames (interval %v)", i, i-last, cfg.KeyframeInterval)
		}
	}
	if !p.keys[0] || !p.keys[forced] {
		t.Errorf("keyframes at 0: %v, at forced frame %d: %v", p.keys[0], forced, p.keys[forced])
	}
	if p.keys[forced+1] {
		t.Errorf("frame after the forced keyframe is a keyframe too")
	}
}

// With frames missing upstream, IDRs still come at least every interval of
// PTS.
func TestKeyframeIntervalFollowsPTS(t *testing.T) {
	const fps = 30.0
	e, err := New(Config{Width: 320, Height: 180, FPS: fps, KeyframeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img := newImage(320, 180)
	var lastIDR time.Duration
	for n := 0; n < 300; n += 4 { // three frames in four lost
		sim.RenderFrame(img, uint64(n))
		pts := framePTS(n, fps)
		au, err := e.Encode(media.RawFrame{Image: img, PTS: pts, Seq: uint64(n)})
		if err != nil {
			t.Fatal(err)
		}
		if au.IDR {
			lastIDR = pts
		}
		if pts-lastIDR >= time.Second {
			t.Fatalf("PTS %v: last IDR at %v", pts, lastIDR)
		}
	}
}

func TestEncodeRejectsBadFrames(t *testing.T) {
	e, err := New(Config{Width: 320, Height: 180})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	short := newImage(320, 180)
	short.Y = short.Y[:100]
	narrow := newImage(320, 180)
	narrow.YStride = 100
	tests := []struct {
		name string
		img  *image.YCbCr
	}{
		{"nil", nil},
		{"too big", newImage(1280, 720)},
		{"too small", newImage(16, 16)},
		{"4:4:4", image.NewYCbCr(image.Rect(0, 0, 320, 180), image.YCbCrSubsampleRatio444)},
		{"short luma", short},
		{"narrow stride", narrow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.Encode(media.RawFrame{Image: tt.img}); err == nil {
				t.Fatal("no error")
			} else {
				t.Log(err)
			}
		})
	}
	au, err := e.Encode(media.RawFrame{Image: newImage(320, 180)})
	if err != nil || !au.IDR {
		t.Fatalf("good frame after bad ones: IDR %v, %v", au.IDR, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []Config{
		{},
		{Width: 641, Height: 360},
		{Width: 640, Height: -2},
		{Width: 8192, Height: 360},
		{Width: 640, Height: 360, FPS: -1},
		{Width: 640, Height: 360, BitrateBps: -1},
		{Width: 640, Height: 360, KeyframeInterval: -time.Second},
	}
	for _, cfg := range tests {
		if e, err := New(cfg); err == nil {
			e.Close()
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestClose(t *testing.T) {
	e, err := New(Config{Width: 64, Height: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Encode(media.RawFrame{Image: newImage(64, 64)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Encode after Close: %v", err)
	}
}

func BenchmarkEncode720p(b *testing.B) {
	e, err := New(Config{Width: 1280, Height: 720, FPS: 30, BitrateBps: 2_000_000})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	imgs := make([]*image.YCbCr, 64) // the pattern repeats every 64 frames
	for i := range imgs {
		imgs[i] = newImage(1280, 720)
		sim.RenderFrame(imgs[i], uint64(i))
	}
	for i := 0; b.Loop(); i++ {
		if _, err := e.Encode(media.RawFrame{Image: imgs[i%64], PTS: framePTS(i, 30)}); err != nil {
			b.Fatal(err)
		}
	}
}
