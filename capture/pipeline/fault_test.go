package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/sim"
)

var errLost = errors.New("capture device lost")

// fakeCam delivers access units every 10 ms until it is told to fail.
type fakeCam struct {
	fail chan struct{} // closed: return errLost
	pts  time.Duration
}

func (c *fakeCam) Run(ctx context.Context, sink func(media.AccessUnit)) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.fail:
			return errLost
		case <-t.C:
			c.pts += 33 * time.Millisecond
			sink(media.AccessUnit{NALUs: [][]byte{{0x65, 0x88}}, PTS: c.pts, IDR: true})
		}
	}
}

// backoffs records the pauses a pipeline asked for, and lets them pass at
// once.
type backoffs struct {
	mu sync.Mutex
	d  []time.Duration
}

func (b *backoffs) after(d time.Duration) <-chan time.Time {
	b.mu.Lock()
	b.d = append(b.d, d)
	b.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func (b *backoffs) get() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.d...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The camera is absent at the start, comes, is unplugged and comes back:
// each time it is opened again, the microphone records all along, the
// fault shows while the camera is away, and the pause between tries grows
// only while the camera delivers nothing.
func TestCameraLossIsRetriedWhileAudioContinues(t *testing.T) {
	out := &collect{}
	var mu sync.Mutex
	attempt := 0
	release := make(chan struct{}) // lets the fifth open succeed
	cam := &fakeCam{fail: make(chan struct{})}
	open := func() (*Video, error) {
		mu.Lock()
		attempt++
		n := attempt
		mu.Unlock()
		switch n {
		case 1, 2, 4:
			return nil, errors.New("open /dev/video0: no such device")
		case 3:
			return Passthrough(cam), nil
		}
		<-release
		return Passthrough(&fakeCam{fail: make(chan struct{})}), nil
	}
	video := Reopened(open)
	if video.Name() != "none" {
		t.Fatalf("name before any camera: %q", video.Name())
	}
	epoch := time.Now()
	p := New(Config{AudioChannels: 1, AudioBitrateBps: 32000}, video,
		sim.NewMicArray(sim.MicConfig{Channels: 2, Epoch: epoch, Seed: 1}), out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b := &backoffs{}
	p.after = b.after
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	waitFor(t, "pictures from the camera", func() bool { v, _ := out.counts(); return v >= 5 })
	if f := p.Faults(); len(f) != 0 {
		t.Fatalf("faults while the camera delivers: %v", f)
	}
	if video.Name() != "passthrough" {
		t.Fatalf("name: %q", video.Name())
	}
	close(cam.fail) // unplugged
	waitFor(t, "the camera fault", func() bool { return strings.Contains(p.Faults()["camera"], "no such device") })
	v0, a0 := out.counts()
	waitFor(t, "audio while the camera is away", func() bool { _, a := out.counts(); return a >= a0+10 })
	if v, _ := out.counts(); v != v0 {
		t.Fatalf("%d pictures while the camera was away", v-v0)
	}
	if _, ok := p.Faults()["microphone"]; ok {
		t.Fatal("the microphone shows a fault")
	}
	close(release)
	waitFor(t, "pictures after the camera came back", func() bool { v, _ := out.counts(); return v >= v0+5 })
	waitFor(t, "the fault to clear", func() bool { return len(p.Faults()) == 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 500 * time.Millisecond, time.Second}
	got := b.get()
	if len(got) != len(want) {
		t.Fatalf("pauses %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pauses %v, want %v", got, want)
		}
	}
}

// fakeMic delivers 2-channel 10 ms blocks until told to fail.
type fakeMic struct {
	fail chan struct{}
	pts  time.Duration
}

func (m *fakeMic) Format() (int, int) { return 2, media.AudioRate }

func (m *fakeMic) Run(ctx context.Context, sink func(media.PCM)) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	buf := make([]float32, 480*2)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.fail:
			return errLost
		case <-t.C:
			sink(media.PCM{Samples: buf, Channels: 2, Rate: media.AudioRate, PTS: m.pts})
			m.pts += 10 * time.Millisecond
		}
	}
}

