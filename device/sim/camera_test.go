package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/videoenc"
)

func newCameraImage(w, h int) *image.YCbCr {
	return image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
}

func TestFrameCounterRoundTrip(t *testing.T) {
	sizes := [][2]int{{1280, 720}, {640, 360}, {1920, 1080}, {320, 180}, {176, 144}}
	counters := []uint64{0, 1, 29, 12345, 1<<32 - 1}
	for _, s := range sizes {
		img := newCameraImage(s[0], s[1])
		for _, n := range counters {
			t.Run(fmt.Sprintf("%dx%d/%d", s[0], s[1], n), func(t *testing.T) {
				RenderFrame(img, n)
				got, ok := ReadFrameCounter(img)
				if !ok || got != n {
					t.Fatalf("read %d %v, want %d", got, ok, n)
				}
			})
		}
	}
	// The counter keeps 32 bits.
	img := newCameraImage(640, 360)
	RenderFrame(img, 1<<32+7)
	if got, ok := ReadFrameCounter(img); !ok || got != 7 {
		t.Fatalf("wrapped counter: %d %v", got, ok)
	}
}

func TestCaptureClockRoundTrip(t *testing.T) {
	sizes := [][2]int{{1280, 720}, {640, 360}, {320, 240}, {176, 144}}
	clocks := []int64{0, 1, 1764755000123, 1<<32 - 1, 1 << 32, 1<<32 + 5}
	for _, s := range sizes {
		img := newCameraImage(s[0], s[1])
		for _, ms := range clocks {
			t.Run(fmt.Sprintf("%dx%d/%d", s[0], s[1], ms), func(t *testing.T) {
				RenderFrameAt(img, 77, time.UnixMilli(ms))
				got, ok := ReadCaptureClock(img)
				if !ok || got != uint32(ms) {
					t.Fatalf("read %d %v, want %d", got, ok, uint32(ms))
				}
				// The counter beside it is untouched.
				if n, ok := ReadFrameCounter(img); !ok || n != 77 {
					t.Fatalf("counter %d %v, want 77", n, ok)
				}
			})
		}
	}
	// RenderFrame burns a clock of 0: still a valid strip.
	img := newCameraImage(640, 360)
	RenderFrame(img, 3)
	if ms, ok := ReadCaptureClock(img); !ok || ms != 0 {
		t.Fatalf("RenderFrame's clock: %d %v", ms, ok)
	}
	// A flipped block of the clock is refused.
	RenderFrameAt(img, 3, time.UnixMilli(1000))
	cell := cameraCell(640, 360)
	x, y := cameraCellOrigin(cell, cameraCounterBits+31) // lowest clock bit, 0 for 1000
	for j := y; j < y+cell; j++ {
		cameraFill(img.Y[j*img.YStride+x:j*img.YStride+x+cell], cameraWhite)
	}
	if ms, ok := ReadCaptureClock(img); ok {
		t.Fatalf("flipped clock read as %d", ms)
	}
}

func TestReadFrameCounterRejects(t *testing.T) {
	noise := newCameraImage(640, 360)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise.Y {
		noise.Y[i] = uint8(rng.IntN(256))
	}
	flipped := newCameraImage(640, 360)
	RenderFrame(flipped, 1000)
	cell := cameraCell(640, 360)
	x, y := cameraCellOrigin(cell, 31) // lowest counter bit, 0 for 1000
	for j := y; j < y+cell; j++ {
		cameraFill(flipped.Y[j*flipped.YStride+x:j*flipped.YStride+x+cell], cameraWhite)
	}
	white := newCameraImage(640, 360)
	cameraFill(white.Y, 255)
	grey := newCameraImage(640, 360)
	RenderFrame(grey, 5)
	cameraFill(grey.Y, 128)
	tests := []struct {
		name string
		img  *image.YCbCr
	}{
		{"black", newCameraImage(640, 360)},
		{"white", white},
		{"noise", noise},
		{"bit flipped", flipped},
		{"grey", grey},
		{"too small", newCameraImage(64, 32)},
		{"empty", &image.YCbCr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, ok := ReadFrameCounter(tt.img); ok {
				t.Fatalf("read %d from a picture without a counter", n)
			}
		})
	}
}

