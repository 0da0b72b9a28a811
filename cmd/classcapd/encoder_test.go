package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/capture/videoenc"
	"github.com/classcap/classcap/device/sim"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/provisioning/desired"
	"github.com/classcap/classcap/uplink/brokertest"
	"github.com/classcap/classcap/uplink/wire"
)

// fakeM2M stands in for the V4L2 mem2mem hardware encoder, which no test
// machine has: found at /dev/video11 while present, and opened as openh264
// under another name, so that what it records is real H.264.
type fakeM2M struct{ present atomic.Bool }

const fakeM2MName = "v4l2-m2m fake /dev/video11"

func (f *fakeM2M) install(t *testing.T) {
	was := hardwareEncoder
	hardwareEncoder.find = func() (string, error) {
		if !f.present.Load() {
			return "", errors.New("H.264 encoder among 0 video devices: no encoder")
		}
		return "/dev/video11", nil
	}
	hardwareEncoder.open = func(dev string, p videoenc.Config) (pipeline.Encoder, error) {
		e, err := pipeline.Software(p)
		if err != nil {
			return nil, err
		}
		return renamed{e, "v4l2-m2m fake " + dev}, nil
	}
	t.Cleanup(func() { hardwareEncoder = was })
}

type renamed struct {
	pipeline.Encoder
	name string
}

func (r renamed) Name() string { return r.name }

// inProcess is classcapd run inside the test (simulated hardware), for
// what a separate process cannot be given: the fake hardware encoder.
type inProcess struct {
	t   *testing.T
	d   *daemon
	dir string
	mu  sync.Mutex
	log bytes.Buffer
}

func (p *inProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *inProcess) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func startInProcess(t *testing.T, profile, extra string) *inProcess {
	t.Helper()
	p := &inProcess{t: t, dir: t.TempDir()}
	cfg, err := config.ParseBox(fmt.Appendf(nil, `[device]
id = "room-101"
data_dir = %q
[hardware]
profile = %q
[hardware.sim]
width = 320
height = 180
fps = 15
[recording]
segment_seconds = 2
min_free_mb = 10
%s`, filepath.Join(p.dir, "data"), profile, extra))
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDaemon(cfg, slog.New(slog.NewTextHandler(p, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.logText())
		}
	})
	return p
}

func (p *inProcess) waitFor(what string, d time.Duration, cond func() bool) {
	p.t.Helper()
	waitUntil(p.t, what, d, cond, func() string { return fmt.Sprintf("; status %+v", p.d.Status()) })
}

func (p *inProcess) meta(id string) lesson.Meta {
	p.t.Helper()
	raw, err := os.ReadFile(filepath.Join(p.d.store.Root(), id, lesson.MetaName))
	if err != nil {
		p.t.Fatal(err)
	}
	m, err := lesson.ParseMeta(raw)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

// record records a lesson of at least 2 s; during, if set, runs while it
// records.
func (p *inProcess) record(during func()) string {
	p.t.Helper()
	ctx := context.Background()
	res, err := p.d.Start(ctx, recorder.StartRequest{By: "cli"})
	if err != nil {
		p.t.Fatal(err)
	}
	if during != nil {
		during()
	}
	p.waitFor("2 s recorded", 30*time.Second, func() bool { return p.d.Status().Recorder.Recorded >= 2 })
	if _, err := p.d.Stop(ctx, recorder.StopRequest{By: "cli"}); err != nil {
		p.t.Fatal(err)
	}
	return res.LessonID
}

// publishConfig publishes the hub's desired configuration for room-101,
// retained, as the hub does.
func (h *testHub) publishConfig(version int64, settings string) {
	h.t.Helper()
	b := fmt.Appendf(nil, `{"v":1,"version":%d,"settings":%s}`, version, settings)
	if _, err := wire.DecodeConfig(b); err != nil {
		h.t.Fatal(err)
	}
	if tok := h.c.Publish(wire.ConfigTopic("room-101"), 1, true, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		h.t.Fatalf("publish: %v", tok.Error())
	}
}

// lastConfigState is the configuration report in the last state the box
// published; nil before one with it.
func (h *testHub) lastConfigState() *wire.ConfigStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.in[wire.KindState]) - 1; i >= 0; i-- {
		st, err := wire.DecodeState(h.in[wire.KindState][i])
		if err != nil {
			h.t.Errorf("invalid state: %v", err)
			return nil
		}
		return st.Config
	}
	return nil
}

