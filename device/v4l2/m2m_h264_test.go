package v4l2

import (
	"bytes"
	"errors"
	"image"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
)

var (
	testSPS   = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}
	testPPS   = []byte{0x68, 0xce, 0x3c, 0x80}
	testIDR   = []byte{0x65, 0x88, 0x84, 0x00, 0x33}
	testSlice = []byte{0x41, 0x9a, 0x02, 0x04}
)

// fakeM2M is a memory-to-memory encoder that answers each submitted frame
// with the buffers out(seq) returns, after delay further submissions.
type fakeM2M struct {
	delay     int
	out       func(seq uint64) []Packet
	controls  []control
	submitted []uint64
	queue     []Packet
	held      [][]Packet
	drained   bool
	closed    bool
	err       error // returned by every call once set
}

func (f *fakeM2M) Info() M2MInfo { return M2MInfo{Driver: "fake-codec"} }

func (f *fakeM2M) SetControl(id uint32, v int32) error {
	if f.err != nil {
		return f.err
	}
	f.controls = append(f.controls, control{ID: id, Value: v})
	return nil
}

func (f *fakeM2M) Submit(img *image.YCbCr, seq uint64, _ time.Duration) error {
	if f.err != nil {
		return f.err
	}
	f.submitted = append(f.submitted, seq)
	f.held = append(f.held, f.out(seq))
	for len(f.held) > f.delay {
		f.queue = append(f.queue, f.held[0]...)
		f.held = f.held[1:]
	}
	return nil
}

func (f *fakeM2M) Receive(time.Duration) (Packet, bool, error) {
	if f.err != nil {
		return Packet{}, false, f.err
	}
	if len(f.queue) == 0 {
		return Packet{}, false, nil
	}
	p := f.queue[0]
	f.queue = f.queue[1:]
	return p, true, nil
}

func (f *fakeM2M) Drain(time.Duration) ([]Packet, error) {
	f.drained = true
	return nil, f.err
}

func (f *fakeM2M) Close() error { f.closed = true; return nil }

// bcmLike answers like bcm2835-codec: the first buffer holds SPS and PPS
// alone, then IDR every gop frames (SPS/PPS repeated) and P slices.
func bcmLike(gop uint64) func(seq uint64) []Packet {
	first := true
	return func(seq uint64) []Packet {
		var out []Packet
		if first {
			first = false
			out = append(out, Packet{Data: annexB(testSPS, testPPS), Seq: seq})
		}
		if seq%gop == 0 {
			return append(out, Packet{Data: annexB(testSPS, testPPS, testIDR), Seq: seq, Keyframe: true})
		}
		return append(out, Packet{Data: annexB(testSlice), Seq: seq})
	}
}

func testFrame(i int) media.RawFrame {
	return media.RawFrame{Image: image.NewYCbCr(image.Rect(0, 0, 64, 48), image.YCbCrSubsampleRatio420),
		PTS: time.Duration(i) * time.Second / 30, Seq: uint64(i)}
}

func newTestEncoder(t *testing.T, dev *fakeM2M, cfg H264EncoderConfig) *H264Encoder {
	t.Helper()
	cfg.Device, cfg.Width, cfg.Height = "/dev/video11", 64, 48
	cfg.Latency = time.Millisecond
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newH264Encoder(cfg, dev)
}

