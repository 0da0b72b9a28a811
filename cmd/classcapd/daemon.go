package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/classcap/classcap/capture/audio"
	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/live"
	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/capture/stream"
	"github.com/classcap/classcap/device/alsa"
	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/gpio"
	"github.com/classcap/classcap/device/led"
	"github.com/classcap/classcap/device/replay"
	"github.com/classcap/classcap/device/sim"
	"github.com/classcap/classcap/device/sysinfo"
	"github.com/classcap/classcap/device/v4l2"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/provisioning/desired"
	"github.com/classcap/classcap/provisioning/enroll"
	"github.com/classcap/classcap/uplink/control"
	"github.com/classcap/classcap/uplink/link"
	"github.com/classcap/classcap/uplink/uploader"
	"github.com/classcap/classcap/uplink/wire"
)

// daemon is the composition root: it wires the components in data-flow
// order and serves the local API.
type daemon struct {
	// cfg is the configuration the daemon started with: the file, with the
	// hub's settings applied last time laid over it. Settings the hub
	// changes later are in desired.Current().
	cfg     *config.Box
	log     *slog.Logger
	started time.Time

	desired *desired.Store                      // the hub's configuration
	encoder encoderSlot                         // the running camera's encoder, for new settings
	cfgKick chan struct{}                       // a configuration arrived or a lesson ended
	inForce int64                               // the hub's version the components run with (configLoop's)
	audio   atomic.Pointer[config.AudioSection] // the [audio] settings the pipeline runs with
	// videoMode is the video.encoder the camera half runs with (it changes
	// once a new choice could be made; configLoop's).
	videoMode atomic.Pointer[string]
	// simVideo makes the simulated camera's source with c's encoder choice
	// (nil unless hardware.profile is sim).
	simVideo func(c *config.Box) (*pipeline.Video, error)

	store    *lesson.Store
	catalog  *catalog.Catalog
	stream   *stream.Stream
	pipeline *pipeline.Pipeline
	recorder *recorder.Recorder
	uploader *uploader.Uploader
	led      *led.Driver
	leds     *ledMux // the recorder's patterns with live view's over them
	live     *live.Manager
	tap      *live.Tap          // between the pipeline and the stream
	edges    <-chan button.Edge // nil: no button
	simBtn   *sim.Button        // nil unless the button is simulated
	recIn    *stream.Reader
	enroller *enroll.Enroller // nil: neither enrolled nor a claim file
	api      *control.Server
	link     *link.Link // nil: offline (no uplink.broker)
}

