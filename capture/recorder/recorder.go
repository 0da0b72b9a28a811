// Package recorder is the box's one recording state machine (idle,
// recording, stopping, error). Every request to record — the button, the
// local CLI, and the hub — goes through its single command channel, and one
// goroutine owns the lesson being written.
//
// A lesson starts at once: on a start the encoder is asked for a keyframe
// (the next picture), or, for a camera that encodes by itself, the lesson
// begins with the pictures since the last keyframe, kept for this purpose.
// After a crash, the lesson that was open is repaired and continued with a
// discontinuity and a gap entry.
//
// A device that goes away during a lesson does not end it. When the camera
// is lost (its fault is reported, or no picture comes for VideoLossAfter),
// sound goes on alone; when pictures come back, the lesson continues from
// the next keyframe after a discontinuity, with a gap entry in lesson.json.
// A pause in the sound is recorded as a gap the same way. While a device
// has a fault the LED shows the error pattern (and the recording goes on).
//
// Teacher first: a remote start (from the hub) does not record at once. The
// LED shows the remote-start-pending pattern for the veto window; a hold of
// the button declines it, a tap accepts it at once, and otherwise it begins
// when the window ends (unless its deadline passed meanwhile). A remote stop
// ends the lesson like a tap and keeps everything recorded.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/device/button"
	"github.com/classcap/classcap/device/led"
)

// States of the recorder.
const (
	StateIdle      = "idle"
	StateRecording = "recording"
	StateStopping  = "stopping"
	StateError     = "error"
)

// Errors a start or stop can be refused with.
var (
	ErrDiskLow      = errors.New("not enough free disk space")
	ErrNotRecording = errors.New("not recording")
	ErrRecording    = errors.New("already recording")
	ErrNoVideo      = errors.New("no picture from the camera")
	ErrBadRequest   = errors.New("bad request")
	// ErrDeclined: the teacher held the button during the veto window.
	ErrDeclined = errors.New("declined by the teacher")
	// ErrBusy: another remote start is waiting for the teacher, or the LED
	// shows a recording that identify would hide.
	ErrBusy = errors.New("busy")
	// ErrExpired: a remote start's deadline passed before it could begin.
	ErrExpired = errors.New("expired")
	// ErrCancelled: a stop or shutdown ended a start before it began.
	ErrCancelled = errors.New("cancelled")
)

// Config is the recorder's settings.
type Config struct {
	Device            string
	SegmentDuration   time.Duration
	DefaultVisibility string
	MinFreeBytes      uint64 // refuse to start below this
	StopFreeBytes     uint64 // stop a lesson (cleanly) below this
	AudioChannels     int
	AudioBitrateBps   int
	// FirstFrameTimeout bounds how long a start waits for a picture.
	FirstFrameTimeout time.Duration
	// ResumeAfterCrash continues a lesson a crash left open.
	ResumeAfterCrash bool
	// VideoLossAfter is how long a lesson goes without a picture before
	// the camera counts as lost (default 2 s); a camera fault counts at
	// once.
	VideoLossAfter time.Duration
	// AudioGapAfter is the shortest pause in the sound recorded as a gap
	// (default 300 ms).
	AudioGapAfter time.Duration
}

// Settings are the part of Config that may change while the recorder runs
// (the hub's configuration). They take effect at the next lesson: while one
// records or starts, they wait until it has ended.
type Settings struct {
	SegmentDuration   time.Duration
	DefaultVisibility string
	MinFreeBytes      uint64
	StopFreeBytes     uint64
	AudioChannels     int
	AudioBitrateBps   int
}

// Input is the media the recorder reads (a lossless stream reader).
type Input struct {
	Video <-chan media.AccessUnit
	Audio <-chan media.AudioPacket
	// Raw, when set, carries the microphones' own channels, kept beside
	// the lesson's segments (lesson.Recording.WriteRaw).
	Raw <-chan media.PCM
}

// Deps are the recorder's collaborators.
type Deps struct {
	Store   *lesson.Store
	Catalog *catalog.Catalog
	Input   Input
	// ForceKeyframe asks the encoder for an IDR; false when it cannot.
	ForceKeyframe func() bool
	// Encoder names the video encoder in use, for lesson.json.
	Encoder func() string
	// AudioProcessing, when set, names the audio processing recorded in
	// lesson.json.
	AudioProcessing func() *lesson.AudioProcessing
	// ShowLED shows a pattern on the status LED.
	ShowLED func(led.Pattern)
	// FreeBytes reports the free space where lessons are written.
	FreeBytes func() (uint64, error)
	// Now reports the box's clocks.
	Now func() lesson.Clock
	// Faults reports the devices that have a fault now ("camera",
	// "microphone") with the error; nil means none ever.
	Faults func() map[string]string
	// Notify, when set, is told about lessons started and stopped and
	// segments closed, in order (segments from the lesson's save goroutine,
	// the rest from the recorder's). It must not block for long.
	Notify func(Notice)
	Log    *slog.Logger
}

// Notice kinds.
const (
	NoticeLessonStarted = "lesson.started"
	NoticeSegmentClosed = "segment.closed"
	NoticeLessonStopped = "lesson.stopped"
)

// Notice is something that happened to a lesson.
type Notice struct {
	Kind    string
	Meta    lesson.Meta
	Segment lesson.Segment // on segment.closed
	At      lesson.Clock
}

// StartRequest asks for a recording.
type StartRequest struct {
	By         string // "button", "cli", "hub:<user>", ...
	Visibility string // empty: the configured default
}

// RemoteStartRequest asks for a recording on behalf of someone who is not
// in the room; the teacher sees it and may decline it first.
type RemoteStartRequest struct {
	StartRequest
	ID string // the command's id, shown in Status
	// Veto is how long the LED shows the request before recording begins;
	// 0 begins at once.
	Veto time.Duration
	// Deadline, when set, is the moment after which the request must not
	// begin (the command's expiry, on the monotonic clock).
	Deadline time.Time
}