func encodeAll(t *testing.T, e *H264Encoder, n int) []media.AccessUnit {
	t.Helper()
	var aus []media.AccessUnit
	for i := 0; i < n; i++ {
		if err := e.Encode(testFrame(i), func(au media.AccessUnit) { aus = append(aus, au) }); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	return aus
}

func TestH264EncoderAccessUnits(t *testing.T) {
	for _, delay := range []int{0, 2} {
		dev := &fakeM2M{delay: delay, out: bcmLike(10)}
		e := newTestEncoder(t, dev, H264EncoderConfig{FPS: 30})
		aus := encodeAll(t, e, 25)
		if want := 25 - delay; len(aus) != want {
			t.Fatalf("delay %d: %d access units, want %d", delay, len(aus), want)
		}
		for i, au := range aus {
			if au.PTS != testFrame(i).PTS {
				t.Errorf("delay %d: unit %d has PTS %v, want %v", delay, i, au.PTS, testFrame(i).PTS)
			}
			wantIDR := i%10 == 0
			if au.IDR != wantIDR || h264.IsIDR(au.NALUs) != wantIDR {
				t.Errorf("delay %d: unit %d IDR=%v, want %v", delay, i, au.IDR, wantIDR)
			}
			if wantIDR {
				sps, pps := h264.FindParams(au.NALUs)
				if !bytes.Equal(sps, testSPS) || !bytes.Equal(pps, testPPS) {
					t.Errorf("delay %d: IDR %d lacks SPS/PPS: %x", delay, i, au.NALUs)
				}
			}
		}
		// The header-only first buffer went in front of the first picture.
		if got := len(aus[0].NALUs); got != 5 {
			t.Errorf("first unit has %d NAL units, want 5 (header buffer + SPS, PPS, IDR)", got)
		}
		if err := e.Close(); err != nil || !dev.drained || !dev.closed {
			t.Errorf("close: err=%v drained=%v closed=%v", err, dev.drained, dev.closed)
		}
	}
}

func TestH264EncoderIDRWithoutParamsGetsThem(t *testing.T) {
	// An encoder that sends SPS/PPS only once: later IDRs get them.
	first := true
	dev := &fakeM2M{out: func(seq uint64) []Packet {
		if first {
			first = false
			return []Packet{{Data: annexB(testSPS, testPPS, testIDR), Seq: seq}}
		}
		if seq == 3 {
			return []Packet{{Data: annexB(testIDR), Seq: seq}}
		}
		return []Packet{{Data: annexB(testSlice), Seq: seq}}
	}}
	aus := encodeAll(t, newTestEncoder(t, dev, H264EncoderConfig{}), 5)
	if len(aus) != 5 || !aus[3].IDR {
		t.Fatalf("got %d units, unit 3 IDR=%v", len(aus), len(aus) > 3 && aus[3].IDR)
	}
	if sps, pps := h264.FindParams(aus[3].NALUs); sps == nil || pps == nil {
		t.Errorf("IDR 3 without SPS/PPS: %x", aus[3].NALUs)
	}
}

func TestH264EncoderKeyframes(t *testing.T) {
	dev := &fakeM2M{out: bcmLike(1000)}
	e := newTestEncoder(t, dev, H264EncoderConfig{FPS: 30, KeyframeInterval: time.Second})
	forced := func() []int {
		var at []int
		for i, c := range dev.controls {
			if c.ID == CIDForceKeyFrame {
				at = append(at, i)
			}
		}
		return at
	}
	var aus []media.AccessUnit
	emit := func(au media.AccessUnit) { aus = append(aus, au) }
	// The first frame is an IDR from the device; a second later one is asked for.
	for i := 0; i < 31; i++ {
		if err := e.Encode(testFrame(i), emit); err != nil {
			t.Fatal(err)
		}
		want := 0
		if i == 30 {
			want = 1
		}
		if got := len(forced()); got != want {
			t.Fatalf("after frame %d: %d keyframe requests, want %d", i, got, want)
		}
	}
	e.ForceKeyframe()
	if err := e.Encode(testFrame(31), emit); err != nil {
		t.Fatal(err)
	}
	if got := len(forced()); got != 2 {
		t.Fatalf("ForceKeyframe: %d requests in all, want 2", got)
	}
	// The request reaches the device before the frame it is for.
	if n := len(dev.submitted); dev.submitted[n-1] != 31 {
		t.Fatalf("submitted %v", dev.submitted)
	}
}

func TestH264Controls(t *testing.T) {
	cfg, err := H264EncoderConfig{Device: "/dev/video11", Width: 1280, Height: 720, FPS: 25, BitrateBps: 3_000_000,
		KeyframeInterval: 2 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]M2MControl{}
	for _, c := range h264Controls(cfg) {
		got[c.ID] = c
	}
	for id, want := range map[uint32]int32{CIDBitrate: 3_000_000, CIDH264IPeriod: 50, CIDRepeatSeqHeader: 1} {
		if got[id].Value != want {
			t.Errorf("control %#x = %d, want %d", id, got[id].Value, want)
		}
	}
	if got[CIDBitrate].Optional || got[CIDH264IPeriod].Optional {
		t.Error("bitrate and I period must not be optional")
	}
	for _, bad := range []H264EncoderConfig{{FPS: -1}, {BitrateBps: -5}, {KeyframeInterval: -time.Second}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestH264EncoderErrors(t *testing.T) {
	lost := errors.New("gone")
	dev := &fakeM2M{out: bcmLike(10)}
	e := newTestEncoder(t, dev, H264EncoderConfig{})
	encodeAll(t, e, 2)
	dev.err = lost
	if err := e.Encode(testFrame(2), func(media.AccessUnit) {}); !errors.Is(err, lost) {
		t.Fatalf("device error: %v", err)
	}

	// Packets for frames never submitted, pictures without SPS ever, junk.
	for name, out := range map[string]func(uint64) []Packet{
		"unknown frame": func(seq uint64) []Packet { return []Packet{{Data: annexB(testSPS, testPPS, testIDR), Seq: seq + 100}} },
		"no params":     func(seq uint64) []Packet { return []Packet{{Data: annexB(testIDR), Seq: seq}} },
		"not annex-b":   func(seq uint64) []Packet { return []Packet{{Data: []byte{1, 2, 3, 4, 5}, Seq: seq}} },
	} {
		e := newTestEncoder(t, &fakeM2M{out: out}, H264EncoderConfig{})
		err := e.Encode(testFrame(0), func(media.AccessUnit) { t.Errorf("%s: unit emitted", name) })
		if err == nil || !strings.Contains(err.Error(), "frame 0") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := e.Close(); err != nil && !errors.Is(err, lost) {
		t.Fatal(err)
	}
	if err := e.Encode(testFrame(3), nil); err == nil {
		t.Fatal("encode after close succeeded")
	}
}

func TestRawLayoutFill(t *testing.T) {
	img := image.NewYCbCr(image.Rect(0, 0, 4, 2), image.YCbCrSubsampleRatio420)
	copy(img.Y, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	copy(img.Cb, []byte{10, 11})
	copy(img.Cr, []byte{20, 21})
	for _, tc := range []struct {
		name                 string
		f                    PixelFormat
		lines, stride, size  int
		want                 []byte
		wantLines, wantBytes int
	}{
		{"YU12 packed", FormatYU12, 2, 4, 0,
			[]byte{1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 20, 21}, 2, 12},
		{"YU12 stride and 4 lines", FormatYU12, 4, 6, 36,
			[]byte{1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 11, 0, 0, 0, 0, 20, 21, 0, 0, 0, 0}, 4, 36},
		{"NV12 lines from size", FormatNV12, 2, 4, 24,
			[]byte{1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 10, 20, 11, 21, 0, 0, 0, 0}, 4, 24},
	} {
		l, err := newRawLayout(tc.f, 4, 2, tc.lines, tc.stride, tc.size)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if l.LumaLines != tc.wantLines || l.Size != tc.wantBytes {
			t.Errorf("%s: %d lines, %d bytes; want %d, %d", tc.name, l.LumaLines, l.Size, tc.wantLines, tc.wantBytes)
		}
		buf := make([]byte, l.Size)
		if err := l.fill(buf, img); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(buf, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, buf, tc.want)
		}
	}
	l, _ := newRawLayout(FormatYU12, 4, 2, 2, 4, 0)
	if err := l.fill(make([]byte, 12), image.NewYCbCr(image.Rect(0, 0, 6, 2), image.YCbCrSubsampleRatio420)); err == nil {
		t.Error("wrong size accepted")
	}
	if err := l.fill(make([]byte, 12), image.NewYCbCr(image.Rect(0, 0, 4, 2), image.YCbCrSubsampleRatio422)); err == nil {
		t.Error("4:2:2 accepted")
	}
	if err := l.fill(make([]byte, 5), img); err == nil {
		t.Error("short buffer accepted")
	}
	if _, err := newRawLayout(FormatYU12, 4, 2, 2, 4, 6); err == nil {
		t.Error("driver size smaller than the picture accepted")
	}
}

func TestSeqTimestampRoundTrip(t *testing.T) {
	for _, seq := range []uint64{0, 1, 999_999, 1_000_000, 1_999_990, 1 << 40} {
		if got := timestampSeq(seqTimestamp(seq)); got != seq {
			t.Errorf("seq %d came back as %d", seq, got)
		}
	}
}
