package config

import (
	"fmt"
	"github.com/classcap/classcap/uplink/pace"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Box is the configuration of the box daemon, classcapd.
type Box struct {
	Device    DeviceSection    `toml:"device"`
	Hardware  HardwareSection  `toml:"hardware"`
	Video     VideoSection     `toml:"video"`
	Audio     AudioSection     `toml:"audio"`
	Recording RecordingSection `toml:"recording"`
	Uplink    UplinkSection    `toml:"uplink"`
	Enroll    EnrollSection    `toml:"enroll"`
	Live      LiveSection      `toml:"live"`

	// Warnings lists what the file set that this version does not know
	// (e.g. "unknown key video.profile"); the daemon logs them.
	Warnings []string `toml:"-"`
}

// DeviceSection is [device].
type DeviceSection struct {
	ID       string `toml:"id"`        // box id: letters, digits, '.', '_', '-'; default the hostname
	DataDir  string `toml:"data_dir"`  // lessons, catalog, control socket
	LogLevel string `toml:"log_level"` // debug, info, warn, error
}

// HardwareSection is [hardware]: which devices stand for the camera, the
// microphones, the button and the LED.
type HardwareSection struct {
	// Profile is "sim" (synthetic devices), "replay" (files stand in for
	// the camera and microphones) or "auto" (real devices).
	Profile string `toml:"profile"`
	Camera  string `toml:"camera"` // V4L2 device; empty under auto: the first capture device
	// The picture asked of a V4L2 camera (the nearest it offers is taken).
	CameraWidth  int     `toml:"camera_width"`
	CameraHeight int     `toml:"camera_height"`
	CameraFPS    float64 `toml:"camera_fps"`
	Microphone   string  `toml:"microphone"` // ALSA PCM; empty under auto: the first capture card
	// Button is "chip:line", e.g. "gpiochip0:17"; empty means no button.
	Button          string `toml:"button"`
	ButtonActiveLow bool   `toml:"button_active_low"`
	ButtonBias      string `toml:"button_bias"` // pull-up, pull-down, none
	// LED is "chip:line" (one colour) or "chip:r,g,b"; empty means no LED.
	LED    string        `toml:"led"`
	Sim    SimSection    `toml:"sim"`
	Replay ReplaySection `toml:"replay"`
}

// SimSection is [hardware.sim]: the synthetic camera and microphone array.
type SimSection struct {
	Width       int     `toml:"width"`
	Height      int     `toml:"height"`
	FPS         float64 `toml:"fps"`
	MicChannels int     `toml:"mic_channels"`
	// MicNoiseDBFS is the RMS level of the noise each simulated capsule
	// adds on its own (independent between capsules), dBFS.
	MicNoiseDBFS float64 `toml:"mic_noise_dbfs"`
}

// ReplaySection is [hardware.replay]: an H.264 elementary stream and a WAV
// file played as if they were the camera and the microphones.
type ReplaySection struct {
	Video string  `toml:"video"` // H.264 Annex B file; relative to the config file
	Audio string  `toml:"audio"` // WAV file; relative to the config file
	FPS   float64 `toml:"fps"`   // frame rate of Video (an elementary stream carries none)
	Pace  string  `toml:"pace"`  // "realtime" or "fast"
}

// VideoSection is [video]: the H.264 encoder.
type VideoSection struct {
	BitrateKbps     int     `toml:"bitrate_kbps"`
	KeyframeSeconds float64 `toml:"keyframe_seconds"`
	// Encoder for raw cameras: "auto" (the V4L2 hardware encoder when one
	// is found, else software), "hardware" or "software".
	Encoder string `toml:"encoder"`
}

// AudioSection is [audio]: the Opus encoder.
type AudioSection struct {
	BitrateKbps int `toml:"bitrate_kbps"`
	Channels    int `toml:"channels"` // channels of the recorded stream: 1 or 2
	Complexity  int `toml:"complexity"`
	// KeepRaw keeps the microphones' own channels, as captured, beside
	// each segment (seg_NNNNNN.raw.wav, 24-bit PCM), for reprocessing.
	// Never uploaded; deleted with the lesson.
	KeepRaw bool `toml:"keep_raw"`
	// Array is [audio.array]: the microphone-array processing.
	Array ArraySection `toml:"array"`
}

// RecordingSection is [recording].
type RecordingSection struct {
	SegmentSeconds float64 `toml:"segment_seconds"` // fMP4 segment length (cut at keyframes)
	Visibility     string  `toml:"visibility"`      // default for button-started lessons
	MinFreeMB      int64   `toml:"min_free_mb"`     // refuse to start a lesson below this
	// VetoSeconds is how long a remote start is shown on the LED, for the
	// teacher to decline with a hold, before recording begins.
	VetoSeconds float64 `toml:"veto_seconds"`
}

// UplinkSection is [uplink]: the MQTT connection to the hub.
type UplinkSection struct {
	Broker       string `toml:"broker"` // empty: offline
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`

	// Uploads to the hub.
	UploadConcurrency  int      `toml:"upload_concurrency"`    // transfers at once
	UploadRateKbps     int64    `toml:"upload_rate_kbps"`      // cap for all transfers; 0: none
	UploadWindows      []string `toml:"upload_windows"`        // "HH:MM-HH:MM" local time; empty: any time
	RetentionDays      int      `toml:"retention_days"`        // delete verified lessons older than this; 0: never for age
	RetentionMinFreeMB int64    `toml:"retention_min_free_mb"` // delete verified lessons, oldest first, below this free space; 0: never for space
}

// EnrollSection is [enroll]: how a box without an identity enrolls.
type EnrollSection struct {
	// ClaimFile is the claim district IT wrote (hub URL, token, CA
	// fingerprint); read only while the box has no identity. Empty: never
	// enroll (the box uses [uplink] as written).
	ClaimFile string `toml:"claim_file"`
}

// LiveSection is [live]: live view (WebRTC) through the hub.
type LiveSection struct {
	// Allow is the teacher's consent: "off" (never), "recording" (while a
	// lesson records) or "always".
	Allow string `toml:"allow"`
	// Interfaces names the network interfaces offered to viewers as ICE
	// candidates; empty offers all but loopback.
	Interfaces []string `toml:"interfaces"`
	// Loopback offers loopback candidates too: a viewer on the box itself
	// (tests, make run).
	Loopback bool `toml:"loopback"`
	// UDPPortMin and UDPPortMax bound the viewers' UDP ports (0: any), for
	// a firewall.
	UDPPortMin int `toml:"udp_port_min"`
	UDPPortMax int `toml:"udp_port_max"`
	// Queue is each viewer's queue in video frames; a viewer that falls
	// further behind loses frames (counted).
	Queue int `toml:"queue_frames"`
	// MaxViewers bounds the views at once.
	MaxViewers int `toml:"max_viewers"`
	// ICEServers are the STUN and TURN servers the box's side of each view
	// uses ([[live.ice_servers]]): a TURN server relays for a viewer that
	// cannot reach the box (NAT, firewall).
	ICEServers []ICEServer `toml:"ice_servers"`
	// ICETransportPolicy is "all" (any candidate) or "relay" (only through
	// a TURN server of ICEServers).
	ICETransportPolicy string `toml:"ice_transport_policy"`
}

// Allowed values, in the order error messages list them.
var (
	profiles     = []string{"sim", "replay", "auto"}
	biases       = []string{"pull-up", "pull-down", "none"}
	paces        = []string{"realtime", "fast"}
	visibilities = []string{"private", "coaching", "library"}
	encoders     = []string{"auto", "hardware", "software"}
	liveAllows   = []string{"off", "recording", "always"}
)

// maxSocketPath is the longest path a unix socket address holds (sun_path
// is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// DefaultBox returns the configuration used for every key a file leaves
// out. The device id defaults to the hostname.
func DefaultBox() Box {
	host, err := os.Hostname()
	if err != nil {
		host = ""
	}
	return Box{
		Device: DeviceSection{
			ID:       host,
			DataDir:  "/var/lib/classcap",
			LogLevel: "info",
		},
		Hardware: HardwareSection{
			Profile:         "auto",
			CameraWidth:     1280,
			CameraHeight:    720,
			CameraFPS:       30,
			Button:          "gpiochip0:17",
			ButtonActiveLow: true,
			ButtonBias:      "pull-up",
			LED:             "gpiochip0:22,23,24",
			Sim: SimSection{
				Width:        1280,
				Height:       720,
				FPS:          30,
				MicChannels:  4,
				MicNoiseDBFS: -60,
			},
			Replay: ReplaySection{
				FPS:  30,
				Pace: "realtime",
			},
		},
		Video: VideoSection{
			BitrateKbps:     2500,
			KeyframeSeconds: 2,
			Encoder:         "auto",
		},
		Audio: AudioSection{
			BitrateKbps: 32,
			Channels:    1,
			Complexity:  10,
			Array:       DefaultArray(),
		},
		Recording: RecordingSection{
			SegmentSeconds: 4,
			Visibility:     "private",
			MinFreeMB:      500,
			VetoSeconds:    10,
		},
		Uplink: UplinkSection{
			UploadConcurrency:  2,
			RetentionMinFreeMB: 2000,
		},
		Enroll: EnrollSection{
			ClaimFile: "/boot/firmware/classcap-claim",
		},
		Live: LiveSection{
			Allow:              "recording",
			Queue:              60,
			MaxViewers:         4,
			ICETransportPolicy: "all",
		},
	}
}

// ParseBox lays data over DefaultBox and validates the result. Relative
// replay paths are left as written (relative to the working directory).
func ParseBox(data []byte) (*Box, error) {
	b, err := decodeBox(data)
	if err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// LoadBox reads the file at path, lays it over DefaultBox, resolves relative
// replay paths against the file's directory and validates the result. Its
// errors name the file.
func LoadBox(path string) (*Box, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	b, err := decodeBox(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&b.Hardware.Replay.Video, &b.Hardware.Replay.Audio} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if err := b.Validate(); err != nil {
		return nil, wrapFile(path, err)
	}
	return b, nil
}

func decodeBox(data []byte) (*Box, error) {
	b := DefaultBox()
	_, warnings, err := decode(data, &b)
	if err != nil {
		return nil, err
	}
	b.Warnings = warnings
	return &b, nil
}

// Validate checks every field and returns all problems joined
// (errors.Join of *FieldError), or nil.
func (b *Box) Validate() error {
	var p problems

	// [device]
	d := b.Device
	if p.required("device.id", d.ID) {
		p.deviceID("device.id", d.ID)
	}
	if p.required("device.data_dir", d.DataDir) && p.noControl("device.data_dir", d.DataDir) {
		if n := len(b.SocketPath()); n > maxSocketPath {
			p.add("device.data_dir", "%q is too long: the control socket path would be %d bytes, a unix socket allows %d",
				d.DataDir, n, maxSocketPath)
		}
	}
	p.logLevel("device.log_level", d.LogLevel)

	// [hardware]
	h := b.Hardware
	p.oneOf("hardware.profile", h.Profile, profiles...)
	p.noControl("hardware.camera", h.Camera)
	p.intRange("hardware.camera_width", int64(h.CameraWidth), 16, 7680)
	p.intRange("hardware.camera_height", int64(h.CameraHeight), 16, 4320)
	p.floatRange("hardware.camera_fps", h.CameraFPS, 1, 120)
	p.noControl("hardware.microphone", h.Microphone)
	var button, led GPIOSpec
	var buttonOK, ledOK bool
	if h.Button != "" {
		var err error
		button, err = ParseGPIO(h.Button)
		switch {
		case err != nil:
			p.add("hardware.button", "%s", err)
		case len(button.Lines) != 1:
			p.add("hardware.button", "%q names %d lines, want chip:line", h.Button, len(button.Lines))
		default:
			buttonOK = true
		}
	}
	p.oneOf("hardware.button_bias", h.ButtonBias, biases...)
	if h.LED != "" {
		var err error
		led, err = ParseGPIO(h.LED)
		switch {
		case err != nil:
			p.add("hardware.led", "%s", err)
		case len(led.Lines) != 1 && len(led.Lines) != 3:
			p.add("hardware.led", "%q names %d lines, want chip:line or chip:red,green,blue", h.LED, len(led.Lines))
		default:
			ledOK = true
		}
	}
	if buttonOK && ledOK && button.Chip == led.Chip {
		for _, l := range led.Lines {
			if l == button.Lines[0] {
				p.add("hardware.led", "line %d of %s is also hardware.button", l, led.Chip)
			}
		}
	}

	// [hardware.sim]
	s := h.Sim
	p.intRange("hardware.sim.width", int64(s.Width), 16, 3840)
	if s.Width%2 != 0 {
		p.add("hardware.sim.width", "%d is odd; 4:2:0 pictures need an even width", s.Width)
	}
	p.intRange("hardware.sim.height", int64(s.Height), 16, 2160)
	if s.Height%2 != 0 {
		p.add("hardware.sim.height", "%d is odd; 4:2:0 pictures need an even height", s.Height)
	}
	p.floatRange("hardware.sim.fps", s.FPS, 1, 120)
	p.intRange("hardware.sim.mic_channels", int64(s.MicChannels), 1, 16)
	p.floatRange("hardware.sim.mic_noise_dbfs", s.MicNoiseDBFS, -120, -6)

	// [hardware.replay]
	r := h.Replay
	if h.Profile == "replay" {
		p.replayFile("hardware.replay.video", r.Video)
		p.replayFile("hardware.replay.audio", r.Audio)
	} else {
		p.noControl("hardware.replay.video", r.Video)
		p.noControl("hardware.replay.audio", r.Audio)
	}
	p.floatRange("hardware.replay.fps", r.FPS, 1, 120)
	p.oneOf("hardware.replay.pace", r.Pace, paces...)

	// [video]
	p.intRange("video.bitrate_kbps", int64(b.Video.BitrateKbps), 100, 50000)
	p.floatRange("video.keyframe_seconds", b.Video.KeyframeSeconds, 0.5, 10)
	p.oneOf("video.encoder", b.Video.Encoder, encoders...)

	// [audio]
	p.intRange("audio.bitrate_kbps", int64(b.Audio.BitrateKbps), 6, 510)
	p.intRange("audio.channels", int64(b.Audio.Channels), 1, 2)
	p.intRange("audio.complexity", int64(b.Audio.Complexity), 0, 10)
	p.validateArray(b.Audio.Array)

	// [recording]
	rec := b.Recording
	before := len(p)
	p.floatRange("recording.segment_seconds", rec.SegmentSeconds, 1, 60)
	segOK := len(p) == before
	p.oneOf("recording.visibility", rec.Visibility, visibilities...)
	if rec.MinFreeMB < 0 {
		p.add("recording.min_free_mb", "%d is below the minimum 0", rec.MinFreeMB)
	}
	p.floatRange("recording.veto_seconds", rec.VetoSeconds, 0, 120)
	k := b.Video.KeyframeSeconds
	if segOK && k >= 0.5 && k <= 10 && k > rec.SegmentSeconds {
		p.add("video.keyframe_seconds", "%s is longer than recording.segment_seconds %s (segments are cut at keyframes)",
			fmtFloat(k), fmtFloat(rec.SegmentSeconds))
	}

	// [uplink]
	u := b.Uplink
	if u.Broker != "" {
		p.brokerURL("uplink.broker", u.Broker)
	}
	p.noControl("uplink.username", u.Username)
	p.noControl("uplink.password_file", u.PasswordFile)
	p.intRange("uplink.upload_concurrency", int64(u.UploadConcurrency), 1, 16)
	if u.UploadRateKbps != 0 {
		p.intRange("uplink.upload_rate_kbps", u.UploadRateKbps, 64, 10_000_000)
	}
	if _, err := pace.ParseWindows(u.UploadWindows); err != nil {
		p.add("uplink.upload_windows", "%s", err)
	}
	p.intRange("uplink.retention_days", int64(u.RetentionDays), 0, 3650)
	if u.RetentionMinFreeMB < 0 {
		p.add("uplink.retention_min_free_mb", "%d is below the minimum 0", u.RetentionMinFreeMB)
	}

	// [enroll]
	p.noControl("enroll.claim_file", b.Enroll.ClaimFile)

	// [live]
	lv := b.Live
	p.oneOf("live.allow", lv.Allow, liveAllows...)
	for _, name := range lv.Interfaces {
		if name == "" {
			p.add("live.interfaces", "has an empty interface name")
		}
		p.noControl("live.interfaces", name)
	}
	p.intRange("live.udp_port_min", int64(lv.UDPPortMin), 0, 65535)
	p.intRange("live.udp_port_max", int64(lv.UDPPortMax), 0, 65535)
	if (lv.UDPPortMin == 0) != (lv.UDPPortMax == 0) || lv.UDPPortMin > lv.UDPPortMax {
		p.add("live.udp_port_max", "udp_port_min %d and udp_port_max %d: set both (min <= max) or neither", lv.UDPPortMin, lv.UDPPortMax)
	}
	p.intRange("live.queue_frames", int64(lv.Queue), 4, 600)
	p.intRange("live.max_viewers", int64(lv.MaxViewers), 1, 32)
	p.iceServers("live", lv.ICEServers, lv.ICETransportPolicy, false)

	return p.err()
}

// IdentityDir is where enrollment keeps the box's key and certificate.
func (b *Box) IdentityDir() string { return filepath.Join(b.Device.DataDir, "identity") }

// deviceID checks that id is safe in MQTT topics, file names and URLs.
func (p *problems) deviceID(field, id string) {
	if len(id) > 64 {
		p.add(field, "%q is longer than 64 characters", id)
		return
	}
	for i, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			(i > 0 && (c == '-' || c == '_' || c == '.'))
		if !ok {
			p.add(field, "%q: use letters, digits, '-', '_' and '.', starting with a letter or digit", id)
			return
		}
	}
}

// replayFile checks that a replay input is set and is a regular file.
func (p *problems) replayFile(field, path string) {
	if path == "" {
		p.add(field, `is required when hardware.profile = "replay"`)
		return
	}
	if !p.noControl(field, path) {
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		p.add(field, "%v", err)
	case !fi.Mode().IsRegular():
		p.add(field, "%s is not a regular file", path)
	}
}

// SocketPath is the control socket of the daemon: <data_dir>/classcapd.sock.
func (b *Box) SocketPath() string { return filepath.Join(b.Device.DataDir, "classcapd.sock") }

// LessonsDir is where lessons are stored: <data_dir>/lessons.
func (b *Box) LessonsDir() string { return filepath.Join(b.Device.DataDir, "lessons") }

// VetoWindow is recording.veto_seconds as a duration.
func (b *Box) VetoWindow() time.Duration { return seconds(b.Recording.VetoSeconds) }

// SegmentDuration is recording.segment_seconds as a duration.
func (b *Box) SegmentDuration() time.Duration { return seconds(b.Recording.SegmentSeconds) }

// KeyframeInterval is video.keyframe_seconds as a duration.
func (b *Box) KeyframeInterval() time.Duration { return seconds(b.Video.KeyframeSeconds) }

// LogLevel is device.log_level as a slog level.
func (b *Box) LogLevel() slog.Level { return parseLogLevel(b.Device.LogLevel) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// GPIOSpec is a parsed GPIO reference: a chip and one or more line offsets.
type GPIOSpec struct {
	Chip  string // "gpiochip0" or a path such as "/dev/gpiochip0"
	Lines []int  // line offsets on Chip, in the order written
}

// ParseGPIO parses "chip:line" or "chip:line,line,...", e.g. "gpiochip0:17"
// or "gpiochip0:22,23,24". Lines are distinct offsets in 0..1023.
func ParseGPIO(spec string) (GPIOSpec, error) {
	chip, list, ok := strings.Cut(spec, ":")
	if !ok {
		return GPIOSpec{}, fmt.Errorf("%q is not chip:line", spec)
	}
	if chip == "" || strings.ContainsFunc(chip, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == ',' || r == ':'
	}) {
		return GPIOSpec{}, fmt.Errorf("%q has an invalid chip name %q", spec, chip)
	}
	var lines []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || f != strconv.Itoa(n) || n < 0 || n > 1023 {
			return GPIOSpec{}, fmt.Errorf("%q has an invalid line %q (want a number 0..1023)", spec, f)
		}
		for _, l := range lines {
			if l == n {
				return GPIOSpec{}, fmt.Errorf("%q names line %d twice", spec, n)
			}
		}
		lines = append(lines, n)
	}
	return GPIOSpec{Chip: chip, Lines: lines}, nil
}