// StartResult says how a start went.
type StartResult struct {
	LessonID string
	// VetoWaited is how long a remote start was shown before it began.
	VetoWaited time.Duration
	// FirstFrameLatency is the time from the request to the lesson's first
	// picture being taken.
	FirstFrameLatency time.Duration
}

// StopRequest asks to end the recording.
type StopRequest struct {
	By     string
	Reason string
}

// Status is a snapshot of the recorder.
type Status struct {
	State             string  `json:"state"`
	Reason            string  `json:"reason,omitempty"` // why it is in error
	Lesson            string  `json:"lesson,omitempty"`
	StartedBy         string  `json:"started_by,omitempty"`
	Visibility        string  `json:"visibility,omitempty"`
	Recorded          float64 `json:"recorded_seconds"` // media in closed segments
	Segments          int     `json:"segments"`
	LastLesson        string  `json:"last_lesson,omitempty"`
	FirstFrameLatency float64 `json:"first_frame_latency_ms,omitempty"`
	Resumed           bool    `json:"resumed,omitempty"` // continued after a crash
	// Fault names the devices that are failing, e.g. "camera: ...": the
	// LED shows the error pattern meanwhile.
	Fault string `json:"fault,omitempty"`
	// VideoGap is true while a lesson records sound without pictures.
	VideoGap bool `json:"video_gap,omitempty"`
	// RemoteStart is a remote start waiting out the teacher's veto window.
	RemoteStart *RemoteStartStatus `json:"remote_start,omitempty"`
	Heartbeat   int64              `json:"-"` // advances while the loop runs
}

// RemoteStartStatus describes a remote start the teacher may still veto.
type RemoteStartStatus struct {
	ID         string  `json:"id"`
	By         string  `json:"by"`
	Visibility string  `json:"visibility"`
	VetoLeft   float64 `json:"veto_left_seconds"`
}

type command struct {
	start    *StartRequest
	remote   *RemoteStartRequest
	identify time.Duration
	stop     *StopRequest
	press    *button.Event
	settings *Settings
	// abandon leaves the lesson open and ends Run, as a crash would (tests).
	abandon bool
	reply   chan reply
}

type reply struct {
	start StartResult
	meta  lesson.Meta
	err   error
}

// Recorder is the state machine.
type Recorder struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	cmds chan command
	snap chan Status

	// Owned by Run's goroutine.
	state      string
	reason     string
	rec        *lesson.Recording
	pending    *pendingStart // a start waiting for its first picture
	resume     *lesson.Recovered
	gop        []media.AccessUnit // since the last IDR, while idle
	audioBuf   []media.AudioPacket
	rawBuf     []media.PCM // raw audio of the last rawPreRoll, while no lesson is open
	status     Status
	heartbeat  int64
	lastLesson string
	diskError  bool // the error state is for lack of disk space; it clears with space

	fault    string    // device faults, as shown in Status
	camFault string    // the last camera fault seen during this lesson
	micFault string    // the last microphone fault seen during this lesson
	lastVAt  time.Time // when the lesson's last picture arrived
	runAt    time.Time // when this run of the lesson took its first picture
	lastAEnd time.Duration
	haveA    bool          // lastAEnd is set
	lastVPTS time.Duration // pipeline time of the lesson's last picture
	stopping *pendingStop  // a stop waiting for the sound to catch up
	vgap     *videoGap     // the camera is away during the lesson
	remote   *pendingRemote
	identify time.Time // the LED blinks identify until then
	timer    *time.Timer
	next     *Settings // settings waiting for the lesson to end
}

// videoGap is a camera loss during a lesson.
type videoGap struct {
	at     time.Duration // media time where pictures stopped
	reason string
}

// stopDrain bounds how long a stop waits for the sound of the last
// pictures: sound reaches the recorder later than the pictures of the same
// moment (it is processed and encoded in blocks), so a lesson closed at
// once would lose its last words.
const stopDrain = 500 * time.Millisecond

// pendingStop is a stop waiting until the sound has caught up with the last
// picture, or until its deadline.
type pendingStop struct {
	req     StopRequest
	replies []chan reply
	until   time.Time
}

// pendingRemote is a remote start shown to the teacher, not yet begun.
type pendingRemote struct {
	req   RemoteStartRequest
	at    time.Time
	until time.Time
	reply chan reply
}

type pendingStart struct {
	req       StartRequest
	at        time.Time
	reply     chan reply // nil for a start nobody waits on (resume, button)
	usedCache bool
	keyAsked  time.Duration // PTS after which the forced IDR may come
}

// New returns a recorder.
func New(cfg Config, deps Deps) *Recorder {
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = 4 * time.Second
	}
	if cfg.FirstFrameTimeout <= 0 {
		cfg.FirstFrameTimeout = 5 * time.Second
	}
	if cfg.DefaultVisibility == "" {
		cfg.DefaultVisibility = lesson.VisibilityPrivate
	}
	if cfg.AudioChannels <= 0 {
		cfg.AudioChannels = 1
	}
	if cfg.VideoLossAfter <= 0 {
		cfg.VideoLossAfter = 2 * time.Second
	}
	if cfg.AudioGapAfter <= 0 {
		cfg.AudioGapAfter = 300 * time.Millisecond
	}
	if deps.Encoder == nil {
		deps.Encoder = func() string { return "" }
	}
	if deps.Faults == nil {
		deps.Faults = func() map[string]string { return nil }
	}
	if deps.ShowLED == nil {
		deps.ShowLED = func(led.Pattern) {}
	}
	if deps.ForceKeyframe == nil {
		deps.ForceKeyframe = func() bool { return false }
	}
	r := &Recorder{cfg: cfg, deps: deps, log: deps.Log, cmds: make(chan command), snap: make(chan Status, 1), state: StateIdle}
	r.snap <- Status{State: StateIdle}
	return r
}

