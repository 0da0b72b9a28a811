//go:build linux && (amd64 || arm64 || arm)

package alsa

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/classcap/classcap/capture/media"
)

// microphone is capture/pipeline's Microphone, copied: importing the
// pipeline would pull cgo encoders into cross-architecture test builds.
type microphone interface {
	Run(ctx context.Context, sink func(media.PCM)) error
	Format() (channels, rate int)
}

var _ microphone = (*Mic)(nil)

// step is one thing the fake device does: make frames available or fail
// the next read.
type step struct {
	frames int
	err    error
}

// fakePCM plays a script of steps; when it runs out it calls idle, which
// ends the test run (cancel) or lets the loop see a stall.
type fakePCM struct {
	t        *testing.T
	channels int
	script   []step
	next     int16 // value of the next sample
	idle     func()
	starts   int
	prepares int
}

func (f *fakePCM) start() error   { f.starts++; return nil }
func (f *fakePCM) prepare() error { f.prepares++; return nil }

func (f *fakePCM) readi(buf []byte, frames int) (int, error) {
	if len(buf) < frames*f.channels*2 {
		f.t.Fatalf("readi of %d frames into %d bytes", frames, len(buf))
	}
	if len(f.script) == 0 {
		return 0, unix.EAGAIN
	}
	s := &f.script[0]
	if s.err != nil {
		f.script = f.script[1:]
		return 0, s.err
	}
	k := min(frames, s.frames)
	for i := range k * f.channels {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(f.next))
		f.next++
	}
	if s.frames -= k; s.frames == 0 {
		f.script = f.script[1:]
	}
	return k, nil
}

func (f *fakePCM) wait(time.Duration) (bool, error) {
	if len(f.script) == 0 {
		f.idle()
		return false, nil
	}
	return true, nil
}

type block struct {
	pts     time.Duration
	samples []float32
}

func runFake(t *testing.T, script []step, epoch time.Time, stall bool) (*Mic, *fakePCM, []block, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakePCM{t: t, channels: 2, script: script, idle: cancel}
	if stall {
		f.idle = func() {}
	}
	m := &Mic{log: slog.New(slog.DiscardHandler)}
	var got []block
	params := Params{Channels: 2, Rate: 16000, Format: S16LE}
	err := m.loop(ctx, f, params, "hw:9,0 (fake)", epoch, func(p media.PCM) {
		if p.Channels != 2 || p.Rate != 16000 || len(p.Samples)%2 != 0 {
			t.Errorf("block %+v", p)
		}
		got = append(got, block{p.PTS, slices.Clone(p.Samples)})
	})
	return m, f, got, err
}

func TestLoopBlocksAndPTS(t *testing.T) {
	epoch := time.Now().Add(-5 * time.Second)
	m, f, got, err := runFake(t, []step{{frames: 100}, {frames: 100}, {frames: 330}}, epoch, false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("loop = %v, want context.Canceled", err)
	}
	// 530 frames: three full 10 ms blocks; the 50 left are not a block yet.
	if len(got) != 3 {
		t.Fatalf("%d blocks, want 3", len(got))
	}
	if got[0].pts < 5*time.Second || got[0].pts > 6*time.Second {
		t.Errorf("first PTS %v, want about 5s after the epoch", got[0].pts)
	}
	v := 0
	for i, b := range got {
		if len(b.samples) != 320 {
			t.Errorf("block %d: %d samples", i, len(b.samples))
		}
		if want := got[0].pts + time.Duration(i)*10*time.Millisecond; b.pts != want {
			t.Errorf("block %d PTS %v, want %v", i, b.pts, want)
		}
		for _, s := range b.samples {
			if want := float32(int16(v)) / 32768; s != want {
				t.Fatalf("block %d sample %v, want %v", i, s, want)
			}
			v++
		}
	}
	if st := m.Stats(); st.Frames != 480 || st.Blocks != 3 || st.Xruns != 0 || f.starts != 1 {
		t.Errorf("stats %+v starts %d", st, f.starts)
	}
}