func newDaemon(cfg *config.Box, log *slog.Logger) (*daemon, error) {
	d := &daemon{cfg: cfg, log: log, started: time.Now()}
	if err := adoptIdentity(cfg, log); err != nil {
		return nil, err
	}
	if err := durable.MkdirAll(cfg.Device.DataDir, 0o755); err != nil {
		return nil, err
	}
	// the hub's configuration: the last one applied is laid over the file,
	// and every component below starts with the result
	ds, err := desired.Open(cfg.Device.DataDir, cfg, log.With("component", "config"))
	if err != nil {
		return nil, err
	}
	d.desired, d.cfgKick = ds, make(chan struct{}, 1)
	cfg = ds.Current()
	d.cfg, d.inForce = cfg, ds.Status().Applied
	ds.SetCheck(checkEncoder)
	d.videoMode.Store(&cfg.Video.Encoder)
	store, err := lesson.NewStore(cfg.LessonsDir(), log.With("component", "lessons"))
	if err != nil {
		return nil, err
	}
	d.store = store
	epoch := time.Now()

	// camera -> encoder (or passthrough)
	var video *pipeline.Video
	// microphone array
	var mic pipeline.Microphone
	switch cfg.Hardware.Profile {
	case "sim":
		cam := sim.NewCamera(sim.CameraConfig{
			Width: cfg.Hardware.Sim.Width, Height: cfg.Hardware.Sim.Height, FPS: cfg.Hardware.Sim.FPS, Epoch: epoch,
			Log: log.With("component", "camera"),
		})
		d.simVideo = func(c *config.Box) (*pipeline.Video, error) {
			enc, err := pipeline.ChooseEncoder(encoderConfig(c, c.Hardware.Sim.FPS), log.With("component", "encoder"))
			if err != nil {
				return nil, err
			}
			d.encoder.set(enc)
			return pipeline.EncodedWith(cam, enc), nil
		}
		if video, err = d.simVideo(cfg); err != nil {
			return nil, err
		}
		mic = sim.NewMicArray(simMicConfig(cfg, epoch))
	case "replay":
		pace, err := replay.ParsePace(cfg.Hardware.Replay.Pace)
		if err != nil {
			return nil, fmt.Errorf("hardware.replay.pace: %w", err)
		}
		v, err := replay.NewVideo(replay.VideoConfig{Path: cfg.Hardware.Replay.Video, FPS: cfg.Hardware.Replay.FPS, Pace: pace, Epoch: epoch})
		if err != nil {
			return nil, err
		}
		a, err := replay.NewAudio(replay.AudioConfig{Path: cfg.Hardware.Replay.Audio, Pace: pace, Epoch: epoch, Block: audioBlock})
		if err != nil {
			return nil, err
		}
		video, mic = pipeline.Passthrough(v), a
	case "auto":
		// Found again before every run: a device absent at the start or
		// unplugged is a fault in status, tried again, never an exit.
		video = pipeline.Reopened(func() (*pipeline.Video, error) { return openCamera(d.videoConfig(), &d.encoder, epoch, log) })
		mic = pipeline.ReopenedMicrophone(func() (pipeline.Microphone, error) { return openMicrophone(cfg, epoch, log) })
	default:
		return nil, fmt.Errorf("hardware.profile %q is not one of sim, replay, auto", cfg.Hardware.Profile)
	}
	// button and LED: real GPIO lines under auto, simulated otherwise
	if cfg.Hardware.Profile == "auto" {
		if err := d.openGPIO(); err != nil {
			return nil, err
		}
	} else {
		d.simBtn = sim.NewButton()
		d.edges = d.simBtn.Edges()
		d.led = led.NewDriver(&sim.LED{}, false)
	}

	d.leds = &ledMux{drv: d.led}

	// enrollment with the hub (claim file, certificate renewal)
	enr, err := newEnroller(cfg, d.led, log.With("component", "enroll"))
	if err != nil {
		return nil, err
	}
	d.enroller = enr

	// -> fan-out -> recorder -> lesson store + catalog
	d.stream = stream.New()
	// The tap keeps the last group of pictures for live viewers.
	d.tap = live.NewTap(d.stream)
	arrayCfg, err := arrayConfig(cfg)
	if err != nil {
		return nil, err
	}
	d.audio.Store(&cfg.Audio)
	// microphones as captured -> recorder -> seg_NNNNNN.raw.wav ([audio] keep_raw)
	raw, rawSink := rawAudio(func() bool { return d.audio.Load().KeepRaw }, log.With("component", "raw-audio"))
	d.pipeline = pipeline.New(pipeline.Config{
		AudioChannels: cfg.Audio.Channels, AudioBitrateBps: cfg.Audio.BitrateKbps * 1000, AudioComplexity: cfg.Audio.Complexity,
		Array: arrayCfg, Raw: rawSink,
	}, video, mic, d.tap, log.With("component", "capture"))
	cat, err := catalog.Open(filepath.Join(cfg.Device.DataDir, "catalog.db"), store, log.With("component", "catalog"))
	if err != nil {
		return nil, err
	}
	d.catalog = cat
	in := d.stream.Subscribe("recorder", true, 512)
	d.recIn = in
	// hub <-> MQTT link (commands in; state, events, replies out)
	var notify func(recorder.Notice)
	if cfg.Uplink.Broker != "" || (d.enroller != nil && d.enroller.Identity() != nil) {
		l, err := newLink(cfg, d, log.With("component", "uplink"))
		if err != nil {
			return nil, err
		}
		d.link = l
		// A closed segment or a stopped lesson is news for the hub and
		// work for the uploader.
		notify = func(n recorder.Notice) {
			l.Notify(n)
			if d.uploader != nil {
				d.uploader.Kick()
			}
			if n.Kind == recorder.NoticeLessonStopped {
				kick(d.cfgKick) // a configuration may wait for this
			}
		}
		// the hub's desired configuration (retained): applied, kept
		// pending until the lesson ends, or refused with the field named
		cfgLog := log.With("component", "config")
		l.Handle(wire.KindConfig, func(payload []byte) {
			res, err := d.desired.Offer(payload, d.recording())
			if err != nil {
				cfgLog.Warn("unreadable configuration message from the hub", "err", err)
			}
			if res != desired.Ignored {
				kick(d.cfgKick)
			}
		})
	}
	d.recorder = recorder.New(recorder.Config{
		Device:            cfg.Device.ID,
		SegmentDuration:   cfg.SegmentDuration(),
		DefaultVisibility: cfg.Recording.Visibility,
		MinFreeBytes:      uint64(cfg.Recording.MinFreeMB) << 20,
		StopFreeBytes:     uint64(cfg.Recording.MinFreeMB) << 20 / 5,
		AudioChannels:     cfg.Audio.Channels,
		AudioBitrateBps:   cfg.Audio.BitrateKbps * 1000,
		ResumeAfterCrash:  true,
	}, recorder.Deps{
		Store: store, Catalog: cat,
		Input:         recorder.Input{Video: in.Video, Audio: in.Audio, Raw: raw},
		ForceKeyframe: d.pipeline.ForceKeyframe,
		Encoder:       d.pipeline.Encoder,
		Faults:        d.pipeline.Faults,
		AudioProcessing: func() *lesson.AudioProcessing {
			return audioProcessing(d.pipeline, d.audio.Load().Array)
		},
		ShowLED: d.leds.show,
		FreeBytes: func() (uint64, error) {
			du, err := sysinfo.DiskUsage(cfg.Device.DataDir)
			return du.FreeBytes, err
		},
		Now:    now,
		Notify: notify,
		Log:    log.With("component", "recorder"),
	})
	// fan-out -> live view (lossy readers, one per viewer)
	if d.live, err = newLive(cfg, d); err != nil {
		return nil, err
	}
	// lesson store + catalog -> uploader -> hub: grants and verified acks over
	// the link, bytes over tus (offline: backlog and retention only)
	var hub uploader.Hub
	if d.link != nil {
		coord := &uploader.Coordinator{Device: cfg.Device.ID, Pub: d.link}
		upLog := log.With("component", "uploader")
		d.link.Handle(wire.KindGrant, func(payload []byte) {
			if err := coord.HandleGrant(payload); err != nil {
				upLog.Warn("bad grant message from the hub", "err", err)
			}
		})
		hub = coord
	}
	d.uploader, err = newUploader(cfg, cat, store, hub, log.With("component", "uploader"))
	if err != nil {
		return nil, err
	}
	d.api = control.NewServer(cfg.SocketPath(), d, log.With("component", "api"))
	return d, nil
}

