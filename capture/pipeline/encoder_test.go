package pipeline

import (
	"context"
	"errors"
	"image"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/videoenc"
)

// fakeEncoder emits the unit of each frame one frame late, as a hardware
// encoder may.
type fakeEncoder struct {
	name    string
	p       videoenc.Config
	held    *media.AccessUnit
	forced  int
	closed  bool
	encoded int
}

func (f *fakeEncoder) Encode(fr media.RawFrame, emit func(media.AccessUnit)) error {
	f.encoded++
	if f.held != nil {
		emit(*f.held)
	}
	f.held = &media.AccessUnit{PTS: fr.PTS, IDR: f.forced > 0 && f.encoded == 1}
	return nil
}
func (f *fakeEncoder) ForceKeyframe() { f.forced++ }
func (f *fakeEncoder) Name() string   { return f.name }
func (f *fakeEncoder) Close() error   { f.closed = true; return nil }

type encoderWorld struct {
	found       string
	findErr     error
	openErr     error
	finds       int
	hw, sw      *fakeEncoder
	openedSize  [2]int
	openedParam videoenc.Config
}

func (w *encoderWorld) config(mode string) EncoderConfig {
	return EncoderConfig{
		Mode:   mode,
		Params: videoenc.Config{FPS: 25, BitrateBps: 1_000_000, KeyframeInterval: time.Second},
		FindHardware: func() (string, error) {
			w.finds++
			return w.found, w.findErr
		},
		OpenHardware: func(dev string, p videoenc.Config) (Encoder, error) {
			if w.openErr != nil {
				return nil, w.openErr
			}
			w.openedParam = p
			w.hw = &fakeEncoder{name: "v4l2-m2m fake " + dev, p: p}
			return w.hw, nil
		},
		OpenSoftware: func(p videoenc.Config) (Encoder, error) {
			w.openedParam = p
			w.sw = &fakeEncoder{name: "openh264", p: p}
			return w.sw, nil
		},
	}
}

func TestChooseEncoder(t *testing.T) {
	noHW := errors.New("no V4L2 memory-to-memory encoder found")
	for _, tc := range []struct {
		name      string
		mode      string
		world     encoderWorld
		wantErr   string
		before    string // name before the first picture
		after     string // name once opened
		hwOpened  bool
		wantFinds int
	}{
		{name: "software never probes", mode: "software", world: encoderWorld{found: "/dev/video11"},
			before: "openh264", after: "openh264"},
		{name: "auto finds hardware", mode: "auto", world: encoderWorld{found: "/dev/video11"},
			before: "hardware /dev/video11", after: "v4l2-m2m fake /dev/video11", hwOpened: true, wantFinds: 1},
		{name: "empty mode is auto", mode: "", world: encoderWorld{found: "/dev/video11"},
			before: "hardware /dev/video11", after: "v4l2-m2m fake /dev/video11", hwOpened: true, wantFinds: 1},
		{name: "auto without hardware", mode: "auto", world: encoderWorld{findErr: noHW},
			before: "openh264", after: "openh264", wantFinds: 1},
		{name: "auto with a failing hardware encoder", mode: "auto", world: encoderWorld{found: "/dev/video11", openErr: errors.New("busy")},
			before: "hardware /dev/video11", after: "openh264 (hardware /dev/video11 failed)", wantFinds: 1},
		{name: "hardware required, none", mode: "hardware", world: encoderWorld{findErr: noHW},
			wantErr: "video.encoder = hardware: no hardware H.264 encoder: no V4L2 memory-to-memory encoder found", wantFinds: 1},
		{name: "hardware required, open fails", mode: "hardware", world: encoderWorld{found: "/dev/video11", openErr: errors.New("busy")},
			before: "hardware /dev/video11", wantErr: "hardware encoder /dev/video11: busy", wantFinds: 1},
		{name: "unknown mode", mode: "gpu", wantErr: `video.encoder "gpu" is not one of auto, hardware, software`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world
			c, err := ChooseEncoder(w.config(tc.mode), nil)
			if err == nil {
				if got := c.Name(); got != tc.before {
					t.Errorf("name before the first picture = %q, want %q", got, tc.before)
				}
				var e Encoder
				if e, err = c.open(640, 360); err == nil {
					defer e.Close()
					if got := c.Name(); got != tc.after {
						t.Errorf("name = %q, want %q", got, tc.after)
					}
					if w.openedParam.Width != 640 || w.openedParam.Height != 360 || w.openedParam.FPS != 25 ||
						w.openedParam.BitrateBps != 1_000_000 || w.openedParam.KeyframeInterval != time.Second {
						t.Errorf("opened with %+v", w.openedParam)
					}
					if (w.hw != nil) != tc.hwOpened {
						t.Errorf("hardware opened = %v, want %v", w.hw != nil, tc.hwOpened)
					}
				}
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if w.finds != tc.wantFinds {
				t.Errorf("probed %d times, want %d", w.finds, tc.wantFinds)
			}
			if strings.Contains(tc.wantErr, "none") && !errors.Is(err, ErrNoHardwareEncoder) {
				t.Errorf("err does not wrap ErrNoHardwareEncoder")
			}
		})
	}
}