func TestLoopOverrun(t *testing.T) {
	epoch := time.Now()
	m, f, got, err := runFake(t, []step{{frames: 200}, {err: unix.EPIPE}, {frames: 320}}, epoch, false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("loop = %v", err)
	}
	// 160 + the 40 read before the overrun, then two blocks after it.
	if len(got) != 4 || len(got[1].samples) != 80 {
		t.Fatalf("%d blocks, want 4 with a short second one", len(got))
	}
	if got[1].pts != got[0].pts+10*time.Millisecond {
		t.Errorf("short block PTS %v, want %v", got[1].pts, got[0].pts+10*time.Millisecond)
	}
	// After the restart the PTS is the clock again, never earlier than
	// the end of what was delivered.
	if end := got[1].pts + 2500*time.Microsecond; got[2].pts < end {
		t.Errorf("PTS after overrun %v, before the end of the previous block %v", got[2].pts, end)
	}
	if limit := max(got[1].pts+2500*time.Microsecond, time.Since(epoch)); got[2].pts > limit {
		t.Errorf("PTS after overrun %v, later than both the clock and the data (%v)", got[2].pts, limit)
	}
	if got[3].pts != got[2].pts+10*time.Millisecond {
		t.Errorf("PTS not contiguous after the restart")
	}
	if st := m.Stats(); st.Xruns != 1 || f.prepares != 1 || f.starts != 2 || st.Frames != 520 {
		t.Errorf("stats %+v prepares %d starts %d", st, f.prepares, f.starts)
	}
}

func TestLoopDeviceLost(t *testing.T) {
	for _, e := range []error{unix.ENODEV, unix.EBADFD, unix.EIO} {
		_, _, got, err := runFake(t, []step{{frames: 160}, {err: e}}, time.Now(), false)
		if !errors.Is(err, ErrDeviceLost) || !errors.Is(err, e) || !strings.Contains(err.Error(), "hw:9,0") {
			t.Errorf("%v: loop = %v, want ErrDeviceLost naming the device", e, err)
		}
		if len(got) != 1 {
			t.Errorf("%v: %d blocks before the loss, want 1", e, len(got))
		}
	}
	_, _, _, err := runFake(t, []step{{err: unix.EINVAL}}, time.Now(), false)
	if err == nil || errors.Is(err, ErrDeviceLost) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("EINVAL: loop = %v", err)
	}
}

func TestLoopStall(t *testing.T) {
	_, _, _, err := runFake(t, []step{{frames: 160}}, time.Now(), true)
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("loop = %v, want ErrStalled", err)
	}
}

func TestRunNotConcurrent(t *testing.T) {
	m := &Mic{log: slog.New(slog.DiscardHandler)}
	m.running.Store(true)
	if err := m.Run(context.Background(), func(media.PCM) {}); !errors.Is(err, ErrRunning) {
		t.Errorf("Run = %v, want ErrRunning", err)
	}
}

func TestNewErrors(t *testing.T) {
	proc := fakeProc(t, true)
	dev := t.TempDir()
	if err := os.Symlink("/dev/null", filepath.Join(dev, "pcmC1D0c")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    Config
		is     error
		substr string
	}{
		{"missing node", Config{Device: "hw:5,0"}, fs.ErrNotExist, "pcmC5D0c"},
		{"missing control for a subdevice", Config{Device: "hw:5,0,1"}, fs.ErrNotExist, "controlC5"},
		{"unknown card", Config{Device: "hw:CARD=Nope,DEV=0"}, ErrBadName, "Nope"},
		{"bad name", Config{Device: "default"}, ErrBadName, "default"},
		{"not a PCM device", Config{Device: "hw:Loopback,0"}, unix.ENOTTY, "pcm version"},
		{"bad channels", Config{Device: "hw:1,0", Channels: 12}, nil, "channels 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ProcRoot, tt.cfg.DevRoot = proc, dev
			m, err := New(tt.cfg, nil)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			if (tt.is != nil && !errors.Is(err, tt.is)) || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("New = %v, want %v mentioning %q", err, tt.is, tt.substr)
			}
		})
	}
}

func TestLoopLongerBlocks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakePCM{t: t, channels: 2, script: []step{{frames: 500}, {frames: 900}, {frames: 600}}, idle: cancel}
	m := &Mic{cfg: Config{Block: 60 * time.Millisecond}, log: slog.New(slog.DiscardHandler)}
	var got []media.PCM
	err := m.loop(ctx, f, Params{Channels: 2, Rate: 16000, Format: S16LE}, "hw:9,0 (fake)", time.Now(), func(p media.PCM) {
		got = append(got, media.PCM{PTS: p.PTS, Samples: slices.Clone(p.Samples)})
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("loop = %v, want context.Canceled", err)
	}
	// 2000 frames at 16 kHz: two whole 60 ms blocks of 960 frames.
	if len(got) != 2 || len(got[0].Samples) != 2*960 || len(got[1].Samples) != 2*960 {
		t.Fatalf("%d blocks, want 2 of 960 frames", len(got))
	}
	if got[1].PTS-got[0].PTS != 60*time.Millisecond {
		t.Errorf("blocks %v apart, want 60ms", got[1].PTS-got[0].PTS)
	}
}