// A camera that encodes H.264 itself ignores video.encoder: the hub's set
// applies, nothing is restarted, and the box records on passing its
// pictures through.
func TestVideoEncoderSetPassthrough(t *testing.T) {
	m := brokertest.Start(t)
	h := newTestHub(t, m.URL())
	video, audio := replayInput(t)
	p := startInProcess(t, "replay", fmt.Sprintf("[hardware.replay]\nvideo = %q\naudio = %q\n"+
		"[uplink]\nbroker = %q\n", video, audio, m.URL()))
	d := p.d
	p.waitFor("the uplink and pictures", 30*time.Second, func() bool {
		s := d.Status()
		return s.Uplink != nil && s.Uplink.Connected && s.Camera.Frames > 0
	})
	h.publishConfig(1, `{"video":{"encoder":"software"}}`)
	p.waitFor("version 1 applied", 30*time.Second, func() bool { return d.Status().Config.Applied == 1 })
	l := p.record(nil)
	if s := d.Status(); s.Camera.Encoder != "passthrough" || s.Camera.Fault != "" {
		t.Errorf("camera after the set: %+v", s.Camera)
	}
	if log := p.logText(); strings.Contains(log, "video restarted") || !strings.Contains(log, "not encoded by the box") {
		t.Errorf("the daemon restarted a passthrough camera or did not say it ignores video.encoder")
	}
	if e := p.meta(l).Video.Encoder; e != "passthrough" {
		t.Errorf("lesson %s: encoder %q", l, e)
	}
	checkAV(t, filepath.Join(d.store.Root(), l, lesson.PlaylistName))
}

// The hub changes video.encoder and the daemon applies it without a
// restart: while idle at once, the camera and its encoder restarted with
// the new choice (status and the next lesson's lesson.json name it); while
// a lesson records, once the lesson has ended, the lesson keeping the
// encoder it began with. A set asking for a hardware encoder the box does
// not have is refused with the field named, and the box records on with
// the encoder it has. Every lesson plays (ffprobe).
func TestVideoEncoderSetWithoutRestart(t *testing.T) {
	m := brokertest.Start(t)
	h := newTestHub(t, m.URL())
	hw := &fakeM2M{}
	hw.present.Store(true)
	hw.install(t)
	p := startInProcess(t, "sim", fmt.Sprintf("[video]\nencoder = \"software\"\n[uplink]\nbroker = %q\n", m.URL()))
	d := p.d
	p.waitFor("pictures from openh264", 30*time.Second, func() bool {
		s := d.Status()
		return s.Camera.Encoder == "openh264" && s.Camera.Frames > 0
	})
	p.waitFor("the uplink", 30*time.Second, func() bool { u := d.Status().Uplink; return u != nil && u.Connected })
	l1 := p.record(nil)

	// Idle: version 1 asks for the hardware encoder; applied at once.
	h.publishConfig(1, `{"video":{"encoder":"hardware"}}`)
	p.waitFor("version 1 applied with the hardware encoder in use", 30*time.Second, func() bool {
		s := d.Status()
		return s.Config.Applied == 1 && s.Camera.Encoder == fakeM2MName
	})
	f0 := d.Status().Camera.Frames
	p.waitFor("pictures from the hardware encoder", 30*time.Second, func() bool { return d.Status().Camera.Frames > f0+10 })
	if l := p.logText(); !strings.Contains(l, "video.encoder changed; camera and encoder restarted") ||
		strings.Contains(l, "starts again") {
		t.Errorf("the log does not say the encoder changed without a restart")
	}

	// While a lesson records, version 2 (back to software) waits for it.
	l2 := p.record(func() {
		h.publishConfig(2, `{"video":{"encoder":"software"}}`)
		p.waitFor("version 2 pending", 30*time.Second, func() bool { return d.Status().Config.Pending == 2 })
		if e := d.Status().Camera.Encoder; e != fakeM2MName {
			t.Errorf("the encoder changed during the lesson: %q", e)
		}
	})
	p.waitFor("version 2 applied after the lesson, openh264 in use", 30*time.Second, func() bool {
		s := d.Status()
		return s.Config.Applied == 2 && s.Config.Pending == 0 && s.Camera.Encoder == "openh264"
	})
	// The next lesson once the new encoder delivers: the recorder drops the
	// sound that reaches it before a lesson's first keyframe, and the first
	// picture of an encoder just opened comes late.
	f1 := d.Status().Camera.Frames
	p.waitFor("pictures from openh264 again", 30*time.Second, func() bool { return d.Status().Camera.Frames > f1+10 })
	l3 := p.record(nil)

	// The hardware encoder gone, version 3 asking for it is refused; the
	// box records on with openh264.
	hw.present.Store(false)
	h.publishConfig(3, `{"video":{"encoder":"hardware"}}`)
	p.waitFor("version 3 refused, in the state the hub hears", 30*time.Second, func() bool {
		c := h.lastConfigState()
		return c != nil && c.Rejected == 3
	})
	if c := h.lastConfigState(); c.Applied != 2 || c.Field != "video.encoder" {
		t.Errorf("the hub hears %+v", c)
	}
	if c := d.Status().Config; c.Applied != 2 || c.Field != "video.encoder" || !strings.Contains(c.Error, "no hardware H.264 encoder") {
		t.Errorf("after the refused version: %+v", c)
	}
	l4 := p.record(nil)
	if s := d.Status(); s.Camera.Encoder != "openh264" || s.Camera.Fault != "" {
		t.Errorf("after a refused encoder: camera %+v", s.Camera)
	}

	for _, l := range []struct{ id, encoder string }{{l1, "openh264"}, {l2, fakeM2MName}, {l3, "openh264"}, {l4, "openh264"}} {
		meta := p.meta(l.id)
		if meta.Video.Encoder != l.encoder || meta.State != lesson.StateComplete {
			t.Errorf("lesson %s: encoder %q, state %s; want %q, complete", l.id, meta.Video.Encoder, meta.State, l.encoder)
		}
		checkAV(t, filepath.Join(d.store.Root(), l.id, lesson.PlaylistName))
		mediatest.DecodeClean(t, filepath.Join(d.store.Root(), l.id, lesson.PlaylistName))
	}
}

