package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/pacer"
)

// VideoConfig configures a replayed H.264 camera.
type VideoConfig struct {
	Path  string    // H.264 Annex-B elementary stream without B-frames
	FPS   float64   // default: the SPS timing information, else 30
	Pace  Pace      // PaceRealtime or PaceFast
	Epoch time.Time // zero of the PTS timeline; default the start of Run
}

// Video replays an H.264 file as a camera that delivers encoded access
// units. The file is streamed, never held in memory, and looped forever.
type Video struct {
	cfg    VideoConfig
	params media.VideoParams
}

// NewVideo checks that the file holds an SPS, a PPS and an IDR picture and
// has no B-frames (PTS are assigned in file order).
func NewVideo(cfg VideoConfig) (*Video, error) {
	if cfg.Path == "" {
		return nil, errors.New("replay video: no file given")
	}
	if cfg.Pace != PaceRealtime && cfg.Pace != PaceFast {
		return nil, fmt.Errorf("replay video %s: unknown %v", cfg.Path, cfg.Pace)
	}
	if cfg.FPS < 0 || cfg.FPS > 240 || math.IsNaN(cfg.FPS) {
		return nil, fmt.Errorf("replay video %s: fps %g out of range", cfg.Path, cfg.FPS)
	}
	params, sps, err := videoProbe(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("replay video %s: %w", cfg.Path, err)
	}
	if r := sps.VUI; r != nil && r.BitstreamRestriction != nil && r.BitstreamRestriction.MaxNumReorderFrames > 0 {
		return nil, fmt.Errorf("replay video %s: the stream reorders frames (B-frames); encode it with -bf 0", cfg.Path)
	}
	if cfg.FPS == 0 {
		cfg.FPS = 30
		if f := sps.FPS(); f >= 1 && f <= 240 {
			cfg.FPS = f
		}
	}
	return &Video{cfg: cfg, params: params}, nil
}

// videoProbe reads the file up to its first IDR picture.
func videoProbe(path string) (media.VideoParams, mch264.SPS, error) {
	var s mch264.SPS
	f, err := os.Open(path)
	if err != nil {
		return media.VideoParams{}, s, err
	}
	defer f.Close()
	r := h264.NewAnnexBReader(f)
	var sps, pps []byte
	for {
		au, err := r.Next()
		if err == io.EOF {
			return media.VideoParams{}, s, errors.New("no IDR picture in the file")
		}
		if err != nil {
			return media.VideoParams{}, s, err
		}
		if a, b := h264.FindParams(au); a != nil || b != nil {
			sps, pps = videoOr(a, sps), videoOr(b, pps)
		}
		if !h264.IsIDR(au) {
			continue
		}
		if sps == nil || pps == nil {
			return media.VideoParams{}, s, errors.New("no SPS and PPS before the first IDR picture")
		}
		p, err := h264.ParseParams(sps, pps)
		if err != nil {
			return p, s, err
		}
		return p, s, s.Unmarshal(sps) // again, for its timing and reordering fields
	}
}

// videoOr returns a, or b when a is nil.
func videoOr(a, b []byte) []byte {
	if a != nil {
		return a
	}
	return b
}

// Params returns the parameter sets and size of the file's first IDR.
func (v *Video) Params() media.VideoParams { return v.params }

// FPS returns the frame rate the file is replayed at.
func (v *Video) FPS() float64 { return v.cfg.FPS }

func (v *Video) framePTS(n uint64) time.Duration {
	return time.Duration(math.Round(float64(n) * float64(time.Second) / v.cfg.FPS))
}