// openCamera finds the camera (the configured device, or the first that
// captures) and picks its best format: H.264 passed through, else raw
// pictures into the encoder that video.encoder chooses.
func openCamera(cfg *config.Box, slot *encoderSlot, epoch time.Time, log *slog.Logger) (*pipeline.Video, error) {
	want := v4l2.Config{Width: cfg.Hardware.CameraWidth, Height: cfg.Hardware.CameraHeight, FPS: cfg.Hardware.CameraFPS}
	var info v4l2.DeviceInfo
	var choice v4l2.Choice
	var err error
	if cfg.Hardware.Camera != "" {
		if info, err = v4l2.Probe(cfg.Hardware.Camera); err != nil {
			return nil, fmt.Errorf("camera: %w", err)
		}
		if choice, err = v4l2.Choose(info.Formats, want); err != nil {
			return nil, fmt.Errorf("camera %s: %w", info.Path, err)
		}
	} else {
		all, err := v4l2.List() // err names devices that did not answer; the others are usable
		if len(all) == 0 {
			if err != nil {
				return nil, fmt.Errorf("camera: %w", err)
			}
			return nil, errors.New("camera: no V4L2 capture device found (set hardware.camera)")
		}
		if info, choice, err = v4l2.Pick(all, want); err != nil {
			return nil, fmt.Errorf("camera: %w", err)
		}
	}
	log.Info("camera", "device", info.Path, "card", info.Card, "format", choice.String())
	camCfg := v4l2.CameraConfig{Device: info.Path, Choice: choice, Epoch: epoch}
	if choice.Passthrough() {
		c, err := v4l2.NewH264Camera(camCfg, log.With("component", "camera"))
		if err != nil {
			return nil, err
		}
		slot.set(nil)
		return pipeline.Passthrough(c), nil
	}
	c, err := v4l2.NewRawCamera(camCfg, log.With("component", "camera"))
	if err != nil {
		return nil, err
	}
	enc, err := pipeline.ChooseEncoder(encoderConfig(cfg, choice.FPS), log.With("component", "encoder"))
	if err != nil {
		return nil, err
	}
	slot.set(enc)
	return pipeline.EncodedWith(c, enc), nil
}