// countingOutput counts the access units and audio packets of a pipeline.
type countingOutput struct{ video, audio atomic.Int64 }

func (o *countingOutput) WriteVideo(media.AccessUnit)  { o.video.Add(1) }
func (o *countingOutput) WriteAudio(media.AudioPacket) { o.audio.Add(1) }

// A raw V4L2 camera (profile auto) is opened again with every run of the
// camera half, with the encoder choice the daemon holds (videoConfig):
// switchEncoder restarts it with a new choice, and keeps the running
// encoder when the new choice cannot be made (the hardware encoder gone
// between the set's check and its application). The camera here is the
// simulated one, opened as openCamera opens a raw camera.
func TestSwitchEncoderReopensRawCamera(t *testing.T) {
	hw := &fakeM2M{}
	hw.install(t)
	dir := t.TempDir()
	cfg, err := config.ParseBox(fmt.Appendf(nil, "[device]\nid = \"room-101\"\ndata_dir = %q\n[hardware]\nprofile = \"sim\"\n", dir))
	if err != nil {
		t.Fatal(err)
	}
	logs := &inProcess{t: t}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ds, err := desired.Open(dir, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cfg: cfg, log: log, desired: ds}
	d.videoMode.Store(&cfg.Video.Encoder)
	cam := sim.NewCamera(sim.CameraConfig{Width: 160, Height: 96, FPS: 15})
	var opens atomic.Int32
	src := pipeline.Reopened(func() (*pipeline.Video, error) {
		opens.Add(1)
		c := d.videoConfig()
		enc, err := pipeline.ChooseEncoder(encoderConfig(c, 15), log)
		if err != nil {
			return nil, err
		}
		d.encoder.set(enc)
		return pipeline.EncodedWith(cam, enc), nil
	})
	out := &countingOutput{}
	d.pipeline = pipeline.New(pipeline.Config{AudioChannels: 1, AudioBitrateBps: 32000}, src,
		sim.NewMicArray(sim.MicConfig{Channels: 1, Block: audioBlock}), out, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.pipeline.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		waitUntil(t, what, 30*time.Second, cond, func() string {
			return fmt.Sprintf("; encoder %q, opens %d, log:\n%s", d.pipeline.Encoder(), opens.Load(), logs.logText())
		})
	}
	pictures := func(what string) {
		t.Helper()
		n := out.video.Load()
		waitFor(what, func() bool { return out.video.Load() > n+5 })
	}
	with := func(mode string) *config.Box { c := *cfg; c.Video.Encoder = mode; return &c }

	// auto without a hardware encoder: openh264.
	waitFor("openh264 under auto", func() bool { return d.pipeline.Encoder() == "openh264" && out.video.Load() > 0 })
	hw.present.Store(true)
	d.switchEncoder(with("hardware"))
	waitFor("the camera opened again with the hardware encoder", func() bool {
		return opens.Load() == 2 && d.pipeline.Encoder() == fakeM2MName
	})
	pictures("pictures from the hardware encoder")
	d.switchEncoder(with("software"))
	waitFor("openh264 again", func() bool { return opens.Load() == 3 && d.pipeline.Encoder() == "openh264" })
	pictures("pictures from openh264")

	// The hardware encoder gone: the switch to it is not made.
	hw.present.Store(false)
	d.switchEncoder(with("hardware"))
	pictures("pictures after a switch that could not be made")
	if e, n, mode := d.pipeline.Encoder(), opens.Load(), *d.videoMode.Load(); e != "openh264" || n != 3 || mode != "software" {
		t.Errorf("after a switch to a missing hardware encoder: encoder %q, opened %d times, video.encoder %q", e, n, mode)
	}
	if f := d.pipeline.Faults(); len(f) != 0 {
		t.Errorf("faults: %v", f)
	}
	if !strings.Contains(logs.logText(), "video.encoder cannot be applied; the running encoder stays") {
		t.Errorf("the failed switch is not logged")
	}
}
