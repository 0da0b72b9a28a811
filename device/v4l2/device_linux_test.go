package v4l2

import (
	"context"
	"errors"
	"io/fs"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/classcap/classcap/capture/media"
)

// Values from <linux/videodev2.h>, printed by a C program built with gcc
// for amd64 and aarch64 and with arm-linux-gnueabihf-gcc for armv7.
func TestIoctlNumbers(t *testing.T) {
	common := map[string][2]uintptr{
		"QUERYCAP":            {vidiocQueryCap, 0x80685600},
		"ENUM_FMT":            {vidiocEnumFmt, 0xc0405602},
		"REQBUFS":             {vidiocReqBufs, 0xc0145608},
		"STREAMON":            {vidiocStreamOn, 0x40045612},
		"STREAMOFF":           {vidiocStreamOff, 0x40045613},
		"G_PARM":              {vidiocGParm, 0xc0cc5615},
		"S_PARM":              {vidiocSParm, 0xc0cc5616},
		"ENUM_FRAMESIZES":     {vidiocEnumFrameSizes, 0xc02c564a},
		"ENUM_FRAMEINTERVALS": {vidiocEnumFrameIntervals, 0xc034564b},
	}
	perArch := map[string]map[string][2]uintptr{
		"64-bit": {
			"G_FMT":    {vidiocGFmt, 0xc0d05604},
			"S_FMT":    {vidiocSFmt, 0xc0d05605},
			"QUERYBUF": {vidiocQueryBuf, 0xc0585609},
			"QBUF":     {vidiocQBuf, 0xc058560f},
			"DQBUF":    {vidiocDQBuf, 0xc0585611},
		},
		"arm": {
			"G_FMT":    {vidiocGFmt, 0xc0cc5604},
			"S_FMT":    {vidiocSFmt, 0xc0cc5605},
			"QUERYBUF": {vidiocQueryBuf, 0xc0445609},
			"QBUF":     {vidiocQBuf, 0xc044560f},
			"DQBUF":    {vidiocDQBuf, 0xc0445611},
		},
	}
	arch := "64-bit"
	switch runtime.GOARCH {
	case "amd64", "arm64":
	case "arm":
		arch = "arm"
	default:
		t.Logf("no reference values for %s; checking the common ones", runtime.GOARCH)
		arch = ""
	}
	for name, v := range common {
		if v[0] != v[1] {
			t.Errorf("VIDIOC_%s = %#x, want %#x", name, v[0], v[1])
		}
	}
	for name, v := range perArch[arch] {
		if v[0] != v[1] {
			t.Errorf("VIDIOC_%s on %s = %#x, want %#x", name, runtime.GOARCH, v[0], v[1])
		}
	}
}