// Run delivers the file's access units to sink until ctx ends, then returns
// ctx.Err(); it returns other errors when the file cannot be read. Unit n
// has PTS n/FPS, continuous across loops; every pass starts at an IDR and
// every IDR unit carries SPS and PPS. With PaceRealtime unit n is delivered
// at Epoch+PTS; when the sink made Run late by more than a frame period,
// units are dropped up to the next IDR (the only place H.264 can resume)
// with their PTS still counted, so the timeline stays real time.
// sink is called on Run's goroutine and may keep the unit.
func (v *Video) Run(ctx context.Context, sink func(media.AccessUnit)) error {
	p := &videoPlayer{
		v:      v,
		epoch:  v.cfg.Epoch,
		period: time.Duration(float64(time.Second) / v.cfg.FPS),
		sps:    v.params.SPS,
		pps:    v.params.PPS,
		pacer:  pacer.New(ctx),
		sink:   sink,
	}
	defer p.pacer.Close()
	if p.epoch.IsZero() {
		p.epoch = time.Now()
	}
	for {
		delivered, err := p.pass(ctx)
		if err != nil {
			return err
		}
		if delivered == 0 {
			return fmt.Errorf("replay video %s: a pass over the file found no IDR picture", v.cfg.Path)
		}
	}
}

// readAhead is how much of a replayed file one read(2) fetches: about a
// second of 720p video, a few of sound (64 KiB was five reads a second).
// Each read that is an ordinary system call wakes the Go runtime's monitor
// thread, and the replayed devices otherwise run on timer wake-ups alone.
const readAhead = 256 << 10

type videoPlayer struct {
	v        *Video
	epoch    time.Time
	period   time.Duration
	n        uint64 // next unit number
	sps, pps []byte
	pacer    *pacer.Pacer
	sink     func(media.AccessUnit)
	br       *bufio.Reader // reused by every pass
}

// pass plays the file once and returns the number of units it took from it.
func (p *videoPlayer) pass(ctx context.Context) (int, error) {
	f, err := os.Open(p.v.cfg.Path)
	if err != nil {
		return 0, fmt.Errorf("replay video: %w", err)
	}
	defer f.Close()
	if p.br == nil {
		p.br = bufio.NewReaderSize(f, readAhead)
	} else {
		p.br.Reset(f)
	}
	r := h264.NewAnnexBReader(p.br)
	units, started, resync := 0, false, false
	for {
		au, err := r.Next()
		if err == io.EOF {
			return units, nil
		}
		if err != nil {
			return units, fmt.Errorf("replay video %s: %w", p.v.cfg.Path, err)
		}
		if a, b := h264.FindParams(au); a != nil || b != nil {
			p.sps, p.pps = videoOr(a, p.sps), videoOr(b, p.pps)
		}
		if !videoHasSlice(au) {
			continue
		}
		idr := h264.IsIDR(au)
		if !started && !idr {
			continue
		}
		started = true
		units++
		pts := p.v.framePTS(p.n)
		p.n++

		if p.v.cfg.Pace == PaceRealtime {
			due := p.epoch.Add(pts)
			if time.Since(due) > p.period {
				resync = true
			}
			if resync && !idr {
				continue
			}
			resync = false
			if err := p.pacer.Until(due); err != nil {
				return units, err
			}
		}
		if err := ctx.Err(); err != nil {
			return units, err
		}
		if idr {
			au = p.withParams(au)
		}
		p.sink(media.AccessUnit{NALUs: au, PTS: pts, IDR: idr})
	}
}

// withParams makes sure an IDR unit carries SPS and PPS, placed after an
// access unit delimiter if there is one.
func (p *videoPlayer) withParams(au [][]byte) [][]byte {
	if sps, pps := h264.FindParams(au); sps != nil && pps != nil {
		return au
	}
	out := make([][]byte, 0, len(au)+2)
	i := 0
	if h264.Type(au[0]) == h264.TypeAUD {
		out = append(out, au[0])
		i = 1
	}
	out = append(out, p.sps, p.pps)
	for _, n := range au[i:] {
		if t := h264.Type(n); t != h264.TypeSPS && t != h264.TypePPS {
			out = append(out, n)
		}
	}
	return out
}

func videoHasSlice(au [][]byte) bool {
	for _, n := range au {
		if t := h264.Type(n); t >= 1 && t <= 5 {
			return true
		}
	}
	return false
}
