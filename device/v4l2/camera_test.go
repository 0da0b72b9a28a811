package v4l2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
)

// fakeSource plays scripted buffers, then fails with end (or, when end is
// nil, delivers nothing until woken or timed out).
type fakeSource struct {
	layout frameLayout
	frames []frame
	end    error

	mu       sync.Mutex
	pos      int
	released []uint32
	closed   bool
	wakeC    chan struct{}
}

func newFake(l frameLayout, end error, frames ...frame) *fakeSource {
	return &fakeSource{layout: l, frames: frames, end: end, wakeC: make(chan struct{}, 1)}
}

func (f *fakeSource) frameLayout() frameLayout { return f.layout }

func (f *fakeSource) next(timeout time.Duration) (frame, bool, error) {
	f.mu.Lock()
	if f.pos < len(f.frames) {
		fr := f.frames[f.pos]
		f.pos++
		f.mu.Unlock()
		return fr, true, nil
	}
	f.mu.Unlock()
	if f.end != nil {
		return frame{}, false, f.end
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-f.wakeC:
	case <-t.C:
	}
	return frame{}, false, nil
}

func (f *fakeSource) release(i uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, i)
	return nil
}

func (f *fakeSource) wake() {
	select {
	case f.wakeC <- struct{}{}:
	default:
	}
}

func (f *fakeSource) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

func opener(srcs ...*fakeSource) openFunc {
	n := 0
	return func(path string, ch Choice, log *slog.Logger) (frameSource, error) {
		if n >= len(srcs) {
			return nil, fmt.Errorf("v4l2 %s: open: %w", path, os.ErrNotExist)
		}
		n++
		return srcs[n-1], nil
	}
}

var errUnplugged = fmt.Errorf("v4l2 /dev/video7: dequeue buffer: %w: no such device", ErrDeviceLost)

// makeH264 encodes frames 320x240 pictures with an IDR every gop frames;
// libx264 writes SPS and PPS once, at the start.
func makeH264(t *testing.T, frames, gop int) [][][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.h264")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc=size=320x240:rate=30", "-frames:v", strconv.Itoa(frames),
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop),
		"-sc_threshold", "0", "-bf", "0", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return mediatest.AccessUnits(t, out)
}

func annexBUnit(nalus [][]byte) []byte { return annexB(nalus...) }

func countFrames(t *testing.T, data []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.h264")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-f", "h264", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(f) != 3 || f[0] != "320" || f[1] != "240" {
		t.Fatalf("ffprobe: %q", out)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("ffprobe: %q", out)
	}
	return n
}

// Recorded H.264 through the H.264 camera, as a UVC camera delivers it:
// one access unit per buffer, parameter sets only at the start.
func TestH264CameraPassthrough(t *testing.T) {
	aus := makeH264(t, 60, 30)
	if len(aus) != 60 {
		t.Fatalf("%d access units from ffmpeg", len(aus))
	}
	// libx264 repeats SPS and PPS on every IDR; keep only the first ones,
	// as cameras that send them at the start of the stream only.
	for i := 1; i < len(aus); i++ {
		var keep [][]byte
		for _, n := range aus[i] {
			if t := h264.Type(n); t != h264.TypeSPS && t != h264.TypePPS {
				keep = append(keep, n)
			}
		}
		aus[i] = keep
	}
	if sps, pps := h264.FindParams(aus[0]); sps == nil || pps == nil {
		t.Fatal("test data: no SPS/PPS at the start")
	}
	const epochMono = 1000 * time.Second
	period := time.Second / 30
	var frames []frame
	for i, au := range aus {
		frames = append(frames, frame{index: uint32(i % 4), data: annexBUnit(au), mono: epochMono + time.Duration(i)*period})
	}
	cam := &H264Camera{
		cfg:       CameraConfig{Device: "/dev/video7", Choice: Choice{Format: FormatH264}, StallTimeout: time.Second},
		epochMono: epochMono,
		log:       slog.New(slog.DiscardHandler),
		open:      opener(newFake(frameLayout{Format: FormatH264}, errUnplugged, frames...), newFake(frameLayout{Format: FormatH264}, errUnplugged, frames[30:]...)),
	}
	var got []media.AccessUnit
	err := cam.Run(context.Background(), func(au media.AccessUnit) { got = append(got, au) })
	if !errors.Is(err, ErrDeviceLost) || !strings.Contains(err.Error(), "/dev/video7") {
		t.Fatalf("Run = %v, want the device's loss", err)
	}
	if len(got) != 60 {
		t.Fatalf("%d access units, want 60", len(got))
	}
	var all, secondGOP []byte
	for i, au := range got {
		if want := time.Duration(i) * period; au.PTS != want {
			t.Errorf("AU %d: PTS %v, want %v", i, au.PTS, want)
		}
		if au.IDR != (i%30 == 0) {
			t.Errorf("AU %d: IDR %v", i, au.IDR)
		}
		if au.IDR {
			if sps, pps := h264.FindParams(au.NALUs); sps == nil || pps == nil {
				t.Errorf("IDR %d without SPS/PPS", i)
			}
		}
		all = append(all, annexBUnit(au.NALUs)...)
		if i >= 30 {
			secondGOP = append(secondGOP, annexBUnit(au.NALUs)...)
		}
	}
	// ffprobe judges: the whole stream, and the stream cut at the second IDR
	// (a recording segment starting there), decode completely.
	if n := countFrames(t, all); n != 60 {
		t.Errorf("ffprobe decoded %d of 60 frames", n)
	}
	if n := countFrames(t, secondGOP); n != 30 {
		t.Errorf("ffprobe decoded %d of 30 frames from the second IDR on", n)
	}

	// Run again after the loss: a fresh stream, which starts at the second
	// IDR without parameter sets: they are not carried over a restart.
	got = got[:0]
	err = cam.Run(context.Background(), func(au media.AccessUnit) { got = append(got, au) })
	if !errors.Is(err, ErrDeviceLost) || len(got) != 30 {
		t.Fatalf("second Run: %v, %d units", err, len(got))
	}
	if sps, _ := h264.FindParams(got[0].NALUs); sps != nil {
		t.Error("parameter sets carried over from the previous stream")
	}
	// A third Run finds no device.
	if err := cam.Run(context.Background(), func(media.AccessUnit) {}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("third Run: %v", err)
	}
}

