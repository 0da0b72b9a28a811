package config

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// validBox is a configuration every validation case starts from.
func validBox() Box {
	b := DefaultBox()
	b.Device.ID = "room-101"
	b.Hardware.Profile = "sim"
	return b
}

// onlyProblem asserts that err holds exactly one FieldError, for field, with
// a reason containing reason.
func onlyProblem(t *testing.T, err error, field, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s: ...%s...", field, reason)
	}
	fes := FieldErrors(err)
	if len(fes) != 1 {
		t.Fatalf("got %d field errors, want 1: %v", len(fes), err)
	}
	if fes[0].Field != field || !strings.Contains(fes[0].Reason, reason) {
		t.Fatalf("got %q, want %s: ...%s...", fes[0].Error(), field, reason)
	}
}

func TestDefaultBoxIsValid(t *testing.T) {
	b := validBox()
	if err := b.Validate(); err != nil {
		t.Fatalf("defaults with an id do not validate: %v", err)
	}
	b.Hardware.Profile = "auto"
	if err := b.Validate(); err != nil {
		t.Fatalf("defaults with profile auto do not validate: %v", err)
	}
}

func TestDefaultBoxUsesHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("hostname: %v", err)
	}
	if got := DefaultBox().Device.ID; got != host {
		t.Fatalf("default device.id = %q, want the hostname %q", got, host)
	}
}

