// Package pipeline runs the capture side of the box: the camera into the
// encoder (or straight through, for a camera that delivers H.264), the
// microphone array through resampling, metering and mixdown into Opus, and
// both into the stream that the recorder and live viewers read. Each stream
// is encoded exactly once.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/audio"
	"github.com/classcap/classcap/capture/media"
)

// RawCamera delivers uncompressed pictures. The picture may be reused once
// sink returns.
type RawCamera interface {
	Run(ctx context.Context, sink func(media.RawFrame)) error
}

// H264Camera delivers H.264 access units, passed through untouched.
type H264Camera interface {
	Run(ctx context.Context, sink func(media.AccessUnit)) error
}

// Microphone delivers PCM blocks; the samples may be reused once sink
// returns.
type Microphone interface {
	Run(ctx context.Context, sink func(media.PCM)) error
	Format() (channels, rate int)
}

// Output takes the encoded media (the stream).
type Output interface {
	WriteVideo(media.AccessUnit)
	WriteAudio(media.AudioPacket)
}

// Video is a source of access units: a camera with its encoder.
type Video struct {
	name   string
	nameFn func() string // the name when it can change (encoders chosen at the first picture)
	run    func(ctx context.Context, sink func(media.AccessUnit)) error
	// forceKeyframe asks for an IDR on the next picture; nil when the
	// camera encodes by itself.
	forceKeyframe func()

	// Set for a Reopened source: the source of the last opened camera.
	mu    sync.Mutex
	inner *Video
}

// Reopened is a source that finds its camera again before every run: open
// is called at the start and after each failure, so a camera that is absent
// when the daemon starts, unplugged, or replaced by another (with another
// format) is picked up when it appears. open's error is the fault shown
// meanwhile.
func Reopened(open func() (*Video, error)) *Video {
	v := &Video{}
	v.run = func(ctx context.Context, sink func(media.AccessUnit)) error {
		inner, err := open()
		if err != nil {
			return err
		}
		v.mu.Lock()
		v.inner = inner
		v.mu.Unlock()
		return inner.run(ctx, sink)
	}
	return v
}

func (v *Video) current() *Video {
	if v.run == nil || v.name != "" {
		return v
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.inner == nil {
		return nil
	}
	return v.inner.current()
}

// forceIDR asks for an IDR on the next picture and reports whether the
// source can be asked.
func (v *Video) forceIDR() bool {
	c := v.current()
	if c == nil || c.forceKeyframe == nil {
		return false
	}
	c.forceKeyframe()
	return true
}

// Passthrough wraps a camera that delivers H.264.
func Passthrough(cam H264Camera) *Video {
	return &Video{name: "passthrough", run: cam.Run}
}

// Name is the encoder in use ("passthrough" or the encoder's name), or
// "none" while a Reopened source has not found its camera yet.
func (v *Video) Name() string {
	c := v.current()
	if c == nil {
		return "none"
	}
	if c.nameFn != nil {
		return c.nameFn()
	}
	return c.name
}

// Config sets up a pipeline.
type Config struct {
	AudioChannels   int // Opus output: 1 or 2
	AudioBitrateBps int
	AudioComplexity int
	// RetryMin and RetryMax bound the pause before a failed camera or
	// microphone is tried again: it starts at RetryMin (default 500 ms),
	// doubles on each failure up to RetryMax (default 10 s), and starts over
	// once the device has delivered again.
	RetryMin, RetryMax time.Duration
	// Array, when set, runs the microphone-array chain instead of the
	// plain average (its Rate and OutChannels are filled in).
	Array *array.Config
	// Raw, when set, is handed every block of the microphone as captured
	// (all its channels, its own rate, before any processing). The block's
	// samples are reused once Raw returns; it must not block.
	Raw func(media.PCM)
}

// Pipeline runs a camera and a microphone into an output.
type Pipeline struct {
	cfg   Config
	video *Video
	mic   Microphone
	out   Output
	log   *slog.Logger

	mu     sync.Mutex
	levels []audio.Level
	dead   *audio.DeadMicDetector
	videoN atomic.Uint64
	audioN atomic.Uint64
	errs   map[string]string
	arr    arrayState
	// restartAudio asks the audio half to start again with the settings
	// SetAudio put in cfg (guarded by mu).
	restartAudio chan struct{}
	// restartVideo asks the camera half to start again with the source
	// SetVideo put in video (guarded by mu).
	restartVideo chan struct{}

	// after waits between retries (time.After; a fake in tests).
	after func(time.Duration) <-chan time.Time
}

// New returns a pipeline.
func New(cfg Config, video *Video, mic Microphone, out Output, log *slog.Logger) *Pipeline {
	if cfg.AudioChannels <= 0 {
		cfg.AudioChannels = 1
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 500 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(cfg.RetryMin, 10*time.Second)
	}
	return &Pipeline{cfg: cfg, video: video, mic: mic, out: out, log: log, errs: map[string]string{},
		dead: audio.NewDeadMicDetector(audio.DeadMicConfig{}), after: time.After,
		restartAudio: make(chan struct{}, 1), restartVideo: make(chan struct{}, 1)}
}

// AudioSettings are the settings of the audio half that SetAudio changes.
type AudioSettings struct {
	Channels   int // Opus output: 1 or 2
	BitrateBps int
	Complexity int
	Array      *array.Config // nil: the plain average
}

// SetAudio starts the audio half again at once with new Opus and array
// settings: the microphone is reopened, the encoder and the chain built
// anew. Packets before and after differ (channels), so call it between
// lessons.
func (p *Pipeline) SetAudio(a AudioSettings) {
	if a.Channels <= 0 {
		a.Channels = 1
	}
	p.mu.Lock()
	p.cfg.AudioChannels, p.cfg.AudioBitrateBps, p.cfg.AudioComplexity, p.cfg.Array = a.Channels, a.BitrateBps, a.Complexity, a.Array
	p.mu.Unlock()
	select {
	case p.restartAudio <- struct{}{}:
	default:
	}
}

// SetVideo starts the camera half again at once with v (nil: the same
// source, run again; a Reopened source then opens its camera anew, with
// whatever encoder choice it is given now). The running camera and its
// encoder are stopped and closed first. Pictures before and after may come
// from another encoder, so call it between lessons.
func (p *Pipeline) SetVideo(v *Video) {
	if v != nil {
		p.mu.Lock()
		p.video = v
		p.mu.Unlock()
	}
	select {
	case p.restartVideo <- struct{}{}:
	default:
	}
}

// source returns the video source (SetVideo may change it while it runs).
func (p *Pipeline) source() *Video {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.video
}

// config returns the settings (SetAudio may change them while it runs).
func (p *Pipeline) config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// errRestart ends a run of a half that SetAudio or SetVideo asked to
// restart.
var errRestart = errors.New("restart with new settings")

// ForceKeyframe asks the encoder for an IDR on the next picture and reports
// whether it can (a passthrough camera cannot be asked).
func (p *Pipeline) ForceKeyframe() bool { return p.source().forceIDR() }

// Encoder names the video encoder.
func (p *Pipeline) Encoder() string { return p.source().Name() }

// Levels returns the microphone levels per input channel over the last
// 100 ms.
func (p *Pipeline) Levels() []audio.Level {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]audio.Level(nil), p.levels...)
}