func yuyvFrame(w, h int, y byte) []byte {
	b := make([]byte, 2*w*h)
	for i := 0; i < len(b); i += 2 {
		b[i], b[i+1] = y, 128
	}
	return b
}

func TestRawCameraLoop(t *testing.T) {
	const w, h = 8, 4
	l := frameLayout{Format: FormatYUYV, Width: w, Height: h}
	src := newFake(l, errUnplugged,
		frame{index: 0, data: yuyvFrame(w, h, 50), mono: 10 * time.Millisecond},
		frame{index: 1, data: yuyvFrame(w, h, 60), corrupt: true, mono: 20 * time.Millisecond},
		frame{index: 2, data: yuyvFrame(w, h, 70)[:10], mono: 30 * time.Millisecond}, // short
		frame{index: 3, mono: 40 * time.Millisecond},                                 // empty
		frame{index: 0, data: yuyvFrame(w, h, 90), mono: 50 * time.Millisecond},
	)
	cam := &RawCamera{
		cfg:       CameraConfig{Device: "/dev/video7", Choice: Choice{Format: FormatYUYV}, StallTimeout: time.Second},
		epochMono: 5 * time.Millisecond,
		log:       slog.New(slog.DiscardHandler),
		open:      opener(src),
	}
	type got struct {
		y   byte
		pts time.Duration
		seq uint64
		img *image.YCbCr
	}
	var gots []got
	err := cam.Run(context.Background(), func(f media.RawFrame) {
		gots = append(gots, got{f.Image.Y[0], f.PTS, f.Seq, f.Image})
	})
	if !errors.Is(err, ErrDeviceLost) {
		t.Fatalf("Run = %v", err)
	}
	if len(gots) != 2 || gots[0].y != 50 || gots[1].y != 90 {
		t.Fatalf("frames %+v, want Y 50 and 90", gots)
	}
	if gots[0].pts != 5*time.Millisecond || gots[1].pts != 45*time.Millisecond || gots[0].seq != 0 || gots[1].seq != 1 {
		t.Errorf("PTS/Seq %+v", gots)
	}
	if gots[0].img != gots[1].img {
		t.Error("image not reused")
	}
	if want := []uint32{0, 1, 2, 3, 0}; fmt.Sprint(src.released) != fmt.Sprint(want) {
		t.Errorf("released %v, want %v", src.released, want)
	}
	if !src.closed {
		t.Error("source not closed")
	}
}

func TestLoopStall(t *testing.T) {
	l := frameLayout{Format: FormatYUYV, Width: 8, Height: 4}
	tests := []struct {
		name   string
		frames []frame
		want   string
	}{
		{"silent device", nil, "v4l2 /dev/video7: no frame for 50ms: camera lost"},
		{"only corrupt frames", []frame{{corrupt: true, data: []byte{1}}}, "no usable frame for 50ms (last: driver flagged the buffer as corrupt)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFake(l, nil, tt.frames...)
			start := time.Now()
			err := runLoop(context.Background(), src, "/dev/video7", 0, 50*time.Millisecond, slog.New(slog.DiscardHandler),
				func([]byte, time.Duration, frameLayout) error { return nil })
			if !errors.Is(err, ErrDeviceLost) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("runLoop = %v, want %q", err, tt.want)
			}
			if d := time.Since(start); d < 50*time.Millisecond {
				t.Errorf("gave up after %v", d)
			}
		})
	}
}

func TestLoopCancel(t *testing.T) {
	src := newFake(frameLayout{Format: FormatYUYV, Width: 8, Height: 4}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runLoop(ctx, src, "/dev/video7", 0, time.Hour, slog.New(slog.DiscardHandler),
			func([]byte, time.Duration, frameLayout) error { return nil })
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("runLoop = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runLoop did not return after cancel")
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if !src.closed {
		t.Error("source not closed")
	}
}

// The H.264 camera copies the buffer: the driver refills it after release.
func TestH264CameraCopies(t *testing.T) {
	buf := annexB(sps, pps, idr)
	cam := &H264Camera{
		cfg:  CameraConfig{Device: "/dev/video7", StallTimeout: time.Second},
		log:  slog.New(slog.DiscardHandler),
		open: opener(newFake(frameLayout{Format: FormatH264}, errUnplugged, frame{data: buf})),
	}
	var kept media.AccessUnit
	_ = cam.Run(context.Background(), func(au media.AccessUnit) { kept = au })
	for i := range buf {
		buf[i] = 0
	}
	if len(kept.NALUs) != 3 || !bytes.Equal(kept.NALUs[2], idr) {
		t.Fatalf("kept %x", kept.NALUs)
	}
}
