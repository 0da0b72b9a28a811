package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/videoenc"
	"github.com/classcap/classcap/device/sim"
)

type collect struct {
	mu    sync.Mutex
	video []media.AccessUnit
	audio []media.AudioPacket
}

func (c *collect) WriteVideo(au media.AccessUnit) {
	c.mu.Lock()
	c.video = append(c.video, au)
	c.mu.Unlock()
}
func (c *collect) WriteAudio(p media.AudioPacket) {
	c.mu.Lock()
	c.audio = append(c.audio, p)
	c.mu.Unlock()
}

func (c *collect) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.video), len(c.audio)
}

func TestSimPipelineEncodesBothStreams(t *testing.T) {
	epoch := time.Now()
	out := &collect{}
	v := Encoded(sim.NewCamera(sim.CameraConfig{Width: 320, Height: 240, FPS: 30, Epoch: epoch}),
		videoenc.Config{FPS: 30, BitrateBps: 500_000, KeyframeInterval: time.Second})
	p := New(Config{AudioChannels: 1, AudioBitrateBps: 32000}, v,
		sim.NewMicArray(sim.MicConfig{Channels: 4, Epoch: epoch, Seed: 1}), out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		nv, na := out.counts()
		if nv >= 45 && na >= 75 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d pictures, %d audio packets", nv, na)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !p.ForceKeyframe() {
		t.Fatal("the software encoder cannot be asked for a keyframe")
	}
	forcedAfter, _ := out.counts()
	for n, _ := out.counts(); n < forcedAfter+3; n, _ = out.counts() {
		if time.Now().After(deadline) {
			t.Fatal("no pictures after the keyframe request")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if !out.video[0].IDR {
		t.Fatal("the stream does not start with a keyframe")
	}
	if sps, pps := h264.FindParams(out.video[0].NALUs); sps == nil || pps == nil {
		t.Fatal("first keyframe carries no SPS/PPS")
	}
	idrSoon := false
	for _, au := range out.video[forcedAfter : forcedAfter+3] {
		idrSoon = idrSoon || au.IDR
	}
	if !idrSoon {
		t.Fatal("no keyframe within three pictures of the request")
	}
	for i := 1; i < len(out.video); i++ {
		if out.video[i].PTS <= out.video[i-1].PTS {
			t.Fatalf("picture PTS not increasing at %d", i)
		}
	}
	for i := 1; i < len(out.audio); i++ {
		if out.audio[i].PTS != out.audio[i-1].PTS+out.audio[i-1].Duration() {
			t.Fatalf("audio packet %d at %v, previous ended %v", i, out.audio[i].PTS, out.audio[i-1].PTS+out.audio[i-1].Duration())
		}
	}
	if l := p.Levels(); len(l) != 4 {
		t.Fatalf("levels for %d channels, want 4", len(l))
	}
	if p.Encoder() != "openh264" || len(p.Faults()) != 0 {
		t.Fatalf("encoder %s faults %v", p.Encoder(), p.Faults())
	}
}