// A microphone that goes away is opened again while pictures keep coming.
func TestMicrophoneLossIsRetriedWhileVideoContinues(t *testing.T) {
	out := &collect{}
	first := &fakeMic{fail: make(chan struct{})}
	var mu sync.Mutex
	opens := 0
	release := make(chan struct{})
	mic := ReopenedMicrophone(func() (Microphone, error) {
		mu.Lock()
		opens++
		n := opens
		mu.Unlock()
		switch n {
		case 1:
			return first, nil
		case 2:
			return nil, errors.New("open hw:1,0: no such device")
		}
		<-release
		return &fakeMic{fail: make(chan struct{}), pts: time.Minute}, nil
	})
	p := New(Config{AudioChannels: 1, AudioBitrateBps: 32000}, Passthrough(&fakeCam{fail: make(chan struct{})}),
		mic, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.after = (&backoffs{}).after
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "audio", func() bool { _, a := out.counts(); return a >= 5 })
	close(first.fail)
	waitFor(t, "the microphone fault", func() bool { return strings.Contains(p.Faults()["microphone"], "no such device") })
	v0, a0 := out.counts()
	waitFor(t, "pictures while the microphone is away", func() bool { v, _ := out.counts(); return v >= v0+10 })
	if _, a := out.counts(); a != a0 {
		t.Fatalf("%d audio packets while the microphone was away", a-a0)
	}
	close(release)
	waitFor(t, "audio after the microphone came back", func() bool { _, a := out.counts(); return a >= a0+5 })
	waitFor(t, "the fault to clear", func() bool { return len(p.Faults()) == 0 })
	cancel()
	<-done
}

// SetAudio restarts the audio half at once with the new settings: no
// fault, no pause, and the packets after it have the new channel count.
func TestSetAudioRestartsWithNewSettings(t *testing.T) {
	out := &collect{}
	p := New(Config{AudioChannels: 1, AudioBitrateBps: 32000}, Passthrough(&fakeCam{fail: make(chan struct{})}),
		&fakeMic{fail: make(chan struct{})}, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pauses, stop := runCountingPauses(t, p)
	waitFor(t, "mono audio", func() bool { _, a := out.counts(); return a >= 5 })
	p.SetAudio(AudioSettings{Channels: 2, BitrateBps: 64000, Complexity: 5})
	waitFor(t, "stereo audio", func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return len(out.audio) > 0 && out.audio[len(out.audio)-1].Channels == 2
	})
	if f := p.Faults(); len(f) != 0 || len(pauses.get()) != 0 {
		t.Errorf("a restart for new settings counted as a failure: faults %v, pauses %v", f, pauses.get())
	}
	stop()
}

// SetVideo restarts the camera half at once with another source: the
// running encoder is closed, the new one opened on the next picture, with
// no fault and no pause; SetVideo(nil) runs the same source again, which a
// Reopened source opens anew.
func TestSetVideoRestartsWithNewEncoder(t *testing.T) {
	out := &collect{}
	w := &encoderWorld{found: "/dev/video11"}
	cam := sim.NewCamera(sim.CameraConfig{Width: 64, Height: 48, FPS: 30})
	sw, err := ChooseEncoder(w.config(EncoderSoftware), nil)
	if err != nil {
		t.Fatal(err)
	}
	var opens atomic.Int32
	src := Reopened(func() (*Video, error) { opens.Add(1); return EncodedWith(cam, sw), nil })
	p := New(Config{AudioChannels: 1, AudioBitrateBps: 32000}, src,
		&fakeMic{fail: make(chan struct{})}, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pauses, stop := runCountingPauses(t, p)
	waitFor(t, "pictures from the software encoder", func() bool { v, _ := out.counts(); return v >= 5 && p.Encoder() == "openh264" })

	p.SetVideo(nil)
	waitFor(t, "the source opened again", func() bool { return opens.Load() == 2 })
	v0, _ := out.counts()
	waitFor(t, "pictures after the restart", func() bool { v, _ := out.counts(); return v >= v0+5 })

	hw, err := ChooseEncoder(w.config(EncoderHardware), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetVideo(EncodedWith(cam, hw))
	waitFor(t, "the hardware encoder in use", func() bool { return p.Encoder() == "v4l2-m2m fake /dev/video11" })
	v1, _ := out.counts()
	waitFor(t, "pictures from the hardware encoder", func() bool { v, _ := out.counts(); return v >= v1+5 })
	if f := p.Faults(); len(f) != 0 || len(pauses.get()) != 0 {
		t.Errorf("a restart for a new encoder counted as a failure: faults %v, pauses %v", f, pauses.get())
	}
	stop()
	if !w.sw.closed || !w.hw.closed {
		t.Errorf("encoders left open: software closed %v, hardware closed %v", w.sw.closed, w.hw.closed)
	}
	if opens.Load() != 2 {
		t.Errorf("the replaced source was opened %d times, want 2", opens.Load())
	}
}

// runCountingPauses runs p, recording the pauses it would take before
// restarting a failed half; stop ends the run and waits for it (the test's
// end does too).
func runCountingPauses(t *testing.T, p *Pipeline) (*backoffs, func()) {
	pauses := &backoffs{}
	p.after = pauses.after
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return pauses, stop
}
