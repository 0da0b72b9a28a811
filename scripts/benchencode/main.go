// Command benchencode runs the box's raw-camera path on frames read from a
// file, for scripts/bench-encode.sh: each YUYV frame is converted to I420
// as the V4L2 camera does (device/v4l2.ConvertFrame), encoded by the
// software encoder the pipeline uses (openh264), and written as fMP4
// segments by the recorder's segment writer (capture/segment, fsync
// included). It prints the media duration written, in seconds.
//
//	benchencode -in FRAMES.yuyv -width 1280 -height 720 -fps 30 -out DIR
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/capture/videoenc"
	"github.com/classcap/classcap/device/v4l2"
)

func main() {
	in := flag.String("in", "", "raw YUYV frames, one after another")
	w := flag.Int("width", 1280, "frame width")
	h := flag.Int("height", 720, "frame height")
	fps := flag.Float64("fps", 30, "frame rate")
	kbps := flag.Int("bitrate-kbps", 2500, "video bitrate")
	out := flag.String("out", "", "directory for init.mp4 and the segments")
	flag.Parse()
	secs, err := run(*in, *out, *w, *h, *fps, *kbps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchencode:", err)
		os.Exit(1)
	}
	fmt.Printf("%.3f\n", secs)
}

func run(in, out string, w, h int, fps float64, kbps int) (float64, error) {
	if in == "" || out == "" || w <= 0 || h <= 0 || fps <= 0 {
		return 0, errors.New("need -in, -out, a size and a rate")
	}
	f, err := os.Open(in)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	enc, err := pipeline.Software(videoenc.Config{Width: w, Height: h, FPS: fps, BitrateBps: kbps * 1000,
		KeyframeInterval: 2 * time.Second})
	if err != nil {
		return 0, err
	}
	defer enc.Close()

	var sw *segment.Writer
	var werr error
	write := func(au media.AccessUnit) {
		if werr != nil {
			return
		}
		if sw == nil {
			sps, pps := h264.FindParams(au.NALUs)
			if !au.IDR || sps == nil || pps == nil {
				werr = errors.New("first access unit is not an IDR with SPS and PPS")
				return
			}
			params, err := h264.ParseParams(sps, pps)
			if err != nil {
				werr = err
				return
			}
			if sw, werr = segment.New(segment.Config{Dir: out, SegmentDuration: 4 * time.Second, Video: params}); werr != nil {
				return
			}
		}
		werr = sw.WriteVideo(au)
	}

	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]byte, 2*w*h)
	var img *image.YCbCr
	n := 0
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return 0, fmt.Errorf("read frame %d: %w", n, err)
		}
		if img, err = v4l2.ConvertFrame(img, buf, v4l2.FormatYUYV, w, h); err != nil {
			return 0, err
		}
		pts := time.Duration(float64(n) * float64(time.Second) / fps)
		if err := enc.Encode(media.RawFrame{Image: img, PTS: pts, Seq: uint64(n)}, write); err != nil {
			return 0, err
		}
		if werr != nil {
			return 0, werr
		}
		n++
	}
	if sw == nil {
		return 0, errors.New("no frames")
	}
	if err := sw.Close(); err != nil {
		return 0, err
	}
	return float64(n) / fps, nil
}