// DeadChannels returns the microphone channels that have been silent for
// a minute while others carried sound.
func (p *Pipeline) DeadChannels() []int { return p.dead.Alarms() }

// Counts returns how many access units and audio packets were produced.
func (p *Pipeline) Counts() (video, audio uint64) { return p.videoN.Load(), p.audioN.Load() }

// Faults returns the current fault of each part ("camera", "microphone")
// that has one.
func (p *Pipeline) Faults() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.errs))
	for k, v := range p.errs {
		out[k] = v
	}
	return out
}

func (p *Pipeline) setFault(part string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		delete(p.errs, part)
	} else {
		p.errs[part] = err.Error()
	}
}

// Run runs both halves until ctx ends. A part that fails is tried again
// after a pause (a device may come back, or appear for the first time); its
// fault shows in Faults meanwhile, and the other part keeps running.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.keepRunning(ctx, "camera", p.videoN.Load, p.runVideo)
	}()
	go func() {
		defer wg.Done()
		p.keepRunning(ctx, "microphone", p.audioN.Load, p.runAudio)
	}()
	wg.Wait()
	return ctx.Err()
}

// untilRestart returns a context that ends with ctx or when a restart is
// asked on restart, and whether the restart ended it.
func untilRestart(ctx context.Context, restart <-chan struct{}) (context.Context, context.CancelFunc, *atomic.Bool) {
	ctx, cancel := context.WithCancel(ctx)
	restarted := new(atomic.Bool)
	go func() {
		select {
		case <-restart:
			restarted.Store(true)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel, restarted
}

// runVideo runs the video source until it fails, ctx ends, or SetVideo
// asks for a restart (then errRestart).
func (p *Pipeline) runVideo(ctx context.Context) error {
	v := p.source()
	ctx, cancel, restarted := untilRestart(ctx, p.restartVideo)
	defer cancel()
	err := v.run(ctx, func(au media.AccessUnit) {
		if p.videoN.Add(1) == 1 || p.hasFault("camera") {
			p.setFault("camera", nil)
		}
		p.out.WriteVideo(au)
	})
	if restarted.Load() {
		p.log.Info("video restarted with new settings")
		return errRestart
	}
	return err
}

func (p *Pipeline) hasFault(part string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.errs[part]
	return ok
}

// keepRunning runs part until ctx ends, trying again after each failure
// with a pause that grows while the part delivers nothing (produced counts
// what it delivered) and starts over once it has delivered.
func (p *Pipeline) keepRunning(ctx context.Context, part string, produced func() uint64, run func(context.Context) error) {
	backoff := p.cfg.RetryMin
	for {
		before := produced()
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRestart) {
			continue
		}
		if err == nil {
			err = errors.New("stopped")
		}
		if produced() != before {
			backoff = p.cfg.RetryMin
		}
		p.log.Error("capture failed; retrying", "part", part, "err", err, "retry_in", backoff)
		p.setFault(part, err)
		select {
		case <-ctx.Done():
			return
		case <-p.after(backoff):
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
	}
}

// MicOpener is a Microphone that must be opened before each run (see
// ReopenedMicrophone).
type MicOpener interface {
	Microphone
	// Open finds and opens the device; Format and Run then use it.
	Open() error
}

// ReopenedMicrophone is a microphone that is opened again before every
// run: at the start and after each failure, so a microphone absent when the
// daemon starts, unplugged, or replaced (with another channel count) is
// picked up when it appears. open's error is the fault shown meanwhile.
func ReopenedMicrophone(open func() (Microphone, error)) MicOpener {
	return &reopenedMic{open: open}
}

type reopenedMic struct {
	open func() (Microphone, error)
	mu   sync.Mutex
	mic  Microphone
}

func (m *reopenedMic) Open() error {
	mic, err := m.open()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.mic = mic
	m.mu.Unlock()
	return nil
}

func (m *reopenedMic) get() Microphone {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mic
}

func (m *reopenedMic) Format() (channels, rate int) {
	if mic := m.get(); mic != nil {
		return mic.Format()
	}
	return 0, 0
}

func (m *reopenedMic) Run(ctx context.Context, sink func(media.PCM)) error {
	mic := m.get()
	if mic == nil {
		return errors.New("microphone not opened")
	}
	return mic.Run(ctx, sink)
}

func (p *Pipeline) runAudio(ctx context.Context) error {
	if o, ok := p.mic.(MicOpener); ok {
		if err := o.Open(); err != nil {
			return err
		}
	}
	channels, rate := p.mic.Format()
	if channels <= 0 || rate <= 0 {
		return fmt.Errorf("microphone reports %d channels at %d Hz", channels, rate)
	}
	cfg := p.config()
	enc, err := audio.NewEncoder(audio.EncoderConfig{
		Channels: cfg.AudioChannels, BitrateBps: cfg.AudioBitrateBps, Complexity: cfg.AudioComplexity})
	if err != nil {
		return fmt.Errorf("opus: %w", err)
	}
	defer enc.Close()
	var rs *audio.Resampler
	if rate != media.AudioRate {
		if rs, err = audio.NewResampler(rate, channels); err != nil {
			return fmt.Errorf("resample %d Hz: %w", rate, err)
		}
	}
	meter := audio.NewMeter(channels, rate)
	mix := p.arr.mixer(cfg, channels, &audio.Mixer{Channels: cfg.AudioChannels}, p.log)
	emit := func(pkt media.AudioPacket) {
		p.audioN.Add(1)
		p.out.WriteAudio(pkt)
	}
	var procErr error
	ctx, cancel, restarted := untilRestart(ctx, p.restartAudio)
	defer cancel()
	// Per block (50 to 100 a second) only the samples are touched: levels
	// and faults change at most once per 100 ms meter window.
	var windows uint64
	faulted := p.hasFault("microphone")
	err = p.mic.Run(ctx, func(pcm media.PCM) {
		meter.Write(pcm)
		if w := meter.Windows(); w != windows {
			windows = w
			l := meter.Levels()
			p.mu.Lock()
			p.levels = l
			p.mu.Unlock()
			p.dead.Observe(l, pcm.PTS)
			faulted = p.hasFault("microphone")
		}
		if faulted {
			p.setFault("microphone", nil)
			faulted = false
		}
		if cfg.Raw != nil {
			cfg.Raw(pcm)
		}
		if rs != nil {
			var err error
			if pcm, err = rs.Process(pcm); err != nil {
				procErr = err
				cancel()
				return
			}
		}
		out, err := mix(pcm)
		if err == nil {
			err = enc.Write(out, emit)
		}
		if err != nil {
			procErr = err
			cancel()
		}
	})
	if procErr != nil {
		return procErr
	}
	if restarted.Load() {
		p.log.Info("audio restarted with new settings", "channels", cfg.AudioChannels, "bitrate_bps", cfg.AudioBitrateBps)
		return errRestart
	}
	return err
}