func TestBoxValidation(t *testing.T) {
	dir := t.TempDir()
	video := filepath.Join(dir, "lesson.h264")
	audio := filepath.Join(dir, "lesson.wav")
	for _, p := range []string{video, audio} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := "/" + strings.Repeat("d", 100)

	tests := []struct {
		name   string
		mutate func(*Box)
		field  string // "" means valid
		reason string
	}{
		// [device]
		{"id missing", func(b *Box) { b.Device.ID = "" }, "device.id", "is required"},
		{"id blank", func(b *Box) { b.Device.ID = "  " }, "device.id", "is required"},
		{"id with slash", func(b *Box) { b.Device.ID = "room/101" }, "device.id", "use letters, digits"},
		{"id with mqtt wildcard", func(b *Box) { b.Device.ID = "room+" }, "device.id", "use letters, digits"},
		{"id starting with dash", func(b *Box) { b.Device.ID = "-room" }, "device.id", "starting with a letter"},
		{"id too long", func(b *Box) { b.Device.ID = strings.Repeat("a", 65) }, "device.id", "longer than 64"},
		{"id 64 chars", func(b *Box) { b.Device.ID = strings.Repeat("a", 64) }, "", ""},
		{"id with dots", func(b *Box) { b.Device.ID = "pi.school_7-a" }, "", ""},
		{"data_dir missing", func(b *Box) { b.Device.DataDir = "" }, "device.data_dir", "is required"},
		{"data_dir newline", func(b *Box) { b.Device.DataDir = "/var/lib\n" }, "device.data_dir", "control character"},
		{"data_dir too long for socket", func(b *Box) { b.Device.DataDir = long }, "device.data_dir", "unix socket allows 107"},
		{"data_dir relative", func(b *Box) { b.Device.DataDir = "run/box" }, "", ""},
		{"log_level bad", func(b *Box) { b.Device.LogLevel = "trace" }, "device.log_level", `"trace" is not one of debug, info, warn, error`},
		{"log_level debug", func(b *Box) { b.Device.LogLevel = "debug" }, "", ""},

		// [hardware]
		{"profile bad", func(b *Box) { b.Hardware.Profile = "foo" }, "hardware.profile", `"foo" is not one of sim, replay, auto`},
		{"profile empty", func(b *Box) { b.Hardware.Profile = "" }, "hardware.profile", `"" is not one of`},
		{"profile auto", func(b *Box) { b.Hardware.Profile = "auto" }, "", ""},
		{"camera control char", func(b *Box) { b.Hardware.Camera = "/dev/video0\x00" }, "hardware.camera", "control character"},
		{"microphone control char", func(b *Box) { b.Hardware.Microphone = "hw:1,0\t" }, "hardware.microphone", "control character"},
		{"button no colon", func(b *Box) { b.Hardware.Button = "gpiochip0" }, "hardware.button", "is not chip:line"},
		{"button empty chip", func(b *Box) { b.Hardware.Button = ":17" }, "hardware.button", "invalid chip name"},
		{"button line not a number", func(b *Box) { b.Hardware.Button = "gpiochip0:GPIO17" }, "hardware.button", "invalid line"},
		{"button line negative", func(b *Box) { b.Hardware.Button = "gpiochip0:-1" }, "hardware.button", "invalid line"},
		{"button line too big", func(b *Box) { b.Hardware.Button = "gpiochip0:1024" }, "hardware.button", "invalid line"},
		{"button line leading zero", func(b *Box) { b.Hardware.Button = "gpiochip0:017" }, "hardware.button", "invalid line"},
		{"button three lines", func(b *Box) { b.Hardware.Button = "gpiochip0:1,2,3" }, "hardware.button", "names 3 lines"},
		{"button none", func(b *Box) { b.Hardware.Button = "" }, "", ""},
		{"button device path", func(b *Box) { b.Hardware.Button = "/dev/gpiochip4:17" }, "", ""},
		{"bias bad", func(b *Box) { b.Hardware.ButtonBias = "pullup" }, "hardware.button_bias", `"pullup" is not one of pull-up, pull-down, none`},
		{"bias none", func(b *Box) { b.Hardware.ButtonBias = "none" }, "", ""},
		{"led two lines", func(b *Box) { b.Hardware.LED = "gpiochip0:22,23" }, "hardware.led", "names 2 lines"},
		{"led repeated line", func(b *Box) { b.Hardware.LED = "gpiochip0:22,22,24" }, "hardware.led", "line 22 twice"},
		{"led empty line", func(b *Box) { b.Hardware.LED = "gpiochip0:22,,24" }, "hardware.led", "invalid line"},
		{"led single colour", func(b *Box) { b.Hardware.LED = "gpiochip0:27" }, "", ""},
		{"led none", func(b *Box) { b.Hardware.LED = "" }, "", ""},
		{"led shares button line", func(b *Box) { b.Hardware.LED = "gpiochip0:17,23,24" }, "hardware.led", "also hardware.button"},
		{"led same line other chip", func(b *Box) { b.Hardware.LED = "gpiochip1:17,23,24" }, "", ""},

		// [hardware.sim]
		{"sim width small", func(b *Box) { b.Hardware.Sim.Width = 8 }, "hardware.sim.width", "8 is below the minimum 16"},
		{"sim width large", func(b *Box) { b.Hardware.Sim.Width = 4096 }, "hardware.sim.width", "4096 is above the maximum 3840"},
		{"sim width odd", func(b *Box) { b.Hardware.Sim.Width = 641 }, "hardware.sim.width", "641 is odd"},
		{"sim height small", func(b *Box) { b.Hardware.Sim.Height = 0 }, "hardware.sim.height", "0 is below the minimum 16"},
		{"sim height odd", func(b *Box) { b.Hardware.Sim.Height = 481 }, "hardware.sim.height", "481 is odd"},
		{"sim fps low", func(b *Box) { b.Hardware.Sim.FPS = 0.5 }, "hardware.sim.fps", "0.5 is below the minimum 1"},
		{"sim fps high", func(b *Box) { b.Hardware.Sim.FPS = 240 }, "hardware.sim.fps", "240 is above the maximum 120"},
		{"sim fps ntsc", func(b *Box) { b.Hardware.Sim.FPS = 29.97 }, "", ""},
		{"sim mics zero", func(b *Box) { b.Hardware.Sim.MicChannels = 0 }, "hardware.sim.mic_channels", "0 is below the minimum 1"},
		{"sim mics many", func(b *Box) { b.Hardware.Sim.MicChannels = 17 }, "hardware.sim.mic_channels", "17 is above the maximum 16"},
		{"sim mic noise loud", func(b *Box) { b.Hardware.Sim.MicNoiseDBFS = 0 }, "hardware.sim.mic_noise_dbfs", "0 is above the maximum -6"},

		// [hardware.replay]
		{"replay without video", func(b *Box) {
			b.Hardware.Profile = "replay"
			b.Hardware.Replay.Audio = audio
		}, "hardware.replay.video", `is required when hardware.profile = "replay"`},
		{"replay without audio", func(b *Box) {
			b.Hardware.Profile = "replay"
			b.Hardware.Replay.Video = video
		}, "hardware.replay.audio", "is required"},
		{"replay video missing", func(b *Box) {
			b.Hardware.Profile = "replay"
			b.Hardware.Replay.Video = filepath.Join(dir, "nope.h264")
			b.Hardware.Replay.Audio = audio
		}, "hardware.replay.video", "no such file"},
		{"replay audio a directory", func(b *Box) {
			b.Hardware.Profile = "replay"
			b.Hardware.Replay.Video = video
			b.Hardware.Replay.Audio = dir
		}, "hardware.replay.audio", "not a regular file"},
		{"replay ok", func(b *Box) {
			b.Hardware.Profile = "replay"
			b.Hardware.Replay.Video = video
			b.Hardware.Replay.Audio = audio
		}, "", ""},
		{"replay files not checked under sim", func(b *Box) {
			b.Hardware.Replay.Video = filepath.Join(dir, "nope.h264")
		}, "", ""},
		{"replay fps zero", func(b *Box) { b.Hardware.Replay.FPS = 0 }, "hardware.replay.fps", "0 is below the minimum 1"},
		{"replay pace bad", func(b *Box) { b.Hardware.Replay.Pace = "slow" }, "hardware.replay.pace", `"slow" is not one of realtime, fast`},
		{"replay pace fast", func(b *Box) { b.Hardware.Replay.Pace = "fast" }, "", ""},

		// [video]
		{"video bitrate low", func(b *Box) { b.Video.BitrateKbps = 50 }, "video.bitrate_kbps", "50 is below the minimum 100"},
		{"video bitrate high", func(b *Box) { b.Video.BitrateKbps = 60000 }, "video.bitrate_kbps", "60000 is above the maximum 50000"},
		{"keyframe short", func(b *Box) { b.Video.KeyframeSeconds = 0.25 }, "video.keyframe_seconds", "0.25 is below the minimum 0.5"},
		{"keyframe long", func(b *Box) { b.Video.KeyframeSeconds = 11 }, "video.keyframe_seconds", "11 is above the maximum 10"},
		{"encoder unknown", func(b *Box) { b.Video.Encoder = "gpu" }, "video.encoder", `"gpu" is not one of auto, hardware, software`},
		{"keyframe longer than segment", func(b *Box) { b.Video.KeyframeSeconds = 5 }, "video.keyframe_seconds", "longer than recording.segment_seconds 4"},
		{"keyframe equals segment", func(b *Box) { b.Video.KeyframeSeconds = 4 }, "", ""},
		{"keyframe half second", func(b *Box) { b.Video.KeyframeSeconds = 0.5 }, "", ""},

		// [audio]
		{"audio bitrate low", func(b *Box) { b.Audio.BitrateKbps = 5 }, "audio.bitrate_kbps", "5 is below the minimum 6"},
		{"audio bitrate high", func(b *Box) { b.Audio.BitrateKbps = 511 }, "audio.bitrate_kbps", "511 is above the maximum 510"},
		{"audio channels zero", func(b *Box) { b.Audio.Channels = 0 }, "audio.channels", "0 is below the minimum 1"},
		{"audio channels three", func(b *Box) { b.Audio.Channels = 3 }, "audio.channels", "3 is above the maximum 2"},
		{"audio stereo", func(b *Box) { b.Audio.Channels = 2 }, "", ""},
		{"audio complexity negative", func(b *Box) { b.Audio.Complexity = -1 }, "audio.complexity", "-1 is below the minimum 0"},
		{"audio complexity high", func(b *Box) { b.Audio.Complexity = 11 }, "audio.complexity", "11 is above the maximum 10"},

		// [recording]
		{"segment short", func(b *Box) { b.Recording.SegmentSeconds = 0.5 }, "recording.segment_seconds", "0.5 is below the minimum 1"},
		{"segment long", func(b *Box) { b.Recording.SegmentSeconds = 61 }, "recording.segment_seconds", "61 is above the maximum 60"},
		{"segment NaN", func(b *Box) { b.Recording.SegmentSeconds = nan() }, "recording.segment_seconds", "NaN is not a finite number"},
		{"segment fractional", func(b *Box) { b.Recording.SegmentSeconds = 2.5 }, "", ""},
		{"visibility bad", func(b *Box) { b.Recording.Visibility = "public" }, "recording.visibility", `"public" is not one of private, coaching, library`},
		{"visibility library", func(b *Box) { b.Recording.Visibility = "library" }, "", ""},
		{"min free negative", func(b *Box) { b.Recording.MinFreeMB = -1 }, "recording.min_free_mb", "-1 is below the minimum 0"},
		{"veto negative", func(b *Box) { b.Recording.VetoSeconds = -1 }, "recording.veto_seconds", "-1 is below the minimum 0"},
		{"veto long", func(b *Box) { b.Recording.VetoSeconds = 121 }, "recording.veto_seconds", "121 is above the maximum 120"},
		{"min free zero", func(b *Box) { b.Recording.MinFreeMB = 0 }, "", ""},

		// [uplink]
		{"broker offline", func(b *Box) { b.Uplink.Broker = "" }, "", ""},
		{"broker tcp", func(b *Box) { b.Uplink.Broker = "tcp://127.0.0.1:1883" }, "", ""},
		{"broker tls no port", func(b *Box) { b.Uplink.Broker = "ssl://hub.example.org" }, "", ""},
		{"broker http scheme", func(b *Box) { b.Uplink.Broker = "http://hub:1883" }, "uplink.broker", `scheme "http" is not one of`},
		{"broker no scheme", func(b *Box) { b.Uplink.Broker = "hub:1883" }, "uplink.broker", "is not one of"},
		{"broker no host", func(b *Box) { b.Uplink.Broker = "tcp://:1883" }, "uplink.broker", "has no host"},
		{"broker bad port", func(b *Box) { b.Uplink.Broker = "tcp://hub:99999" }, "uplink.broker", "invalid port"},
		{"broker not a url", func(b *Box) { b.Uplink.Broker = "tcp://[::1" }, "uplink.broker", "is not a URL"},
		{"username control char", func(b *Box) { b.Uplink.Username = "a\nb" }, "uplink.username", "control character"},
		{"password_file control char", func(b *Box) { b.Uplink.PasswordFile = "/x\r" }, "uplink.password_file", "control character"},
		{"upload concurrency 0", func(b *Box) { b.Uplink.UploadConcurrency = 0 }, "uplink.upload_concurrency", "below the minimum 1"},
		{"upload concurrency 17", func(b *Box) { b.Uplink.UploadConcurrency = 17 }, "uplink.upload_concurrency", "above the maximum 16"},
		{"upload rate off", func(b *Box) { b.Uplink.UploadRateKbps = 0 }, "", ""},
		{"upload rate tiny", func(b *Box) { b.Uplink.UploadRateKbps = 10 }, "uplink.upload_rate_kbps", "below the minimum 64"},
		{"upload windows", func(b *Box) { b.Uplink.UploadWindows = []string{"15:30-23:59", "00:00-06:00"} }, "", ""},
		{"upload window bad", func(b *Box) { b.Uplink.UploadWindows = []string{"15:30"} }, "uplink.upload_windows", "want HH:MM-HH:MM"},
		{"upload window empty", func(b *Box) { b.Uplink.UploadWindows = []string{"10:00-10:00"} }, "uplink.upload_windows", "starts where it ends"},
		{"retention days negative", func(b *Box) { b.Uplink.RetentionDays = -1 }, "uplink.retention_days", "below the minimum 0"},
		{"retention free negative", func(b *Box) { b.Uplink.RetentionMinFreeMB = -1 }, "uplink.retention_min_free_mb", "below the minimum 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := validBox()
			tt.mutate(&b)
			err := b.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			onlyProblem(t, err, tt.field, tt.reason)
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestParseBoxMessages(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"profile", "[device]\nid='a'\n[hardware]\nprofile = \"foo\"\n", `hardware.profile: "foo" is not one of sim, replay, auto`},
		{"segment", "[device]\nid='a'\n[recording]\nsegment_seconds = 0.5\n", `recording.segment_seconds: 0.5 is below the minimum 1`},
		{"segment integer", "[device]\nid='a'\n[recording]\nsegment_seconds = 0\n", `recording.segment_seconds: 0 is below the minimum 1`},
		{"segment inf", "[device]\nid='a'\n[recording]\nsegment_seconds = inf\n", `recording.segment_seconds: +Inf is not a finite number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBox([]byte(tt.file))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	file := `
[device]
id = ""
log_level = "loud"
[hardware]
profile = "replay"
button = "gpiochip0"
[audio]
channels = 6
[recording]
segment_seconds = 100
`
	_, err := ParseBox([]byte(file))
	var got []string
	for _, fe := range FieldErrors(err) {
		got = append(got, fe.Field)
	}
	want := []string{
		"device.id", "device.log_level", "hardware.button",
		"hardware.replay.video", "hardware.replay.audio",
		"audio.channels", "recording.segment_seconds",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields = %v, want %v (error: %v)", got, want, err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "device.id" {
		t.Fatalf("errors.As did not find the first FieldError: %v", err)
	}
	if n := strings.Count(err.Error(), "\n"); n != len(want)-1 {
		t.Fatalf("want one line per problem, got:\n%v", err)
	}
}

func TestParseBoxDefaults(t *testing.T) {
	b, err := ParseBox([]byte("[device]\nid = \"room-7\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultBox()
	want.Device.ID = "room-7"
	if !reflect.DeepEqual(*b, want) {
		t.Fatalf("got %+v\nwant %+v", *b, want)
	}
	if b.Audio.KeepRaw {
		t.Fatal("raw audio is kept by default")
	}
	b, err = ParseBox([]byte("[audio]\nkeep_raw = true\n"))
	if err != nil || !b.Audio.KeepRaw {
		t.Fatalf("keep_raw = true: %v, %v", err, b)
	}
}

func TestParseBoxFileOverridesDefaults(t *testing.T) {
	b, err := ParseBox([]byte(`
[device]
id = "room-7"
[hardware]
button_active_low = false
[hardware.sim]
fps = 25
[recording]
segment_seconds = 6
min_free_mb = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if b.Hardware.ButtonActiveLow {
		t.Error("button_active_low = false did not override the default true")
	}
	if b.Hardware.Sim.FPS != 25 || b.Hardware.Sim.Width != 1280 {
		t.Errorf("sim = %+v, want fps 25 over the default 1280 wide", b.Hardware.Sim)
	}
	if b.Recording.SegmentSeconds != 6 || b.Recording.MinFreeMB != 0 || b.Recording.Visibility != "private" {
		t.Errorf("recording = %+v", b.Recording)
	}
}

func TestParseBoxSyntaxAndTypeErrors(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"syntax", "[device\nid = 1", "parse:"},
		{"string for int", "[video]\nbitrate_kbps = \"fast\"", "bitrate_kbps"},
		{"float for int", "[audio]\nchannels = 1.5", "channels"},
		{"string for bool", "[audio]\nkeep_raw = \"yes\"", "keep_raw"},
		{"table for string", "[device.id]\nx = 1", "id"},
		{"duplicate key", "[device]\nid = 'a'\nid = 'b'", "parse:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseBox([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
			if FieldErrors(err) != nil {
				t.Fatalf("a parse error is not a field error: %v", err)
			}
		})
	}
}