func TestRenderFrameMoves(t *testing.T) {
	a, b := newCameraImage(640, 360), newCameraImage(640, 360)
	RenderFrame(a, 10)
	RenderFrame(b, 11)
	// Compare below the strips: only the sweeping bar differs.
	top := (cameraStripRows + 2) * cameraCell(640, 360) * a.YStride
	if bytes.Equal(a.Y[top:], b.Y[top:]) {
		t.Fatal("consecutive frames are the same below the counter")
	}
	c := newCameraImage(640, 360)
	RenderFrame(c, 10)
	if !bytes.Equal(a.Y, c.Y) || !bytes.Equal(a.Cb, c.Cb) || !bytes.Equal(a.Cr, c.Cr) {
		t.Fatal("the same frame number renders differently")
	}
}

// The counter and the clock survive H.264 at 2 Mbps: encode with openh264, decode with
// ffmpeg, read every counter back.
func TestFrameCounterSurvivesH264(t *testing.T) {
	for _, s := range [][2]int{{1280, 720}, {640, 360}} {
		w, h := s[0], s[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			const frames = 60
			enc, err := videoenc.New(videoenc.Config{Width: w, Height: h, FPS: 30, BitrateBps: 2_000_000, KeyframeInterval: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			img := newCameraImage(w, h)
			var stream bytes.Buffer
			clock := func(n int) time.Time { return time.UnixMilli(1764755000000 + int64(n)*33) }
			for n := range frames {
				RenderFrameAt(img, uint64(n), clock(n))
				au, err := enc.Encode(media.RawFrame{Image: img, PTS: time.Duration(n) * time.Second / 30, Seq: uint64(n)})
				if err != nil {
					t.Fatal(err)
				}
				for _, nalu := range au.NALUs {
					stream.Write([]byte{0, 0, 0, 1})
					stream.Write(nalu)
				}
			}
			in := filepath.Join(t.TempDir(), "cam.h264")
			if err := os.WriteFile(in, stream.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("ffmpeg", "-v", "error", "-i", in, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			raw, err := cmd.Output()
			if err != nil || stderr.Len() > 0 {
				t.Fatalf("ffmpeg: %v %s", err, stderr.Bytes())
			}
			size := w*h + 2*(w/2)*(h/2)
			if len(raw) != frames*size {
				t.Fatalf("decoded %d bytes, want %d frames of %d", len(raw), frames, size)
			}
			for n := range frames {
				f := raw[n*size : (n+1)*size]
				dec := &image.YCbCr{
					Y: f[:w*h], Cb: f[w*h : w*h+w*h/4], Cr: f[w*h+w*h/4:],
					YStride: w, CStride: w / 2,
					SubsampleRatio: image.YCbCrSubsampleRatio420,
					Rect:           image.Rect(0, 0, w, h),
				}
				got, ok := ReadFrameCounter(dec)
				if !ok || got != uint64(n) {
					t.Fatalf("decoded frame %d: counter %d %v", n, got, ok)
				}
				if ms, ok := ReadCaptureClock(dec); !ok || ms != uint32(clock(n).UnixMilli()) {
					t.Fatalf("decoded frame %d: clock %d %v, want %d", n, ms, ok, uint32(clock(n).UnixMilli()))
				}
			}
		})
	}
}

type cameraDelivery struct {
	frame media.RawFrame
	at    time.Time
}

// runCamera runs a camera until stop returns true for a delivered frame
// (or 5 s pass) and returns the deliveries.
func runCamera(t *testing.T, cfg CameraConfig, slow func(seq uint64), stop func(int) bool) []cameraDelivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		got []cameraDelivery
	)
	err := NewCamera(cfg).Run(ctx, func(f media.RawFrame) {
		at := time.Now()
		if slow != nil {
			slow(f.Seq)
		}
		mu.Lock()
		got = append(got, cameraDelivery{f, at})
		done := stop(len(got))
		mu.Unlock()
		if done {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("camera did not deliver enough frames in 5 s")
	}
	return got
}

func TestCameraPacing(t *testing.T) {
	const fps = 50.0
	epoch := time.Now()
	cfg := CameraConfig{Width: 160, Height: 90, FPS: fps, Epoch: epoch}
	got := runCamera(t, cfg, nil, func(n int) bool { return n >= 20 })
	for i, d := range got {
		if d.frame.Seq != uint64(i) {
			t.Fatalf("delivery %d has Seq %d", i, d.frame.Seq)
		}
		want := time.Duration(float64(i) * float64(time.Second) / fps)
		if d.frame.PTS != want {
			t.Fatalf("frame %d: PTS %v, want %v", i, d.frame.PTS, want)
		}
		if d.at.Before(epoch.Add(d.frame.PTS)) {
			t.Fatalf("frame %d delivered %v before its time", i, epoch.Add(d.frame.PTS).Sub(d.at))
		}
		if b := d.frame.Image.Bounds(); b.Dx() != 160 || b.Dy() != 90 {
			t.Fatalf("frame %d is %v", i, b)
		}
	}
	// 20 frames at 50 fps take 380 ms of PTS: Run kept to real time.
	if el := got[len(got)-1].at.Sub(epoch); el < 380*time.Millisecond {
		t.Fatalf("20 frames delivered in %v", el)
	}
}

func TestCameraSkipsWhenLate(t *testing.T) {
	const fps = 50.0
	epoch := time.Now()
	cfg := CameraConfig{Width: 160, Height: 90, FPS: fps, Epoch: epoch}
	stall := func(seq uint64) {
		if seq == 3 {
			time.Sleep(200 * time.Millisecond) // ten frame periods
		}
	}
	got := runCamera(t, cfg, stall, func(n int) bool { return n >= 8 })
	jumped := false
	for i, d := range got {
		want := time.Duration(float64(d.frame.Seq) * float64(time.Second) / fps)
		if d.frame.PTS != want {
			t.Fatalf("delivery %d: PTS %v, want Seq/FPS = %v", i, d.frame.PTS, want)
		}
		if d.at.Before(epoch.Add(d.frame.PTS)) {
			t.Fatalf("delivery %d early", i)
		}
		if i > 0 {
			step := d.frame.Seq - got[i-1].frame.Seq
			if step == 0 || step > 1<<20 {
				t.Fatalf("Seq went from %d to %d", got[i-1].frame.Seq, d.frame.Seq)
			}
			if got[i-1].frame.Seq == 3 {
				jumped = step >= 9 // the stall spanned ten periods
			}
		}
	}
	if !jumped {
		t.Fatalf("no skip after the stall: %v", got)
	}
}

func TestCameraDefaults(t *testing.T) {
	c := NewCamera(CameraConfig{Width: 641, Height: 361}).Config()
	if c.Width != 642 || c.Height != 362 || c.FPS != 30 {
		t.Fatalf("config %+v", c)
	}
	c = NewCamera(CameraConfig{}).Config()
	if c.Width != 1280 || c.Height != 720 {
		t.Fatalf("default size %dx%d", c.Width, c.Height)
	}
}

func BenchmarkRenderFrame720p(b *testing.B) {
	img := newCameraImage(1280, 720)
	for i := uint64(0); b.Loop(); i++ {
		RenderFrame(img, i)
	}
}

// BenchmarkNewImage720p measures what a fresh picture per frame would cost
// (the camera reuses one instead).
func BenchmarkNewImage720p(b *testing.B) {
	b.ReportAllocs()
	for i := uint64(0); b.Loop(); i++ {
		RenderFrame(newCameraImage(1280, 720), i)
	}
}