// openMicrophone opens the configured ALSA capture device, or the first.
func openMicrophone(cfg *config.Box, epoch time.Time, log *slog.Logger) (pipeline.Microphone, error) {
	name := cfg.Hardware.Microphone
	if name == "" {
		devs, err := alsa.CaptureDevices("/proc/asound")
		if err != nil {
			return nil, fmt.Errorf("microphone: %w", err)
		}
		if len(devs) == 0 {
			return nil, errors.New("microphone: no ALSA capture device found (set hardware.microphone)")
		}
		name = devs[0].String()
	}
	m, err := alsa.New(alsa.Config{Device: name, Epoch: epoch, Block: audioBlock}, log.With("component", "microphone"))
	if err != nil {
		return nil, fmt.Errorf("microphone: %w", err)
	}
	return m, nil
}

// openGPIO requests the button and LED lines named in the configuration;
// a box without one runs without it (the LED pattern still shows in status).
func (d *daemon) openGPIO() error {
	hw := d.cfg.Hardware
	if hw.Button != "" {
		spec, err := config.ParseGPIO(hw.Button)
		if err != nil {
			return fmt.Errorf("hardware.button: %w", err)
		}
		b, err := gpio.OpenButton(gpio.ButtonConfig{Chip: spec.Chip, Line: spec.Lines[0], ActiveLow: hw.ButtonActiveLow,
			Bias: hw.ButtonBias, Debounce: button.DefaultDebounce})
		if err != nil {
			return fmt.Errorf("hardware.button: %w", err)
		}
		d.edges = b.Edges()
	}
	var out led.Output = &sim.LED{}
	mono := false
	if hw.LED != "" {
		spec, err := config.ParseGPIO(hw.LED)
		if err != nil {
			return fmt.Errorf("hardware.led: %w", err)
		}
		l, err := gpio.OpenLED(gpio.LEDConfig{Chip: spec.Chip, Lines: spec.Lines})
		if err != nil {
			return fmt.Errorf("hardware.led: %w", err)
		}
		out, mono = l, l.Mono()
	}
	d.led = led.NewDriver(out, mono)
	return nil
}

// simMicConfig is the simulated microphone array of [hardware.sim]. Its
// talker is the same in every run (seed 1): tests render the clean speech
// with it.
func simMicConfig(cfg *config.Box, epoch time.Time) sim.MicConfig {
	return sim.MicConfig{Channels: cfg.Hardware.Sim.MicChannels, Epoch: epoch, Seed: 1, Block: audioBlock,
		NoiseRMS: math.Pow(10, cfg.Hardware.Sim.MicNoiseDBFS/20)}
}

// audioBlock is how much audio the microphones (ALSA, simulated and
// replayed) hand over at once: three Opus packets, encoded in one go. The
// audio path then wakes about 17 times a second rather than 100 (ALSA's
// 10 ms periods), a fifth less CPU for the whole recording daemon; live
// viewers hear the room up to 60 ms later, which a browser's jitter buffer
// hides, and recordings are unchanged (every sample keeps its timestamp).
const audioBlock = 60 * time.Millisecond