func TestUnknownKeysAreWarnings(t *testing.T) {
	b, err := ParseBox([]byte(`
[device]
id = "room-7"
colour = "blue"
[video]
profile = "high"
[telemetry]
interval = 5
endpoint = "x"
[telemetry.extra]
a = 1
`))
	if err != nil {
		t.Fatalf("unknown keys must not be errors: %v", err)
	}
	want := []string{"unknown key device.colour", "unknown key video.profile", "unknown key telemetry"}
	if !reflect.DeepEqual(b.Warnings, want) {
		t.Fatalf("warnings = %q, want %q", b.Warnings, want)
	}
}

func TestDesignExampleBox(t *testing.T) {
	b, err := LoadBox("testdata/design-box.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultBox()
	want.Device = DeviceSection{ID: "room-101", DataDir: "/var/lib/classcap", LogLevel: "info"}
	want.Hardware.Profile = "sim"
	want.Hardware.Camera = "/dev/video0"
	want.Hardware.Microphone = "hw:1,0"
	want.Hardware.Button = "gpiochip0:17"
	want.Hardware.ButtonActiveLow = true
	want.Hardware.ButtonBias = "pull-up"
	want.Hardware.LED = "gpiochip0:22,23,24"
	want.Recording.SegmentSeconds = 4
	want.Recording.Visibility = "private"
	want.Uplink = UplinkSection{
		Broker:             "tcp://127.0.0.1:1883",
		Username:           "room-101",
		PasswordFile:       "/var/lib/classcap/mqtt-password",
		UploadConcurrency:  2,
		RetentionMinFreeMB: 2000,
	}
	if !reflect.DeepEqual(*b, want) {
		t.Fatalf("got  %+v\nwant %+v", *b, want)
	}

	// Round trip: encode what was read, parse it again, get the same.
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(b); err != nil {
		t.Fatalf("encode: %v", err)
	}
	again, err := ParseBox(buf.Bytes())
	if err != nil {
		t.Fatalf("parse encoded config: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(again, b) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\n%s", again, b, buf.String())
	}
	if len(again.Warnings) != 0 {
		t.Fatalf("encoded config has unknown keys: %q", again.Warnings)
	}
}

func TestLoadBoxResolvesReplayPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "media"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"media/lesson.h264", "media/lesson.wav"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "box.toml")
	file := `
[device]
id = "replay-1"
[hardware]
profile = "replay"
[hardware.replay]
video = "media/lesson.h264"
audio = "` + filepath.Join(dir, "media/lesson.wav") + `"
pace = "fast"
`
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := LoadBox(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "media/lesson.h264"); b.Hardware.Replay.Video != want {
		t.Errorf("video = %q, want %q", b.Hardware.Replay.Video, want)
	}
	if want := filepath.Join(dir, "media/lesson.wav"); b.Hardware.Replay.Audio != want {
		t.Errorf("audio = %q, want %q", b.Hardware.Replay.Audio, want)
	}

	// The same relative path from elsewhere is rejected by ParseBox,
	// which resolves against the working directory.
	if _, err := ParseBox([]byte(file)); err == nil {
		t.Error("ParseBox accepted a replay path relative to another directory")
	}
}

func TestLoadBoxErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	if _, err := LoadBox(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: got %v, want an error naming %s", err, missing)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[device]\nid = 'x'\n[audio]\nchannels = 9\ncomplexity = 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadBox(bad)
	want := "config " + bad + ": 2 problems:\n  audio.channels: 9 is above the maximum 2\n  audio.complexity: 12 is above the maximum 10"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if len(FieldErrors(err)) != 2 {
		t.Errorf("FieldErrors = %v, want 2", FieldErrors(err))
	}

	one := filepath.Join(dir, "one.toml")
	if err := os.WriteFile(one, []byte("[device]\nid = 'x'\n[audio]\nchannels = 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadBox(one)
	if want := "config " + one + ": audio.channels: 9 is above the maximum 2"; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}

	syntax := filepath.Join(dir, "syntax.toml")
	if err := os.WriteFile(syntax, []byte("[device\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBox(syntax); err == nil || !strings.Contains(err.Error(), syntax) {
		t.Errorf("syntax error: got %v, want an error naming %s", err, syntax)
	}
}

func TestBoxHelpers(t *testing.T) {
	b := validBox()
	b.Device.DataDir = "/data/cc"
	b.Recording.SegmentSeconds = 2.5
	b.Video.KeyframeSeconds = 0.5
	b.Device.LogLevel = "warn"
	if got, want := b.SocketPath(), "/data/cc/classcapd.sock"; got != want {
		t.Errorf("SocketPath = %q, want %q", got, want)
	}
	if got, want := b.LessonsDir(), "/data/cc/lessons"; got != want {
		t.Errorf("LessonsDir = %q, want %q", got, want)
	}
	if got, want := b.SegmentDuration(), 2500*time.Millisecond; got != want {
		t.Errorf("SegmentDuration = %v, want %v", got, want)
	}
	if got, want := b.KeyframeInterval(), 500*time.Millisecond; got != want {
		t.Errorf("KeyframeInterval = %v, want %v", got, want)
	}
	if got := b.LogLevel(); got != slog.LevelWarn {
		t.Errorf("LogLevel = %v, want warn", got)
	}
}

func TestParseGPIO(t *testing.T) {
	tests := []struct {
		spec    string
		want    GPIOSpec
		wantErr string
	}{
		{"gpiochip0:17", GPIOSpec{"gpiochip0", []int{17}}, ""},
		{"gpiochip0:22,23,24", GPIOSpec{"gpiochip0", []int{22, 23, 24}}, ""},
		{"/dev/gpiochip4:0", GPIOSpec{"/dev/gpiochip4", []int{0}}, ""},
		{"gpiochip0:1023", GPIOSpec{"gpiochip0", []int{1023}}, ""},
		{"gpiochip0", GPIOSpec{}, "not chip:line"},
		{"gpiochip0:", GPIOSpec{}, "invalid line"},
		{"gpio chip:1", GPIOSpec{}, "invalid chip name"},
		{"a:b:1", GPIOSpec{}, "invalid line"},
		{"gpiochip0:+1", GPIOSpec{}, "invalid line"},
		{"gpiochip0: 1", GPIOSpec{}, "invalid line"},
		{"gpiochip0:1,1", GPIOSpec{}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseGPIO(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
