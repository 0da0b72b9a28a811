package v4l2

import (
	"errors"
	"strings"
	"testing"
)

func sizes(fps []float64, wh ...int) []FrameSize {
	var out []FrameSize
	for i := 0; i+1 < len(wh); i += 2 {
		out = append(out, FrameSize{Width: wh[i], Height: wh[i+1], FPS: fps})
	}
	return out
}

var (
	fps30 = []float64{30, 15}
	fps10 = []float64{10, 5}
)

// A typical UVC webcam: YUYV slow at large sizes, MJPEG fast.
var webcam = []FormatInfo{
	{Format: FormatYUYV, Sizes: append(sizes(fps30, 640, 480, 320, 240), sizes(fps10, 1280, 720, 1920, 1080)...)},
	{Format: FormatMJPEG, Compressed: true, Sizes: sizes(fps30, 640, 480, 1280, 720, 1920, 1080)},
}

func TestChoose(t *testing.T) {
	tests := []struct {
		name    string
		formats []FormatInfo
		cfg     Config
		want    Choice
		wantErr error
	}{
		{
			name: "H.264 wins over raw at the same size",
			formats: []FormatInfo{
				{Format: FormatYUYV, Sizes: sizes(fps30, 1280, 720)},
				{Format: FormatH264, Sizes: sizes(fps30, 1280, 720, 1920, 1080)},
				{Format: FormatMJPEG, Sizes: sizes(fps30, 1280, 720)},
			},
			cfg:  Config{Width: 1280, Height: 720, FPS: 30},
			want: Choice{Format: FormatH264, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name: "H.264 at a far too small size loses to raw at the size",
			formats: []FormatInfo{
				{Format: FormatH264, Sizes: sizes(fps30, 320, 240)},
				{Format: FormatNV12, Sizes: sizes(fps30, 1280, 720)},
			},
			cfg:  Config{Width: 1280, Height: 720, FPS: 30},
			want: Choice{Format: FormatNV12, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name: "H.264 too slow loses to raw at the rate",
			formats: []FormatInfo{
				{Format: FormatH264, Sizes: sizes([]float64{5}, 1280, 720)},
				{Format: FormatYUYV, Sizes: sizes(fps30, 1280, 720)},
			},
			cfg:  Config{Width: 1280, Height: 720, FPS: 30},
			want: Choice{Format: FormatYUYV, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name:    "webcam: MJPEG is never chosen while YUYV exists; fps beats size",
			formats: webcam,
			cfg:     Config{Width: 1280, Height: 720, FPS: 30},
			want:    Choice{Format: FormatYUYV, Width: 640, Height: 480, FPS: 30},
		},
		{
			name:    "webcam at 10 fps takes the requested size",
			formats: webcam,
			cfg:     Config{Width: 1280, Height: 720, FPS: 10},
			want:    Choice{Format: FormatYUYV, Width: 1280, Height: 720, FPS: 10},
		},
		{
			name:    "zero config means 1280x720 at 30",
			formats: []FormatInfo{{Format: FormatYUYV, Sizes: sizes(fps30, 640, 480, 1280, 720, 1920, 1080)}},
			want:    Choice{Format: FormatYUYV, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name:    "nearest rate from the list",
			formats: []FormatInfo{{Format: FormatYUYV, Sizes: sizes([]float64{60, 25, 12.5}, 1280, 720)}},
			cfg:     Config{Width: 1280, Height: 720, FPS: 30},
			want:    Choice{Format: FormatYUYV, Width: 1280, Height: 720, FPS: 25},
		},
		{
			name:    "a rate range takes the requested rate",
			formats: []FormatInfo{{Format: FormatYUYV, Sizes: sizes(nil, 1280, 720)}},
			cfg:     Config{Width: 1280, Height: 720, FPS: 29.97},
			want:    Choice{Format: FormatYUYV, Width: 1280, Height: 720, FPS: 29.97},
		},
		{
			name: "the cheapest raw format at equal fit",
			formats: []FormatInfo{
				{Format: FormatUYVY, Sizes: sizes(fps30, 1280, 720)},
				{Format: FormatYUYV, Sizes: sizes(fps30, 1280, 720)},
				{Format: FormatYU12, Sizes: sizes(fps30, 1280, 720)},
				{Format: FormatNV12, Sizes: sizes(fps30, 1280, 720)},
			},
			cfg:  Config{Width: 1280, Height: 720, FPS: 30},
			want: Choice{Format: FormatYU12, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name:    "between sizes the aspect ratio decides",
			formats: []FormatInfo{{Format: FormatYUYV, Sizes: sizes(fps30, 960, 720, 1280, 720, 1024, 768)}},
			cfg:     Config{Width: 1280, Height: 720, FPS: 30},
			want:    Choice{Format: FormatYUYV, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name: "stepwise sizes snap the request",
			formats: []FormatInfo{{Format: FormatYUYV, Range: &SizeRange{
				MinWidth: 48, MaxWidth: 1920, StepWidth: 16, MinHeight: 32, MaxHeight: 1080, StepHeight: 8}}},
			cfg:  Config{Width: 1000, Height: 700, FPS: 30},
			want: Choice{Format: FormatYUYV, Width: 992, Height: 696, FPS: 30},
		},
		{
			name:    "MJPEG only when nothing else",
			formats: []FormatInfo{{Format: FormatMJPEG, Sizes: sizes(fps30, 640, 480, 1280, 720)}, {Format: fourcc('R', 'G', 'B', '3'), Sizes: sizes(fps30, 1280, 720)}},
			cfg:     Config{Width: 1280, Height: 720, FPS: 30},
			want:    Choice{Format: FormatMJPEG, Width: 1280, Height: 720, FPS: 30},
		},
		{
			name:    "unknown formats only",
			formats: []FormatInfo{{Format: fourcc('R', 'G', 'B', '3'), Sizes: sizes(fps30, 1280, 720)}},
			wantErr: ErrNoFormat,
		},
		{
			name:    "nothing",
			wantErr: ErrNoFormat,
		},
		{
			name:    "broken driver data: zero sizes and rates are never chosen",
			formats: []FormatInfo{{Format: FormatH264, Sizes: []FrameSize{{0, 0, fps30}, {1280, 720, []float64{0, -1}}}}, {Format: FormatYUYV, Sizes: sizes(fps30, 640, 360)}},
			cfg:     Config{Width: 1280, Height: 720, FPS: 30},
			want:    Choice{Format: FormatYUYV, Width: 640, Height: 360, FPS: 30},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.formats, tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Choose error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Choose = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPixelFormat(t *testing.T) {
	tests := []struct {
		f        PixelFormat
		code     uint32
		str      string
		raw      bool
		passthru bool
	}{
		{FormatH264, 0x34363248, "H264", false, true},
		{FormatMJPEG, 0x47504a4d, "MJPG", false, false},
		{FormatYUYV, 0x56595559, "YUYV", true, false},
		{FormatNV12, 0x3231564e, "NV12", true, false},
		{FormatYU12, 0x32315559, "YU12", true, false},
		{FormatUYVY, 0x59565955, "UYVY", true, false},
		{PixelFormat(0x00414243), 0x00414243, "CBA?", false, false},
	}
	for _, tt := range tests {
		if uint32(tt.f) != tt.code {
			t.Errorf("%v = %#x, want %#x", tt.f, uint32(tt.f), tt.code)
		}
		if tt.f.String() != tt.str {
			t.Errorf("String(%#x) = %q, want %q", uint32(tt.f), tt.f.String(), tt.str)
		}
		if tt.f.IsRaw() != tt.raw {
			t.Errorf("%v.IsRaw() = %v", tt.f, tt.f.IsRaw())
		}
		if (Choice{Format: tt.f}).Passthrough() != tt.passthru {
			t.Errorf("%v passthrough wrong", tt.f)
		}
	}
}

func TestPick(t *testing.T) {
	mjpegOnly := DeviceInfo{Path: "/dev/video0", Formats: []FormatInfo{{Format: FormatMJPEG, Sizes: sizes(fps30, 1280, 720)}}}
	none := DeviceInfo{Path: "/dev/video1"}
	h264Cam := DeviceInfo{Path: "/dev/video2", Formats: []FormatInfo{{Format: FormatH264, Sizes: sizes(fps30, 1280, 720)}}}
	rawCam := DeviceInfo{Path: "/dev/video4", Formats: webcam}
	tests := []struct {
		name    string
		devs    []DeviceInfo
		path    string
		format  PixelFormat
		wantErr string
	}{
		{"first streamable device", []DeviceInfo{mjpegOnly, none, h264Cam, rawCam}, "/dev/video2", FormatH264, ""},
		{"raw camera", []DeviceInfo{none, rawCam}, "/dev/video4", FormatYUYV, ""},
		{"MJPEG only when nothing better", []DeviceInfo{none, mjpegOnly, {Path: "/dev/video5", Formats: mjpegOnly.Formats}}, "/dev/video0", FormatMJPEG, ""},
		{"no devices", nil, "", 0, "0 devices: no usable capture format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ch, err := Pick(tt.devs, Config{})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNoFormat) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Pick error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || d.Path != tt.path || ch.Format != tt.format {
				t.Fatalf("Pick = %s %v %v, want %s %v", d.Path, ch, err, tt.path, tt.format)
			}
		})
	}
}