// Start asks for a recording and waits until its first picture is taken.
func (r *Recorder) Start(ctx context.Context, req StartRequest) (StartResult, error) {
	rep, err := r.do(ctx, command{start: &req})
	return rep.start, err
}

// RemoteStart asks for a recording on behalf of a remote user. It returns
// once recording has begun (its first picture taken) or the request was
// declined (ErrDeclined), expired (ErrExpired) or refused.
func (r *Recorder) RemoteStart(ctx context.Context, req RemoteStartRequest) (StartResult, error) {
	rep, err := r.do(ctx, command{remote: &req})
	return rep.start, err
}

// Identify blinks the identify pattern on the LED for d, so someone can find
// the box. It is refused (ErrBusy) while the LED shows a recording or a
// remote start, which identify must not hide.
func (r *Recorder) Identify(ctx context.Context, d time.Duration) error {
	_, err := r.do(ctx, command{identify: d})
	return err
}

// Stop ends the recording and returns the finished lesson.
func (r *Recorder) Stop(ctx context.Context, req StopRequest) (lesson.Meta, error) {
	rep, err := r.do(ctx, command{stop: &req})
	return rep.meta, err
}

// Reconfigure changes the recorder's settings for the next lesson; a
// lesson recording or starting keeps those it began with.
func (r *Recorder) Reconfigure(ctx context.Context, s Settings) error {
	_, err := r.do(ctx, command{settings: &s})
	return err
}

// Button hands a button gesture to the recorder: a tap starts or stops.
func (r *Recorder) Button(ctx context.Context, ev button.Event) error {
	_, err := r.do(ctx, command{press: &ev})
	return err
}