// now reads the box's clocks for lesson records.
func now() lesson.Clock {
	c := lesson.Clock{BootID: sysinfo.BootID(), BootTime: sysinfo.BootTime().Seconds()}
	if sysinfo.Clock().Synced {
		t := time.Now().UTC()
		c.Wall = &t
	}
	return c
}

// Run runs every component until ctx ends, then stops them in reverse
// order: the recorder closes an open lesson before capture stops.
func (d *daemon) Run(ctx context.Context) error {
	defer d.catalog.Close()
	ln, err := d.api.Listen()
	if err != nil {
		return err
	}
	capCtx, stopCapture := context.WithCancel(context.Background())
	defer stopCapture()
	recCtx, stopRecorder := context.WithCancel(context.Background())
	defer stopRecorder()
	var wg sync.WaitGroup
	goRun := func(name string, ctx context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("component stopped", "component", name, "err", err)
			}
		}()
	}
	goRun("led", capCtx, d.led.Run)
	goRun("capture", capCtx, d.pipeline.Run)
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		if err := d.recorder.Run(recCtx); err != nil {
			d.log.Error("recorder stopped", "err", err)
		}
	}()
	if d.edges != nil {
		cls := button.NewClassifier(0, 0)
		goRun("button", capCtx, func(ctx context.Context) error {
			return cls.Run(ctx, d.edges, func(ev button.Event) {
				if ev.Kind == button.Hold {
					d.live.Hold() // a hold always ends live view, whatever else it means
				}
				if err := d.recorder.Button(ctx, ev); err != nil && ctx.Err() == nil {
					d.log.Error("button", "err", err)
				}
			})
		})
	}
	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	apiDone := make(chan error, 1)
	go func() { apiDone <- d.api.Serve(apiCtx, ln) }()
	goRun("watchdog", capCtx, d.watchdog)
	goRun("config", capCtx, d.configLoop)
	goRun("uploader", capCtx, d.uploader.Run)
	if d.enroller != nil {
		goRun("enroll", capCtx, d.enroller.Run)
	}

	liveCtx, stopLive := context.WithCancel(context.Background())
	defer stopLive()
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		if err := d.live.Run(liveCtx); err != nil {
			d.log.Error("live view stopped", "err", err)
		}
	}()

	linkCtx, stopLink := context.WithCancel(context.Background())
	defer stopLink()
	linkDone := make(chan struct{})
	if d.link != nil {
		go func() {
			defer close(linkDone)
			if err := d.link.Run(linkCtx); err != nil {
				d.log.Error("uplink stopped", "err", err)
			}
		}()
	} else {
		close(linkDone)
	}

	sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
	d.log.Info("classcapd running", "version", version, "device", d.cfg.Device.ID, "profile", d.cfg.Hardware.Profile,
		"encoder", d.pipeline.Encoder(), "opus", audio.OpusVersion(), "socket", d.cfg.SocketPath(), "lessons", d.store.Root())

	select {
	case <-ctx.Done():
	case err := <-apiDone:
		d.log.Error("control API stopped", "err", err)
	}
	sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	d.log.Info("stopping")
	stopAPI()
	stopLive() // views end (and are logged) before the lesson closes
	<-liveDone
	stopRecorder() // closes an open lesson while media still flows
	<-recDone
	stopLink() // after the recorder: its last events are in the outbox
	<-linkDone
	if d.link != nil {
		d.link.Close()
	}
	d.recIn.Close() // capture no longer waits for the recorder
	stopCapture()
	wg.Wait()
	d.log.Info("stopped")
	return nil
}