type framesCamera struct{ n int }

func (c framesCamera) Run(ctx context.Context, sink func(media.RawFrame)) error {
	img := image.NewYCbCr(image.Rect(0, 0, 320, 240), image.YCbCrSubsampleRatio420)
	for i := 0; i < c.n; i++ {
		sink(media.RawFrame{Image: img, PTS: time.Duration(i) * 40 * time.Millisecond, Seq: uint64(i)})
	}
	return errors.New("camera ran out")
}

func TestEncodedWithDelayedEncoder(t *testing.T) {
	w := &encoderWorld{found: "/dev/video11"}
	c, err := ChooseEncoder(w.config("auto"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := EncodedWith(framesCamera{n: 5}, c)
	if !v.forceIDR() {
		t.Fatal("an encoded source must take keyframe requests")
	}
	var got []media.AccessUnit
	err = v.run(context.Background(), func(au media.AccessUnit) { got = append(got, au) })
	if err == nil || !strings.Contains(err.Error(), "camera ran out") {
		t.Fatalf("run: %v", err)
	}
	if len(got) != 4 {
		t.Fatalf("%d units, want 4 (the encoder holds one)", len(got))
	}
	for i, au := range got {
		if au.PTS != time.Duration(i)*40*time.Millisecond {
			t.Errorf("unit %d PTS %v", i, au.PTS)
		}
	}
	if !got[0].IDR || w.hw.forced != 1 {
		t.Errorf("keyframe asked before the first picture: first IDR=%v, forced %d", got[0].IDR, w.hw.forced)
	}
	if !w.hw.closed {
		t.Error("encoder not closed when the camera stopped")
	}
	if v.Name() != "v4l2-m2m fake /dev/video11" {
		t.Errorf("name %q", v.Name())
	}
}

// TestSetParamsReopensEncoder: new settings close the open encoder and the
// next picture opens one with them.
func TestSetParamsReopensEncoder(t *testing.T) {
	w := &encoderWorld{}
	c, err := ChooseEncoder(w.config("software"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var first *fakeEncoder
	cam := callbackCamera{n: 6, at: func(i int) {
		if i == 3 {
			first = w.sw
			c.SetParams(600_000, 2*time.Second)
		}
	}}
	v := EncodedWith(cam, c)
	v.run(context.Background(), func(media.AccessUnit) {})
	if first == nil || !first.closed || first.encoded != 3 {
		t.Fatalf("the first encoder: %+v", first)
	}
	if w.sw == first || w.sw.encoded != 3 || w.sw.p.BitrateBps != 600_000 || w.sw.p.KeyframeInterval != 2*time.Second {
		t.Errorf("the reopened encoder: %+v", w.sw)
	}
	if p := c.Params(); p.BitrateBps != 600_000 || p.FPS != 25 {
		t.Errorf("params %+v", p)
	}
}

// callbackCamera calls at before each of its n pictures.
type callbackCamera struct {
	n  int
	at func(i int)
}

func (c callbackCamera) Run(ctx context.Context, sink func(media.RawFrame)) error {
	img := image.NewYCbCr(image.Rect(0, 0, 320, 240), image.YCbCrSubsampleRatio420)
	for i := 0; i < c.n; i++ {
		c.at(i)
		sink(media.RawFrame{Image: img, PTS: time.Duration(i) * 40 * time.Millisecond, Seq: uint64(i)})
	}
	return errors.New("camera ran out")
}
