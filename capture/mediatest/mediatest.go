// Package mediatest has test helpers around ffmpeg and ffprobe, the judges of
// every media file the project writes: making H.264 test streams, decoding
// files and playlists with no error allowed, and probing stream durations.
package mediatest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/h264"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/rawaudio"
)

// H264 makes an H.264 stream with ffmpeg (one slice per picture, no
// B-frames, an IDR every gop pictures) and splits it into access units with
// PTS n/fps.
func H264(t testing.TB, seconds, fps, gop int) ([]media.AccessUnit, media.VideoParams) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "v.h264")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("testsrc2=size=320x240:rate=%d", fps), "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", strconv.Itoa(gop),
		"-x264-params", "keyint_min="+strconv.Itoa(gop)+":scenecut=0:threads=1", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	var aus []media.AccessUnit
	var vp media.VideoParams
	for i, nalus := range AccessUnits(t, out) {
		if sps, pps := h264.FindParams(nalus); sps != nil {
			vp.SPS, vp.PPS = sps, pps
		}
		aus = append(aus, media.AccessUnit{NALUs: nalus, IDR: h264.IsIDR(nalus),
			PTS: time.Duration(i) * time.Second / time.Duration(fps)})
	}
	if len(vp.SPS) == 0 || len(aus) != seconds*fps {
		t.Fatalf("test stream: %d access units, sps %d bytes", len(aus), len(vp.SPS))
	}
	vp.Width, vp.Height = 320, 240
	return aus, vp
}

// AccessUnits reads every access unit of an H.264 Annex-B file with the
// project's own reader.
func AccessUnits(t testing.TB, path string) [][][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := h264.NewAnnexBReader(f)
	var aus [][][]byte
	for {
		au, err := r.Next()
		if err == io.EOF {
			return aus
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		aus = append(aus, au)
	}
}

// SilentOpus is a valid 20 ms mono Opus packet (a TOC byte only: decoders
// conceal it as silence).
var SilentOpus = []byte{0xf8}

// Durations returns the durations ffprobe reports for the video and audio
// streams of a file or playlist.
func Durations(t testing.TB, file string) (video, audio float64) {
	t.Helper()
	// Packet timestamps are the truth for fragmented files and playlists.
	for _, st := range []string{"v:0", "a:0"} {
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", st,
			"-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", file).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
		}
		first, last, prev := -1.0, 0.0, -1.0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(line, ",")
			if len(f) < 2 {
				continue
			}
			pts, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			d, err := strconv.ParseFloat(f[1], 64)
			if err != nil && prev >= 0 {
				d = pts - prev // packets without a duration: the spacing
			}
			prev = pts
			if first < 0 || pts < first {
				first = pts
			}
			last = max(last, pts+d)
		}
		d := 0.0
		if first >= 0 {
			d = last - first
		}
		if st == "v:0" {
			video = d
		} else {
			audio = d
		}
	}
	return video, audio
}

// DecodeClean decodes a file or playlist with ffmpeg and fails the test on
// any error or warning ffmpeg prints.
func DecodeClean(t testing.TB, file string) {
	t.Helper()
	if err := Decode(file); err != nil {
		t.Fatal(err)
	}
}

// Decode decodes a file or playlist with ffmpeg and returns an error holding
// whatever ffmpeg complained about.
//
// An EVENT playlist (a lesson still recording) makes ffmpeg wait for more
// segments, so Decode gives up after two minutes.
func Decode(file string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		return fmt.Errorf("ffmpeg decode %s: %v\n%s", file, err, out)
	}
	return nil
}

// Concat writes init.mp4 followed by every seg_*.m4s of dir into one file and
// returns its path.
func Concat(t testing.TB, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	sort.Strings(names)
	b, err := os.ReadFile(filepath.Join(dir, "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		s, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, s...)
	}
	out := filepath.Join(t.TempDir(), "all.mp4")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// RawCounts reads a raw microphone file (capture/rawaudio, 24-bit) made
// from a counting signal: channel 0 of sample frame n carries a count and
// channel 1 its negation. It returns the file's header and the count of
// each frame, failing t on a file that does not hold such frames.
func RawCounts(t testing.TB, path string) (rawaudio.Format, []int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := rawaudio.ParseHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fb := f.Channels * 3
	data := b[f.DataOffset : f.DataOffset+f.DataBytes]
	if f.Bits != 24 || f.Channels < 2 || len(data)%fb != 0 {
		t.Fatalf("%s: %+v, %d bytes of samples: not whole 24-bit frames of 2 or more channels", path, f, len(data))
	}
	s24 := func(p []byte) int64 { return int64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24) >> 8) }
	out := make([]int64, 0, len(data)/fb)
	for i := 0; i < len(data); i += fb {
		v, neg := s24(data[i:]), s24(data[i+3:])
		if neg != -v {
			t.Fatalf("%s: frame %d: channels 0 and 1 hold %d and %d, not a count and its negation", path, i/fb, v, neg)
		}
		out = append(out, v)
	}
	return f, out
}