// watchdog pings systemd only while the pipeline advances: media flows into
// the stream and the recorder's loop runs.
func (d *daemon) watchdog(ctx context.Context) error {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	t := time.NewTicker(interval / 3)
	defer t.Stop()
	var lastV, lastA uint64
	var lastBeat int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		v, a := d.stream.Counts()
		beat := d.recorder.Status().Heartbeat
		if (v != lastV || a != lastA) && beat != lastBeat {
			sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
		} else {
			d.log.Warn("pipeline stalled; not feeding the watchdog", "video", v, "audio", a)
		}
		lastV, lastA, lastBeat = v, a, beat
	}
}

// The local API.

// newUploader makes the uploader with the [uplink] policy.
func newUploader(cfg *config.Box, cat *catalog.Catalog, store *lesson.Store, hub uploader.Hub, log *slog.Logger) (*uploader.Uploader, error) {
	p, err := uploadPolicy(cfg)
	if err != nil {
		return nil, err
	}
	return uploader.New(uploader.Config{
		Device:             cfg.Device.ID,
		Concurrency:        p.Concurrency,
		Rate:               p.Rate,
		Windows:            p.Windows,
		ClockSynced:        sysinfo.WallPlausible,
		RetentionDays:      p.RetentionDays,
		RetentionFreeBytes: p.RetentionFreeBytes,
	}, cat, store, hub, log), nil
}

func (d *daemon) Status() control.Status {
	var s control.Status
	s.Device, s.Version, s.Profile = d.cfg.Device.ID, version, d.cfg.Hardware.Profile
	s.Uptime = time.Since(d.started).Seconds()
	s.Recorder = d.recorder.Status()
	v, a := d.pipeline.Counts()
	faults := d.pipeline.Faults()
	s.Camera.Encoder, s.Camera.Frames, s.Camera.Fault = d.pipeline.Encoder(), v, faults["camera"]
	s.Microphone.Packets, s.Microphone.Fault = a, faults["microphone"]
	s.Microphone.Dead = d.pipeline.DeadChannels()
	for _, l := range d.pipeline.Levels() {
		s.Microphone.Levels = append(s.Microphone.Levels, control.Level{PeakDBFS: l.PeakDBFS, RMSDBFS: l.RMSDBFS})
	}
	s.Microphone.Array = arrayStatus(d.pipeline, d.audio.Load().Array)
	if du, err := sysinfo.DiskUsage(d.cfg.Device.DataDir); err == nil {
		s.Disk.FreeMB, s.Disk.TotalMB = du.FreeBytes>>20, du.TotalBytes>>20
	}
	c := sysinfo.Clock()
	s.Clock.Synced, s.Clock.Source = c.Synced, c.Source
	p, col := d.led.Current()
	s.LED.Pattern, s.LED.Color = p.Name, col.String()
	if d.link != nil {
		u := d.link.Status()
		s.Uplink = &control.Uplink{Broker: u.Broker, Connected: u.Connected, Outbox: u.Outbox, LastError: u.LastError, Since: u.Since}
	}
	ls := d.live.Status()
	s.Live = &ls
	cs := d.desired.Status()
	s.Config = &cs
	bl := d.uploader.Backlog()
	s.Upload = &control.Upload{BacklogSegments: bl.Segments, BacklogFiles: bl.Files, BacklogBytes: bl.Bytes,
		Damaged: bl.Damaged, Problem: bl.Problem, Window: bl.Window}
	return s
}

func (d *daemon) Start(ctx context.Context, req recorder.StartRequest) (recorder.StartResult, error) {
	return d.recorder.Start(ctx, req)
}

func (d *daemon) Stop(ctx context.Context, req recorder.StopRequest) (lesson.Meta, error) {
	return d.recorder.Stop(ctx, req)
}

func (d *daemon) Lessons() ([]catalog.Lesson, error) { return d.catalog.Lessons() }

func (d *daemon) Lesson(id string) (lesson.Meta, error) { return d.store.Load(id) }

func (d *daemon) Export(id string, w io.Writer) error { return d.store.Export(id, w) }

func (d *daemon) Press(ctx context.Context, hold time.Duration) error {
	if d.simBtn == nil {
		return control.ErrNoSimButton
	}
	return d.simBtn.Press(ctx, hold)
}

var _ control.Daemon = (*daemon)(nil)