func (r *Recorder) do(ctx context.Context, c command) (reply, error) {
	c.reply = make(chan reply, 1)
	select {
	case r.cmds <- c:
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
	select {
	case rep := <-c.reply:
		return rep, rep.err
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

// Status returns the latest snapshot.
func (r *Recorder) Status() Status {
	s := <-r.snap
	r.snap <- s
	return s
}

func (r *Recorder) publish() {
	s := Status{State: r.state, Reason: r.reason, LastLesson: r.lastLesson, Heartbeat: r.heartbeat}
	if r.rec != nil {
		m := r.rec.Meta()
		s.Lesson, s.StartedBy, s.Visibility = m.ID, m.StartedBy, m.Visibility
		s.Recorded, s.Segments = m.Duration, len(m.Segments)
		s.Resumed = len(m.Runs) > 1
	} else if r.pending != nil {
		s.StartedBy = r.pending.req.By
		s.Visibility = r.pending.req.Visibility
	}
	s.FirstFrameLatency = r.status.FirstFrameLatency
	s.Fault, s.VideoGap = r.fault, r.vgap != nil
	if p := r.remote; p != nil {
		s.RemoteStart = &RemoteStartStatus{ID: p.req.ID, By: p.req.By, Visibility: p.req.Visibility,
			VetoLeft: max(0, time.Until(p.until).Seconds())}
	}
	r.status = s
	<-r.snap
	r.snap <- s
}

func (r *Recorder) setState(state, reason string) {
	r.state, r.reason = state, reason
	r.diskError = false
	r.showLED()
	r.publish()
}

// showLED shows the state's pattern, or the error pattern while a device
// has a fault. A remote start waiting for the teacher comes first; identify
// shows while nothing is recorded.
func (r *Recorder) showLED() {
	switch {
	case r.remote != nil:
		r.deps.ShowLED(led.Pending)
	case r.state != StateRecording && r.state != StateStopping && time.Now().Before(r.identify):
		r.deps.ShowLED(led.Identify)
	case r.state == StateError || r.fault != "" && r.state != StateStopping:
		r.deps.ShowLED(led.Error)
	case r.state == StateIdle:
		r.deps.ShowLED(led.Idle)
	case r.state == StateRecording:
		r.deps.ShowLED(led.Recording)
	case r.state == StateStopping:
		r.deps.ShowLED(led.Stopping)
	}
}

// checkDevices follows the devices' faults: the LED and status show them,
// and a camera lost during a lesson starts a video gap.
func (r *Recorder) checkDevices() {
	faults := r.deps.Faults()
	var parts []string
	for _, k := range []string{"camera", "microphone"} {
		if f := faults[k]; f != "" {
			parts = append(parts, k+": "+f)
		}
	}
	if f := faults["camera"]; f != "" {
		r.camFault = f
	}
	if f := faults["microphone"]; f != "" {
		r.micFault = f
	}
	if fault := strings.Join(parts, "; "); fault != r.fault {
		if fault != "" {
			r.log.Warn("device fault", "fault", fault)
		} else {
			r.log.Info("devices back")
		}
		r.fault = fault
		r.showLED()
	}
	if r.rec == nil || r.vgap != nil {
		return
	}
	switch {
	case faults["camera"] != "":
		r.beginVideoGap("camera lost: " + faults["camera"])
	case time.Since(r.lastVAt) > r.cfg.VideoLossAfter:
		r.beginVideoGap(fmt.Sprintf("camera: no picture for %v", r.cfg.VideoLossAfter))
	}
}

// beginVideoGap goes on recording sound alone until the camera is back.
func (r *Recorder) beginVideoGap(reason string) {
	if err := r.rec.VideoGap(); err != nil {
		r.fail(err)
		return
	}
	r.vgap = &videoGap{at: r.rec.VideoEnd(), reason: reason}
	r.log.Warn("camera lost during the lesson; recording sound alone", "lesson", r.rec.Meta().ID, "reason", reason,
		"at", r.vgap.at)
	// The next picture must be a keyframe; a camera that encodes by itself
	// sends one on its own.
	r.deps.ForceKeyframe()
}

// endVideoGap records the gap up to media time end.
func (r *Recorder) endVideoGap(end time.Duration) {
	g := r.vgap
	r.vgap = nil
	r.rec.AddGap(lesson.Gap{At: g.at.Seconds(), Duration: max(0, end-g.at).Seconds(), Reason: g.reason, Media: lesson.GapVideo})
	r.log.Info("camera back; the lesson goes on", "lesson", r.rec.Meta().ID, "gap", end-g.at)
}

// closeGaps records a video gap still open when a lesson ends.
func (r *Recorder) closeGaps() {
	if r.rec == nil || r.vgap == nil {
		return
	}
	end := r.vgap.at
	if r.haveA {
		end = max(end, r.rec.MediaTime(r.lastAEnd))
	}
	r.endVideoGap(end)
}

// Run owns the state machine until ctx ends; an open lesson is then closed
// cleanly.
func (r *Recorder) Run(ctx context.Context) error {
	r.recover()
	if r.resume != nil {
		r.beginStart(StartRequest{By: r.resume.Meta.StartedBy, Visibility: r.resume.Meta.Visibility}, nil)
	} else {
		r.setState(StateIdle, "")
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	r.timer = time.NewTimer(time.Hour)
	defer r.timer.Stop()
	for {
		select {
		case <-r.timer.C:
			r.timers()
		case <-ctx.Done():
			r.shutdown()
			return nil
		case c := <-r.cmds:
			if c.abandon {
				if w := r.stopping; w != nil {
					for _, rep := range w.replies {
						rep <- reply{err: fmt.Errorf("%w: recorder abandoned", ErrCancelled)}
					}
					r.stopping = nil
				}
				if r.rec != nil {
					r.rec.Abandon()
					r.rec = nil
				}
				c.reply <- reply{}
				return nil
			}
			r.handle(c)
		case au := <-r.deps.Input.Video:
			r.video(au)
		case p := <-r.deps.Input.Audio:
			r.audio(p)
		case p := <-r.deps.Input.Raw:
			r.raw(p)
		case <-tick.C:
			r.heartbeat++
			r.checkDevices()
			r.checkPending()
			if r.heartbeat%4 == 1 {
				// Once a second: an hour of recording is a few GB, so a
				// second is far inside the margin, and each look is a
				// system call that wakes the Go runtime's monitor.
				r.checkDisk()
			}
			r.applySettings()
			r.publish()
		}
	}
}

func (r *Recorder) handle(c command) {
	switch {
	case c.start != nil:
		if r.rec != nil || r.pending != nil {
			c.reply <- reply{err: ErrRecording}
			return
		}
		if r.remote != nil {
			c.reply <- reply{err: fmt.Errorf("%w: remote start %s is waiting for the teacher (tap the button to accept it)", ErrBusy, r.remote.req.ID)}
			return
		}
		r.beginStart(*c.start, c.reply)
	case c.stop != nil:
		if p := r.remote; p != nil && r.rec == nil && r.pending == nil {
			r.remote = nil
			r.showLED()
			r.publish()
			p.reply <- reply{err: fmt.Errorf("%w: stopped by %s before it began", ErrCancelled, c.stop.By)}
			c.reply <- reply{}
			return
		}
		if r.rec == nil && r.pending == nil {
			c.reply <- reply{err: ErrNotRecording}
			return
		}
		r.beginStop(*c.stop, c.reply)
	case c.press != nil:
		c.reply <- reply{}
		r.press(*c.press)
	case c.settings != nil:
		r.next = c.settings
		r.applySettings()
		c.reply <- reply{}
	case c.remote != nil:
		r.remoteStart(*c.remote, c.reply)
	case c.identify > 0:
		if r.rec != nil || r.pending != nil || r.remote != nil {
			c.reply <- reply{err: fmt.Errorf("%w: the LED is showing a recording or a remote start", ErrBusy)}
			return
		}
		r.identify = time.Now().Add(c.identify)
		r.showLED()
		r.armTimer()
		c.reply <- reply{}
	}
}

// applySettings takes the settings that wait, once no lesson records or
// starts.
func (r *Recorder) applySettings() {
	n := r.next
	if n == nil || r.rec != nil || r.pending != nil {
		return
	}
	r.next = nil
	if n.SegmentDuration > 0 {
		r.cfg.SegmentDuration = n.SegmentDuration
	}
	if n.DefaultVisibility != "" {
		r.cfg.DefaultVisibility = n.DefaultVisibility
	}
	r.cfg.MinFreeBytes, r.cfg.StopFreeBytes = n.MinFreeBytes, n.StopFreeBytes
	if n.AudioChannels > 0 && n.AudioChannels != r.cfg.AudioChannels {
		r.cfg.AudioChannels = n.AudioChannels
		r.audioBuf = nil // packets of the old format
	}
	r.cfg.AudioBitrateBps = n.AudioBitrateBps
	r.log.Info("settings for the next lesson", "segment", r.cfg.SegmentDuration, "visibility", r.cfg.DefaultVisibility)
}

// remoteStart shows a remote start to the teacher, or begins it at once when
// there is no veto window.
func (r *Recorder) remoteStart(req RemoteStartRequest, rep chan reply) {
	switch {
	case r.rec != nil || r.pending != nil:
		rep <- reply{err: ErrRecording}
		return
	case r.remote != nil:
		rep <- reply{err: fmt.Errorf("%w: remote start %s is waiting for the teacher", ErrBusy, r.remote.req.ID)}
		return
	}
	r.applySettings()
	if req.Visibility == "" {
		req.Visibility = r.cfg.DefaultVisibility
	}
	if !lesson.ValidVisibility(req.Visibility) {
		rep <- reply{err: fmt.Errorf("%w: visibility %q is not one of private, coaching, library", ErrBadRequest, req.Visibility)}
		return
	}
	now := time.Now()
	if !req.Deadline.IsZero() && now.After(req.Deadline) {
		rep <- reply{err: fmt.Errorf("%w: its deadline passed before it reached the recorder", ErrExpired)}
		return
	}
	if req.Veto <= 0 {
		r.beginStart(req.StartRequest, rep)
		return
	}
	r.identify = time.Time{}
	r.remote = &pendingRemote{req: req, at: now, until: now.Add(req.Veto), reply: rep}
	r.log.Info("remote start shown to the teacher", "id", req.ID, "by", req.By, "veto", req.Veto)
	r.showLED()
	r.publish()
	r.armTimer()
}

// acceptRemote begins a remote start the teacher did not decline.
func (r *Recorder) acceptRemote(how string) {
	p := r.remote
	r.remote = nil
	if !p.req.Deadline.IsZero() && time.Now().After(p.req.Deadline) {
		r.log.Info("remote start expired while shown to the teacher", "id", p.req.ID)
		r.showLED()
		r.publish()
		p.reply <- reply{err: fmt.Errorf("%w: its deadline passed during the teacher's veto window", ErrExpired)}
		return
	}
	r.log.Info("remote start accepted", "id", p.req.ID, "how", how)
	waited := time.Since(p.at)
	rep := make(chan reply, 1)
	r.beginStart(p.req.StartRequest, rep)
	// beginStart answers at once on a refusal, or later from open(); relay
	// the answer with the time waited.
	go func() {
		res := <-rep
		res.start.VetoWaited = waited
		p.reply <- res
	}()
}

// declineRemote ends a remote start the teacher refused.
func (r *Recorder) declineRemote() {
	p := r.remote
	r.remote = nil
	r.log.Info("remote start declined by the teacher", "id", p.req.ID, "by", p.req.By)
	r.showLED()
	r.publish()
	p.reply <- reply{err: ErrDeclined}
}

// timers handles the veto window's end and identify's end.
func (r *Recorder) timers() {
	now := time.Now()
	if r.stopping != nil && !now.Before(r.stopping.until) {
		r.finishStop()
	}
	if r.remote != nil && !now.Before(r.remote.until) {
		r.acceptRemote("veto window ended")
	}
	if !r.identify.IsZero() && !now.Before(r.identify) {
		r.identify = time.Time{}
		r.showLED()
	}
	r.armTimer()
}

// armTimer sets the loop's timer to the next veto or identify deadline.
func (r *Recorder) armTimer() {
	var next time.Time
	if r.remote != nil {
		next = r.remote.until
	}
	if r.stopping != nil && (next.IsZero() || r.stopping.until.Before(next)) {
		next = r.stopping.until
	}
	if !r.identify.IsZero() && (next.IsZero() || r.identify.Before(next)) {
		next = r.identify
	}
	if next.IsZero() {
		return
	}
	if !r.timer.Stop() {
		select {
		case <-r.timer.C:
		default:
		}
	}
	r.timer.Reset(max(0, time.Until(next)))
}

func (r *Recorder) press(ev button.Event) {
	if r.remote != nil {
		switch ev.Kind {
		case button.Tap:
			r.acceptRemote("tap")
		case button.Hold:
			r.declineRemote()
		}
		return
	}
	switch ev.Kind {
	case button.Tap:
		if r.rec != nil || r.pending != nil {
			r.beginStop(StopRequest{By: "button", Reason: "tap"}, nil)
			return
		}
		r.beginStart(StartRequest{By: "button"}, nil)
	case button.Hold:
		// A hold vetoes remote requests; none is waiting on this box.
		r.log.Info("button held", "held", ev.Held)
	}
}

func (r *Recorder) beginStart(req StartRequest, rep chan reply) {
	r.applySettings() // a lesson that just ended let them through
	if req.Visibility == "" {
		req.Visibility = r.cfg.DefaultVisibility
	}
	if !lesson.ValidVisibility(req.Visibility) {
		err := fmt.Errorf("%w: visibility %q is not one of private, coaching, library", ErrBadRequest, req.Visibility)
		if rep != nil {
			rep <- reply{err: err}
		}
		return
	}
	if free, err := r.deps.FreeBytes(); err == nil && free < r.cfg.MinFreeBytes {
		reason := fmt.Sprintf("disk: %d MB free, a lesson needs at least %d MB", free>>20, r.cfg.MinFreeBytes>>20)
		r.log.Error("recording refused", "reason", reason)
		r.setState(StateError, reason)
		r.diskError = true
		if rep != nil {
			rep <- reply{err: fmt.Errorf("%w: %s", ErrDiskLow, reason)}
		}
		return
	}
	p := &pendingStart{req: req, at: time.Now(), reply: rep}
	r.pending = p
	r.setState(StateRecording, "")
	if r.deps.ForceKeyframe() {
		// The next picture will be an IDR; older cached ones are not used.
		if n := len(r.gop); n > 0 {
			p.keyAsked = r.gop[n-1].PTS
		}
		r.gop = r.gop[:0]
		return
	}
	// A camera that encodes by itself: begin with the pictures since its
	// last keyframe, so the lesson still starts at once.
	if len(r.gop) > 0 && r.gop[0].IDR {
		gop := r.gop
		r.gop = nil
		audio := r.audioBuf
		r.audioBuf = nil
		p.usedCache = true
		for _, au := range gop {
			r.video(au)
		}
		for _, a := range audio {
			r.audio(a)
		}
	}
}

// checkPending fails a start that got no picture in time.
func (r *Recorder) checkPending() {
	p := r.pending
	if p == nil || r.rec != nil || time.Since(p.at) < r.cfg.FirstFrameTimeout {
		return
	}
	r.pending = nil
	reason := fmt.Sprintf("camera: no picture within %v of the start", r.cfg.FirstFrameTimeout)
	r.log.Error("recording failed to start", "reason", reason)
	r.setState(StateError, reason)
	if p.reply != nil {
		p.reply <- reply{err: fmt.Errorf("%w: %s", ErrNoVideo, reason)}
	}
}

func (r *Recorder) video(au media.AccessUnit) {
	if r.rec == nil && r.pending == nil {
		// Idle: keep the pictures since the last keyframe.
		if au.IDR {
			r.gop = r.gop[:0]
		}
		if len(r.gop) < 600 && (au.IDR || len(r.gop) > 0) {
			r.gop = append(r.gop, au)
		}
		return
	}
	if r.stopping != nil {
		return // the lesson ends at the picture before the stop
	}
	if r.rec == nil {
		if !au.IDR || au.PTS <= r.pending.keyAsked && r.pending.keyAsked > 0 {
			return
		}
		if err := r.open(au); err != nil {
			r.fail(err)
			return
		}
	} else if r.vgap != nil {
		if !au.IDR {
			return // the lesson goes on from a keyframe
		}
		sps, pps := h264.FindParams(au.NALUs)
		if m := r.rec.Meta(); sps != nil && pps != nil && (string(sps) != string(m.Video.SPS) || string(pps) != string(m.Video.PPS)) {
			r.restartLesson(au)
			return
		}
		r.endVideoGap(r.rec.MediaTime(au.PTS))
	}
	r.lastVAt = time.Now()
	if err := r.rec.WriteVideo(au); err != nil && !errors.Is(err, segment.ErrNeedKeyframe) {
		r.fail(err)
		return
	}
	r.lastVPTS = max(r.lastVPTS, au.PTS)
	if len(r.audioBuf) > 0 {
		// The sound that came while the start waited for this keyframe
		// (the writer drops what is older than the lesson's first picture).
		buf := r.audioBuf
		r.audioBuf = nil
		for _, a := range buf {
			r.audio(a)
		}
	}
	if len(r.rawBuf) > 0 {
		r.flushRaw()
	}
}

// audioPreRoll bounds the sound kept while a start waits for its keyframe.
const audioPreRoll = time.Second

// rawPreRoll is how much raw audio is kept while no lesson is open: a
// lesson can begin with pictures from before its start (the cached ones,
// or the keyframe that arrives after the sound of the same moment).
const rawPreRoll = 3 * time.Second

// raw keeps a block of the microphones' own channels beside the lesson, or
// for its start.
func (r *Recorder) raw(p media.PCM) {
	if r.rec == nil {
		r.rawBuf = append(r.rawBuf, p)
		for len(r.rawBuf) > 0 && r.rawBuf[0].PTS < p.PTS-rawPreRoll {
			r.rawBuf[0] = media.PCM{}
			r.rawBuf = r.rawBuf[1:]
		}
		return
	}
	if err := r.rec.WriteRaw(p); err != nil {
		r.log.Error("raw audio stopped for this lesson; the lesson goes on", "err", err)
	}
}

// flushRaw writes the raw audio kept from before the lesson's first
// picture (what precedes it is dropped by the recording).
func (r *Recorder) flushRaw() {
	buf := r.rawBuf
	r.rawBuf = nil
	for _, p := range buf {
		r.raw(p)
	}
}

// restartLesson ends the lesson when the camera came back with another
// picture format (init.mp4 holds one) and begins the next one with au.
func (r *Recorder) restartLesson(au media.AccessUnit) {
	m := r.rec.Meta()
	r.log.Warn("camera came back with another format; the lesson goes on in a new one", "lesson", m.ID)
	if _, err := r.stop(StopRequest{By: "recorder", Reason: "camera came back with another format"}); err != nil {
		return
	}
	r.beginStart(StartRequest{By: m.StartedBy, Visibility: m.Visibility}, nil)
	if r.pending != nil {
		r.video(au)
	}
}

func (r *Recorder) audio(p media.AudioPacket) {
	if p.Channels > 0 && p.Channels != r.cfg.AudioChannels {
		// The encoder restarted with other settings (Reconfigure has not
		// reached the recorder yet, or waits for the lesson to end): such
		// packets do not fit the lesson's audio track.
		return
	}
	if r.rec == nil {
		r.audioBuf = append(r.audioBuf, p)
		if r.pending == nil {
			// Keep about as much audio as the picture cache covers.
			for len(r.audioBuf) > 0 && len(r.gop) > 0 && r.audioBuf[0].PTS+p.Duration() < r.gop[0].PTS {
				r.audioBuf = r.audioBuf[1:]
			}
		} else {
			// A start waits for its keyframe: the encoder's picture comes
			// after the sound of the same moment, which the lesson needs.
			for len(r.audioBuf) > 0 && r.audioBuf[0].PTS+p.Duration() < max(r.pending.keyAsked, p.PTS-audioPreRoll) {
				r.audioBuf = r.audioBuf[1:]
			}
		}
		if len(r.audioBuf) > 1000 {
			r.audioBuf = r.audioBuf[len(r.audioBuf)-1000:]
		}
		return
	}
	if r.haveA && p.PTS-r.lastAEnd >= r.cfg.AudioGapAfter {
		reason := "microphone: sound lost"
		if r.micFault != "" {
			reason = "microphone lost: " + r.micFault
		}
		at := r.rec.MediaTime(r.lastAEnd)
		r.rec.AddGap(lesson.Gap{At: at.Seconds(), Duration: (p.PTS - r.lastAEnd).Seconds(), Reason: reason, Media: lesson.GapAudio})
		r.log.Info("microphone back; the lesson goes on", "lesson", r.rec.Meta().ID, "gap", p.PTS-r.lastAEnd)
	}
	if err := r.rec.WriteAudio(p); err != nil {
		r.fail(err)
		return
	}
	if p.PTS+p.Duration() > r.lastAEnd || !r.haveA {
		r.lastAEnd, r.haveA = p.PTS+p.Duration(), true
	}
	if r.stopping != nil && r.lastAEnd > r.lastVPTS {
		r.finishStop()
	}
}

// open creates (or continues) the lesson at its first picture.
func (r *Recorder) open(idr media.AccessUnit) error {
	sps, pps := h264.FindParams(idr.NALUs)
	if sps == nil || pps == nil {
		return errors.New("first keyframe carries no SPS/PPS")
	}
	vp, err := h264.ParseParams(sps, pps)
	if err != nil {
		return fmt.Errorf("camera stream: %w", err)
	}
	p := r.pending
	reported := -1 // segments already notified; set from the first record seen
	wcfg := lesson.WriterConfig{
		SegmentDuration: r.cfg.SegmentDuration,
		Video:           vp,
		AudioChannels:   r.cfg.AudioChannels,
		Now:             r.deps.Now,
		OnSegment: func(m lesson.Meta, _ lesson.Segment) {
			if err := r.deps.Catalog.PutLesson(m); err != nil {
				r.log.Error("catalog update failed", "lesson", m.ID, "err", err)
			}
			// Saves may be coalesced: notify every segment not told yet.
			if reported < 0 {
				reported = r.resumedSegments(m)
			}
			for ; reported < len(m.Segments); reported++ {
				r.notify(Notice{Kind: NoticeSegmentClosed, Meta: m, Segment: m.Segments[reported]})
			}
		},
	}
	var rec *lesson.Recording
	if r.resume != nil {
		res := *r.resume
		r.resume = nil
		if sameParams(res.Meta.Video, vp) {
			rec, err = r.deps.Store.Resume(res, "daemon restarted", wcfg)
			if err == nil {
				r.log.Info("lesson continued after a restart", "lesson", res.Meta.ID, "gap", res.Gap)
			}
		} else {
			r.log.Warn("camera format changed; closing the interrupted lesson and starting a new one", "lesson", res.Meta.ID)
			r.finishRecovered(res, "camera format changed")
		}
	}
	if rec == nil && err == nil {
		n, nerr := r.deps.Store.NextNumber(r.deps.Catalog.NextNumber())
		if nerr != nil {
			return nerr
		}
		m := lesson.Meta{
			ID: lesson.NewID(n), Number: n, Device: r.cfg.Device,
			Visibility: p.req.Visibility, StartedBy: p.req.By,
			Video: lesson.Video{Codec: "h264", Width: vp.Width, Height: vp.Height, Encoder: r.deps.Encoder(),
				SPS: vp.SPS, PPS: vp.PPS},
			Audio: lesson.Audio{Codec: "opus", Channels: r.cfg.AudioChannels, Rate: media.AudioRate, BitrateBps: r.cfg.AudioBitrateBps},
		}
		if r.deps.AudioProcessing != nil {
			m.Audio.Processing = r.deps.AudioProcessing()
		}
		rec, err = r.deps.Store.Create(m, wcfg)
	}
	if err != nil {
		return err
	}
	r.rec = rec
	r.pending = nil
	r.lastVAt, r.haveA, r.vgap, r.camFault, r.micFault = time.Now(), false, nil, "", ""
	r.runAt = r.lastVAt
	r.lastVPTS = idr.PTS
	if err := r.deps.Catalog.PutLesson(rec.Meta()); err != nil {
		r.log.Error("catalog update failed", "err", err)
	}
	lat := time.Since(p.at)
	r.status.FirstFrameLatency = float64(lat.Microseconds()) / 1000
	r.log.Info("recording", "lesson", rec.Meta().ID, "by", p.req.By, "visibility", p.req.Visibility,
		"first_frame_ms", r.status.FirstFrameLatency, "from_cache", p.usedCache)
	if len(rec.Meta().Runs) <= 1 {
		r.notify(Notice{Kind: NoticeLessonStarted, Meta: rec.Meta()})
	}
	r.publish()
	if p.reply != nil {
		p.reply <- reply{start: StartResult{LessonID: rec.Meta().ID, FirstFrameLatency: lat}}
	}
	return nil
}

// notify hands a notice to Deps.Notify.
func (r *Recorder) notify(n Notice) {
	if r.deps.Notify == nil {
		return
	}
	if n.At == (lesson.Clock{}) {
		n.At = r.deps.Now()
	}
	r.deps.Notify(n)
}

// resumedSegments is how many of a lesson's segments were recorded before
// this run (and so were notified by an earlier one).
func (r *Recorder) resumedSegments(m lesson.Meta) int {
	if len(m.Runs) <= 1 {
		return 0
	}
	last := m.Runs[len(m.Runs)-1]
	for i, s := range m.Segments {
		if s.Start >= last.MediaStart-0.001 {
			return i
		}
	}
	return len(m.Segments)
}

// finished records a lesson that ended; one that ended before any media
// reached disk is removed instead.
func (r *Recorder) finished(m lesson.Meta) {
	if len(m.Segments) == 0 && m.ID != "" {
		r.log.Info("lesson ended before any media was written; removing it", "lesson", m.ID)
		if err := r.deps.Store.RemoveEmpty(m.ID); err != nil {
			r.log.Error("cannot remove empty lesson", "lesson", m.ID, "err", err)
		}
		if err := r.deps.Catalog.DeleteLesson(m.ID); err != nil {
			r.log.Error("catalog update failed", "lesson", m.ID, "err", err)
		}
		return
	}
	r.lastLesson = m.ID
	r.notify(Notice{Kind: NoticeLessonStopped, Meta: m})
	if err := r.deps.Catalog.PutLesson(m); err != nil {
		r.log.Error("catalog update failed", "lesson", m.ID, "err", err)
	}
}

func sameParams(v lesson.Video, p media.VideoParams) bool {
	return string(v.SPS) == string(p.SPS) && string(v.PPS) == string(p.PPS)
}

// beginStop ends the lesson: at once when its sound has caught up with its
// last picture (or there is no sound to wait for), else once it has or
// stopDrain has passed. Pictures after the stop are not recorded. rep, when
// not nil, gets the closed lesson.
func (r *Recorder) beginStop(req StopRequest, rep chan reply) {
	if r.stopping != nil {
		if rep != nil {
			r.stopping.replies = append(r.stopping.replies, rep)
		}
		return
	}
	// No sound at all in a run older than stopDrain, or a microphone
	// fault: none is coming. A run that has just begun (a lesson started or
	// continued a moment ago) waits for its first sound like any other.
	noSound := !r.haveA && (time.Since(r.runAt) >= stopDrain || r.micFault != "")
	if r.rec == nil || noSound || r.vgap != nil || (r.haveA && r.lastAEnd > r.lastVPTS) {
		m, err := r.stop(req)
		if rep != nil {
			rep <- reply{meta: m, err: err}
		}
		return
	}
	r.stopping = &pendingStop{req: req, until: time.Now().Add(stopDrain)}
	if rep != nil {
		r.stopping.replies = append(r.stopping.replies, rep)
	}
	r.setState(StateStopping, "")
	r.armTimer()
}

// finishStop closes the lesson of a pending stop (stop answers its
// callers).
func (r *Recorder) finishStop() { r.stop(r.stopping.req) }

// stop closes the lesson now. Callers of a pending stop get its outcome.
func (r *Recorder) stop(req StopRequest) (m lesson.Meta, err error) {
	if w := r.stopping; w != nil {
		r.stopping = nil
		defer func() {
			for _, rep := range w.replies {
				rep <- reply{meta: m, err: err}
			}
		}()
	}
	if r.pending != nil && r.rec == nil {
		p := r.pending
		r.pending = nil
		if p.reply != nil {
			p.reply <- reply{err: fmt.Errorf("%w: start ended by a stop before its first picture", ErrCancelled)}
		}
		r.setState(StateIdle, "")
		return lesson.Meta{}, nil
	}
	r.setState(StateStopping, "")
	r.closeGaps()
	r.vgap = nil
	m, err = r.rec.Close(lesson.Stop{By: req.By, Reason: req.Reason})
	r.rec = nil
	r.finished(m)
	if err != nil {
		r.fail(fmt.Errorf("closing lesson %s: %w", m.ID, err))
		return m, err
	}
	r.log.Info("lesson stopped", "lesson", m.ID, "by", req.By, "duration", m.Duration, "segments", len(m.Segments))
	r.setState(StateIdle, "")
	return m, nil
}

// fail ends the recording after a write error (a full or failing disk): what
// was written stays, the lesson is closed, the box shows the error.
func (r *Recorder) fail(err error) {
	r.log.Error("recording failed", "err", err)
	if r.rec != nil {
		r.closeGaps()
		r.vgap = nil
		m, _ := r.rec.Close(lesson.Stop{By: "recorder", Reason: "error: " + err.Error()})
		r.rec = nil
		r.finished(m)
	}
	if p := r.pending; p != nil {
		r.pending = nil
		if p.reply != nil {
			p.reply <- reply{err: err}
		}
	}
	r.setState(StateError, err.Error())
}

// checkDisk stops a lesson cleanly before the disk is full, and leaves the
// error state once there is room again.
func (r *Recorder) checkDisk() {
	free, err := r.deps.FreeBytes()
	if err != nil {
		return
	}
	if r.rec != nil && free < r.cfg.StopFreeBytes {
		reason := fmt.Sprintf("disk: %d MB free; lesson stopped to keep what was recorded", free>>20)
		m, _ := r.stop(StopRequest{By: "recorder", Reason: reason})
		r.log.Error("disk nearly full; recording stopped", "lesson", m.ID)
		r.setState(StateError, reason)
		r.diskError = true
		return
	}
	if r.diskError && r.rec == nil && r.pending == nil && free >= r.cfg.MinFreeBytes {
		r.setState(StateIdle, "")
	}
}

// recover repairs lessons a crash left open. The newest is continued (when
// configured); any other is closed.
func (r *Recorder) recover() {
	ids, err := r.deps.Store.IDs()
	if err != nil {
		r.log.Error("cannot list lessons", "err", err)
		return
	}
	var open []lesson.Recovered
	for _, id := range ids {
		m, err := r.deps.Store.Load(id)
		if err != nil || m.State != lesson.StateRecording {
			continue
		}
		rec, err := r.deps.Store.Recover(id, r.deps.Now())
		if err != nil {
			r.log.Error("cannot recover lesson", "lesson", id, "err", err)
			continue
		}
		r.log.Warn("recovered a lesson left open", "lesson", id, "repaired", rec.Repaired, "segments", len(rec.Meta.Segments))
		open = append(open, rec)
	}
	for i, rec := range open {
		if i == len(open)-1 && r.cfg.ResumeAfterCrash {
			r.resume = &open[i]
			continue
		}
		r.finishRecovered(rec, "interrupted")
	}
}

func (r *Recorder) finishRecovered(rec lesson.Recovered, reason string) {
	m, err := r.deps.Store.Finish(rec, lesson.Stop{By: "recovery", Reason: reason, At: r.deps.Now()})
	if err != nil {
		r.log.Error("cannot close recovered lesson", "lesson", rec.Meta.ID, "err", err)
		return
	}
	r.finished(m)
}

// shutdown closes an open lesson cleanly (the daemon is stopping).
func (r *Recorder) shutdown() {
	if r.stopping != nil {
		r.finishStop()
	}
	if r.rec != nil {
		if _, err := r.stop(StopRequest{By: "daemon", Reason: "shutdown"}); err != nil {
			r.log.Error("closing lesson at shutdown failed", "err", err)
		}
	}
	if r.resume != nil {
		r.finishRecovered(*r.resume, "daemon stopped before it could continue")
		r.resume = nil
	}
	if p := r.pending; p != nil && p.reply != nil {
		p.reply <- reply{err: fmt.Errorf("%w: daemon stopping", ErrCancelled)}
	}
	r.pending = nil
	if p := r.remote; p != nil {
		p.reply <- reply{err: fmt.Errorf("%w: daemon stopping", ErrCancelled)}
	}
	r.remote = nil
}