func TestLayouts(t *testing.T) {
	var b buffer
	var f format
	var p plane
	type off struct {
		name      string
		got, want uintptr
	}
	var want64 = runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64"
	checks := []off{
		{"pix_format_mplane.num_planes", unsafe.Offsetof(pixFormatMPlane{}.NumPlanes), 180},
		{"pix_format_mplane.plane_fmt", unsafe.Offsetof(pixFormatMPlane{}.PlaneFmt), 20},
		{"frmivalenum.discrete", unsafe.Offsetof(frmIvalEnum{}.Union), 20},
		{"frmsizeenum.discrete", unsafe.Offsetof(frmSizeEnum{}.Union), 12},
	}
	if want64 {
		checks = append(checks,
			off{"format.fmt", unsafe.Offsetof(f.Fmt), 8},
			off{"buffer", unsafe.Sizeof(b), 88},
			off{"buffer.timecode", unsafe.Offsetof(b.Timecode), 40},
			off{"buffer.sequence", unsafe.Offsetof(b.Sequence), 56},
			off{"buffer.memory", unsafe.Offsetof(b.Memory), 60},
			off{"buffer.length", unsafe.Offsetof(b.Length), 72},
			off{"buffer.request_fd", unsafe.Offsetof(b.RequestFD), 80},
			off{"plane.data_offset", unsafe.Offsetof(p.DataOffset), 16},
		)
	} else if runtime.GOARCH == "arm" {
		checks = append(checks,
			off{"format.fmt", unsafe.Offsetof(f.Fmt), 4},
			off{"buffer", unsafe.Sizeof(b), 68},
			off{"buffer.timecode", unsafe.Offsetof(b.Timecode), 28},
			off{"buffer.sequence", unsafe.Offsetof(b.Sequence), 44},
			off{"buffer.memory", unsafe.Offsetof(b.Memory), 48},
			off{"buffer.length", unsafe.Offsetof(b.Length), 56},
			off{"buffer.request_fd", unsafe.Offsetof(b.RequestFD), 64},
			off{"plane.data_offset", unsafe.Offsetof(p.DataOffset), 12},
		)
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	// The union views stay inside the union.
	if unsafe.Sizeof(pixFormatMPlane{}) > unsafe.Sizeof(f.Fmt) || unsafe.Sizeof(pixFormat{}) > unsafe.Sizeof(f.Fmt) {
		t.Error("pixel format larger than the format union")
	}
}

func TestCaptureType(t *testing.T) {
	tests := []struct {
		name    string
		caps    capability
		want    uint32
		wantErr bool
	}{
		{"single-planar", capability{Capabilities: capVideoCapture | capStreaming}, bufTypeVideoCapture, false},
		{"device caps win", capability{Capabilities: capDeviceCaps | capVideoCapture | capVideoCaptureMPlane | capStreaming,
			DeviceCaps: capVideoCaptureMPlane | capStreaming}, bufTypeVideoCaptureMPlane, false},
		{"both: single-planar", capability{Capabilities: capVideoCapture | capVideoCaptureMPlane | capStreaming}, bufTypeVideoCapture, false},
		{"UVC metadata node", capability{Capabilities: capDeviceCaps | capVideoCapture | capStreaming, DeviceCaps: 0x00800000 | capStreaming}, 0, true},
		{"no streaming", capability{Capabilities: capVideoCapture}, 0, true},
		{"codec", capability{Capabilities: capVideoM2MMPlane | capStreaming}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := captureType(tt.caps)
			if tt.wantErr {
				if !errors.Is(err, ErrNotCapture) {
					t.Fatalf("error %v, want ErrNotCapture", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestFrameData(t *testing.T) {
	buf := make([]byte, 100)
	tests := []struct {
		used, off uint32
		want      int
	}{
		{50, 0, 50},
		{1000, 0, 100}, // bytesused > length
		{50, 10, 40},
		{50, 60, 0}, // data_offset past bytesused
		{0, 0, 0},
		{1 << 31, 1 << 30, 0},
	}
	for _, tt := range tests {
		if got := len(frameData(buf, tt.used, tt.off)); got != tt.want {
			t.Errorf("frameData(used %d, off %d) = %d bytes, want %d", tt.used, tt.off, got, tt.want)
		}
	}
}

func TestBufferTime(t *testing.T) {
	b := buffer{Flags: bufFlagTimestampMonotonic, Timestamp: unix.NsecToTimeval(int64(1234567 * time.Microsecond))}
	got, err := bufferTime(&b)
	if err != nil || got != 1234567*time.Microsecond {
		t.Fatalf("monotonic timestamp: %v, %v", got, err)
	}
	before, _ := monotonicNow()
	for _, b := range []buffer{
		{Flags: bufFlagTimestampMonotonic},                                 // zero timestamp
		{Flags: 0x4000, Timestamp: unix.NsecToTimeval(int64(time.Second))}, // V4L2_BUF_FLAG_TIMESTAMP_COPY
		{Flags: 0, Timestamp: unix.NsecToTimeval(int64(time.Second))},      // unknown
	} {
		got, err := bufferTime(&b)
		after, _ := monotonicNow()
		if err != nil || got < before || got > after {
			t.Errorf("flags %#x: %v not in [%v, %v] (%v)", b.Flags, got, before, after, err)
		}
	}
}

func TestEpochMonotonic(t *testing.T) {
	epoch := time.Now().Add(-1500 * time.Millisecond)
	m, err := epochMonotonic(epoch)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := monotonicNow()
	elapsed := time.Since(epoch)
	// now - m is the time since the epoch by CLOCK_MONOTONIC.
	if d := (now - m) - elapsed; d < -5*time.Millisecond || d > 5*time.Millisecond {
		t.Fatalf("CLOCK_MONOTONIC says %v since the epoch, Go says %v", now-m, elapsed)
	}
}

func TestProbeErrors(t *testing.T) {
	missing := t.TempDir() + "/video9"
	tests := []struct {
		path string
		is   error
		msg  string
	}{
		{"/dev/null", ErrNotCapture, "v4l2 /dev/null: query capabilities: not a V4L2 video capture device"},
		{missing, fs.ErrNotExist, "v4l2 open " + missing},
		{t.TempDir(), nil, "v4l2 open"}, // a directory
	}
	for _, tt := range tests {
		_, err := Probe(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.msg) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("Probe(%s) = %v, want %q wrapping %v", tt.path, err, tt.msg, tt.is)
		}
	}
}

func TestList(t *testing.T) {
	// Whatever this machine has: List must not fail on non-capture nodes.
	devs, err := List()
	for _, d := range devs {
		t.Logf("%s: %s (%s) %d formats", d.Path, d.Card, d.Driver, len(d.Formats))
	}
	if err != nil {
		t.Logf("List: %v", err)
	}
}

func TestCameraErrors(t *testing.T) {
	ctx := context.Background()
	yuyv := Choice{Format: FormatYUYV, Width: 640, Height: 480, FPS: 30}
	h264 := Choice{Format: FormatH264, Width: 1280, Height: 720, FPS: 30}

	if _, err := NewRawCamera(CameraConfig{Device: "/dev/video0", Choice: Choice{Format: fourcc('R', 'G', 'B', '3')}}, nil); !errors.Is(err, ErrFormatUnsupported) {
		t.Errorf("raw camera for RGB3: %v", err)
	}
	if _, err := NewRawCamera(CameraConfig{Device: "/dev/video0", Choice: h264}, nil); !errors.Is(err, ErrFormatUnsupported) {
		t.Errorf("raw camera for H.264: %v", err)
	}
	if _, err := NewH264Camera(CameraConfig{Device: "/dev/video0", Choice: yuyv}, nil); !errors.Is(err, ErrFormatUnsupported) {
		t.Errorf("H.264 camera for YUYV: %v", err)
	}

	raw, err := NewRawCamera(CameraConfig{Device: "/dev/null", Choice: yuyv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // Run may be called again
		err := raw.Run(ctx, func(media.RawFrame) { t.Error("frame from /dev/null") })
		if !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), "/dev/null") {
			t.Errorf("raw Run on /dev/null: %v", err)
		}
	}
	missing := t.TempDir() + "/video0"
	hc, err := NewH264Camera(CameraConfig{Device: missing, Choice: h264}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = hc.Run(ctx, func(media.AccessUnit) { t.Error("unit from nowhere") })
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("H.264 Run on a missing device: %v", err)
	}
}

func TestWrapLost(t *testing.T) {
	for _, e := range []error{unix.ENODEV, unix.EIO, unix.ENXIO, unix.ESHUTDOWN} {
		err := wrapLost("v4l2 /dev/video0: dequeue buffer", e)
		if !errors.Is(err, ErrDeviceLost) || !errors.Is(err, e) || !strings.HasPrefix(err.Error(), "v4l2 /dev/video0: dequeue buffer: camera lost") {
			t.Errorf("%v: %v", e, err)
		}
	}
	if err := wrapLost("x", unix.EINVAL); errors.Is(err, ErrDeviceLost) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("EINVAL: %v", err)
	}
}

func TestFPSFract(t *testing.T) {
	tests := []struct {
		fps  float64
		want fract
	}{
		{30, fract{1, 30}},
		{12.5, fract{1000, 12500}},
		{29.97, fract{1000, 29970}},
	}
	for _, tt := range tests {
		if got := fpsFract(tt.fps); got != tt.want {
			t.Errorf("fpsFract(%v) = %v, want %v", tt.fps, got, tt.want)
		}
	}
}
