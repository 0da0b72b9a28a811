// Package segment writes a lesson's media as fragmented MP4: one init.mp4
// (ftyp+moov with an H.264 and an Opus track) and numbered segments
// seg_NNNNNN.m4s, each starting at an IDR picture and holding one or more
// moof+mdat fragments. A segment is written under a temporary name (.part)
// with a fragment appended at least every FlushInterval of media and fsynced
// right after in the background (a stalled fsync never holds up the writes
// behind it), so a crash loses at most about that much; it is renamed to its final name when
// closed. Repair turns a .part file left by a crash into a closed segment.
package segment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/media"
)

// Track ids in init.mp4.
const (
	VideoTrackID = 1
	AudioTrackID = 2
)

// PartSuffix ends the name of a segment that is still being written.
const PartSuffix = ".part"

// InitName is the file name of the initialization segment.
const InitName = "init.mp4"

// Name returns the file name of segment number n (from 1).
func Name(n int) string { return fmt.Sprintf("seg_%06d.m4s", n) }

// ParseName returns the number of a segment file name, and false when name
// is not one.
func ParseName(name string) (int, bool) {
	var n int
	if len(name) != len("seg_000000.m4s") {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "seg_%06d.m4s", &n); err != nil || n <= 0 || Name(n) != name {
		return 0, false
	}
	return n, true
}

// Info describes a closed segment.
type Info struct {
	Number   int
	Name     string
	Start    time.Duration // media time of its first sample in the lesson
	Duration time.Duration
	Bytes    int64
	SHA256   string
	// Discontinuity is true for the first segment after a gap (a crash or a
	// device loss).
	Discontinuity bool
}

// Position is where a lesson's media timeline stands: what a writer that
// continues the lesson needs to know.
type Position struct {
	NextSegment int    // number of the next segment
	NextMoof    uint32 // next moof sequence number
	VideoTicks  uint64 // next video decode time (90 kHz)
	AudioTicks  uint64 // next audio decode time (48 kHz)
}

// End returns the media time at the end of the timeline.
func (p Position) End() time.Duration {
	v := ticksToDur(p.VideoTicks, media.VideoClockRate)
	a := ticksToDur(p.AudioTicks, media.AudioRate)
	return max(v, a)
}

// SegmentStart returns where the next segment will start: segments are
// measured on the video track, or on audio when there is no video.
func (p Position) SegmentStart() time.Duration {
	if p.VideoTicks > 0 {
		return ticksToDur(p.VideoTicks, media.VideoClockRate)
	}
	return ticksToDur(p.AudioTicks, media.AudioRate)
}

// Aligned returns the position with both tracks starting at the same
// moment: the later of the two ends. A run that continues a lesson after a
// crash starts there, so its sound and pictures stay in step; otherwise
// whatever one track was behind at the crash (sound reaches the writer
// after the pictures of the same moment) would shift that track in every
// later run, and grow with every crash. The shorter track gets a hole of
// that size at the discontinuity.
func (p Position) Aligned() Position {
	// Compare v/90000 with a/48000 exactly: v*48000 against a*90000.
	v, a := p.VideoTicks, p.AudioTicks
	const vr, ar = media.VideoClockRate, media.AudioRate
	switch {
	case v*ar > a*vr:
		p.AudioTicks = (v*ar + vr - 1) / vr
	case a*vr > v*ar:
		p.VideoTicks = (a*vr + ar - 1) / ar
	}
	return p
}

// Config sets up a Writer.
type Config struct {
	Dir             string
	SegmentDuration time.Duration // target; segments are cut at the first IDR past it
	FlushInterval   time.Duration // media time between fragments (default 500 ms)
	Video           media.VideoParams
	AudioChannels   int
	Start           Position // zero for a new lesson
	// Discontinuity marks the first segment written as following a gap.
	Discontinuity bool
	// OnSegment is called (from the writing goroutine) after a segment is
	// durably closed.
	OnSegment func(Info) error
}

type videoSample struct {
	dts     uint64 // 90 kHz, lesson timeline
	idr     bool
	payload []byte // AVCC
}

type audioSample struct {
	dts     uint64 // 48 kHz, lesson timeline
	samples uint32
	payload []byte
}

type openSegment struct {
	number   int
	path     string
	f        *os.File
	sync     *durable.Syncer
	hash     hash.Hash
	bytes    int64
	startV   uint64
	startA   uint64
	hasVideo bool
	hasAudio bool
	endV     uint64
	endA     uint64
	disc     bool
	// videoGap: the camera was lost while this segment was written; its
	// sound goes on past its last picture.
	videoGap bool
}

// Writer turns access units and Opus packets into segment files. It is not
// safe for concurrent use: one goroutine (the recorder's) owns it.
type Writer struct {
	cfg Config

	originSet bool
	origin    time.Duration // pipeline PTS that maps to cfg.Start on the lesson timeline
	lastVPTS  time.Duration

	video []videoSample // pending; the last one's duration is not yet known
	audio []audioSample
	nextA uint64 // next audio dts if packets stay contiguous
	cutAt uint64 // dts of a pending segment cut (an IDR past the target); 0 none
	cut   bool

	seg *openSegment
	// Reused from one fragment to the next: the fragment's bytes and its
	// tracks' sample tables.
	frag               []byte
	tracks             [2]fragTrack
	vSamples, aSamples []fragSample
	nextSeg            int
	moof               uint32
	lastFlush          uint64 // video dts of the last fragment written
	nextDisc           bool
	endV               uint64 // end of the last video sample written
	closed             bool
	lastErr            error
	// videoGap: the camera is away (VideoGap); audio goes on alone until a
	// keyframe begins a new segment.
	videoGap bool
	// starts holds where the segments begin on the lesson's timeline, by
	// number, once decided (see SegmentStart); decided is the media time
	// before which no other segment can begin.
	starts  map[int]time.Duration
	decided time.Duration
}

// ErrNeedKeyframe is returned for video before the first IDR.
var ErrNeedKeyframe = errors.New("segment: waiting for a keyframe")

// New returns a writer. It writes init.mp4 when the directory has none.
func New(cfg Config) (*Writer, error) {
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = 4 * time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 500 * time.Millisecond
	}
	if cfg.AudioChannels <= 0 {
		cfg.AudioChannels = 1
	}
	if cfg.Start.NextSegment <= 0 {
		cfg.Start.NextSegment = 1
	}
	if cfg.Start.NextMoof == 0 {
		cfg.Start.NextMoof = 1
	}
	if len(cfg.Video.SPS) == 0 || len(cfg.Video.PPS) == 0 {
		return nil, errors.New("segment: video parameters (SPS, PPS) are required")
	}
	w := &Writer{cfg: cfg, nextSeg: cfg.Start.NextSegment, moof: cfg.Start.NextMoof, nextDisc: cfg.Discontinuity,
		starts: map[int]time.Duration{}}
	initPath := filepath.Join(cfg.Dir, InitName)
	if _, err := os.Stat(initPath); errors.Is(err, os.ErrNotExist) {
		b, err := InitSegment(cfg.Video, cfg.AudioChannels)
		if err != nil {
			return nil, err
		}
		if err := durable.WriteFile(initPath, b, 0o644); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	return w, nil
}

// InitSegment returns init.mp4 for the given tracks.
func InitSegment(v media.VideoParams, audioChannels int) ([]byte, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{
		{ID: VideoTrackID, TimeScale: media.VideoClockRate, Codec: &mp4.CodecH264{SPS: v.SPS, PPS: v.PPS}},
		{ID: AudioTrackID, TimeScale: media.AudioRate, Codec: &mp4.CodecOpus{ChannelCount: audioChannels}},
	}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("segment: marshal init: %w", err)
	}
	return buf.Bytes(), nil
}

func durToTicks(d time.Duration, rate int) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d*time.Duration(rate) + time.Second/2) / time.Second)
}

func ticksToDur(t uint64, rate int) time.Duration {
	return time.Duration(t) * time.Second / time.Duration(rate)
}

// WriteVideo adds one access unit. Units before the first IDR are refused
// with ErrNeedKeyframe; units that go back in time are dropped.
func (w *Writer) WriteVideo(au media.AccessUnit) error {
	if w.closed {
		return errors.New("segment: writer closed")
	}
	if !w.originSet {
		if !au.IDR {
			return ErrNeedKeyframe
		}
		w.originSet = true
		w.origin = au.PTS
		w.nextA = w.cfg.Start.AudioTicks
		w.decide(w.nextSeg, w.cfg.Start.VideoTicks, media.VideoClockRate)
	} else if au.PTS <= w.lastVPTS {
		return nil
	}
	if w.videoGap {
		if !au.IDR {
			return ErrNeedKeyframe
		}
		if err := w.endGap(w.cfg.Start.VideoTicks + durToTicks(au.PTS-w.origin, media.VideoClockRate)); err != nil {
			return err
		}
	}
	w.lastVPTS = au.PTS
	nalus := make([][]byte, 0, len(au.NALUs))
	for _, n := range au.NALUs {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			continue
		}
		nalus = append(nalus, n)
	}
	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		return fmt.Errorf("segment: video sample: %w", err)
	}
	dts := w.cfg.Start.VideoTicks + durToTicks(au.PTS-w.origin, media.VideoClockRate)
	if n := len(w.video); n > 0 && dts <= w.video[n-1].dts {
		dts = w.video[n-1].dts + 1
	}
	if w.seg == nil && len(w.video) == 0 {
		w.lastFlush = dts
	}
	w.video = append(w.video, videoSample{dts: dts, idr: au.IDR, payload: payload})
	if au.IDR && !w.cut && w.segStartV() != dts && dts-w.segStartV() >= durToTicks(w.cfg.SegmentDuration, media.VideoClockRate) {
		w.cut = true
		w.cutAt = dts
		w.decide(w.Segment()+1, dts, media.VideoClockRate)
	}
	// A later segment can only begin at a later keyframe.
	w.decided = max(w.decided, ticksToDur(dts, media.VideoClockRate))
	return w.pump(false)
}

// segStartV is the video dts where the current segment begins.
func (w *Writer) segStartV() uint64 {
	if w.seg != nil && w.seg.hasVideo {
		return w.seg.startV
	}
	if len(w.video) > 0 {
		return w.video[0].dts
	}
	return w.cfg.Start.VideoTicks
}

// WriteAudio adds one Opus packet. Packets before the first video keyframe
// are dropped (the lesson starts with a picture).
func (w *Writer) WriteAudio(p media.AudioPacket) error {
	if w.closed {
		return errors.New("segment: writer closed")
	}
	if !w.originSet || p.PTS < w.origin {
		return nil
	}
	dts := w.cfg.Start.AudioTicks + durToTicks(p.PTS-w.origin, media.AudioRate)
	// Stay on the contiguous sample count unless the packet's own time
	// differs by more than a packet (a gap in capture): then follow the
	// clock forward. Never go back.
	if diff := int64(dts) - int64(w.nextA); diff < int64(p.Samples) {
		dts = w.nextA
	}
	w.audio = append(w.audio, audioSample{dts: dts, samples: uint32(p.Samples), payload: append([]byte(nil), p.Data...)})
	w.nextA = dts + uint64(p.Samples)
	return w.pump(false)
}

// videoKnownEnd is the dts up to which video samples have known durations.
func (w *Writer) videoKnownEnd() (uint64, bool) {
	if len(w.video) == 0 {
		return 0, false
	}
	return w.video[len(w.video)-1].dts, true
}

// audioTicksToVideo converts an audio dts to the video clock.
func audioToVideo(a uint64) uint64 { return a * media.VideoClockRate / media.AudioRate }

func videoToAudio(v uint64) uint64 { return v * media.AudioRate / media.VideoClockRate }

// pump writes whatever fragments and segment cuts are due. With final set,
// everything pending is written.
func (w *Writer) pump(final bool) error {
	flushTicks := durToTicks(w.cfg.FlushInterval, media.VideoClockRate)
	if w.videoGap && !final {
		return w.pumpAudioOnly()
	}
	for {
		vEnd, haveV := w.videoKnownEnd()
		aEnd := audioToVideo(w.nextA)
		if w.cut {
			// Cut once audio has caught up with the cut point, or video has
			// run a second past it (audio stalled).
			if !final && aEnd < w.cutAt && vEnd < w.cutAt+media.VideoClockRate {
				return nil
			}
			if err := w.fragment(w.cutAt, videoToAudio(w.cutAt)); err != nil {
				return err
			}
			if err := w.closeSegment(); err != nil {
				return err
			}
			w.cut = false
			// A later IDR in the pending samples may already be past the
			// next target.
			for _, s := range w.video {
				if s.idr && s.dts != w.segStartV() && s.dts-w.segStartV() >= durToTicks(w.cfg.SegmentDuration, media.VideoClockRate) {
					w.cut, w.cutAt = true, s.dts
					w.decide(w.Segment()+1, s.dts, media.VideoClockRate)
					break
				}
			}
			continue
		}
		if final {
			return w.fragment(^uint64(0), ^uint64(0))
		}
		if haveV && vEnd >= w.lastFlush+flushTicks {
			// Audio that starts before the newest picture can no longer
			// fall behind a segment cut.
			return w.fragment(vEnd, videoToAudio(vEnd))
		}
		if len(w.audio) > 0 && audioToVideo(w.nextA) >= max(vEnd, w.lastFlush)+2*flushTicks+media.VideoClockRate {
			// Video has stalled (camera lost): keep audio flowing.
			return w.fragment(w.lastFlush, ^uint64(0))
		}
		return nil
	}
}

// VideoGap tells the writer that the camera is away: every picture
// received so far is written (the last one with the usual frame duration),
// audio goes on alone in fragments and segments of the usual lengths, and
// the next picture must be a keyframe: it starts a new segment marked as a
// discontinuity, at its own time on the lesson's timeline (the time the
// camera was away is a hole in the video track, not a frozen picture).
func (w *Writer) VideoGap() error {
	if w.closed {
		return errors.New("segment: writer closed")
	}
	if !w.originSet || w.videoGap {
		return nil
	}
	if w.cut {
		if err := w.fragment(w.cutAt, videoToAudio(w.cutAt)); err != nil {
			return err
		}
		if err := w.closeSegment(); err != nil {
			return err
		}
		w.cut = false
	}
	if len(w.video) > 0 {
		end := w.video[len(w.video)-1].dts + w.lastVideoDuration()
		if err := w.fragment(^uint64(0), videoToAudio(end)); err != nil {
			return err
		}
	}
	w.videoGap = true
	if w.seg != nil {
		w.seg.videoGap = true
	}
	return nil
}

// MediaTime returns where pipeline time pts falls on the lesson's timeline
// (zero before the first picture).
func (w *Writer) MediaTime(pts time.Duration) time.Duration {
	if !w.originSet {
		return ticksToDur(w.cfg.Start.VideoTicks, media.VideoClockRate)
	}
	return ticksToDur(w.cfg.Start.VideoTicks, media.VideoClockRate) + pts - w.origin
}

// Started reports whether the first picture was written (MediaTime maps
// pipeline time from then on).
func (w *Writer) Started() bool { return w.originSet }

// Segment returns the number of the segment being written, or of the next
// one while none is open.
func (w *Writer) Segment() int {
	if w.seg != nil {
		return w.seg.number
	}
	return w.nextSeg
}

// decide records that segment n begins at ticks (of a clock at rate).
func (w *Writer) decide(n int, ticks uint64, rate int) {
	w.starts[n] = ticksToDur(ticks, rate)
	for k := range w.starts {
		if k < n-64 {
			delete(w.starts, k)
		}
	}
}

// FirstSegment returns the number of the first segment this writer writes.
func (w *Writer) FirstSegment() int { return w.cfg.Start.NextSegment }

// SegmentStart returns the media time where segment n begins (its Info's
// Start once closed), as soon as the writer has decided it: the first at
// the lesson's first picture, a later one when the keyframe it begins with
// arrives (or, while the camera is away, when the sound before it is
// written). The latest 64 segments are remembered.
func (w *Writer) SegmentStart(n int) (time.Duration, bool) {
	d, ok := w.starts[n]
	return d, ok
}

// Decided returns the media time before which every segment start is
// known (see SegmentStart): media before it belongs to a segment already
// decided.
func (w *Writer) Decided() time.Duration { return w.decided }

// VideoEnd returns the media time where the last picture written ends.
func (w *Writer) VideoEnd() time.Duration {
	return ticksToDur(max(w.endV, w.cfg.Start.VideoTicks), media.VideoClockRate)
}

// endGap closes the segment that holds the audio of a video gap at the
// keyframe (video dts) that ends it; the keyframe begins the next segment.
func (w *Writer) endGap(dts uint64) error {
	w.videoGap = false
	if err := w.fragment(^uint64(0), videoToAudio(dts)); err != nil {
		return err
	}
	if err := w.closeSegment(); err != nil {
		return err
	}
	w.nextDisc = true
	w.lastFlush = dts
	w.decide(w.nextSeg, dts, media.VideoClockRate)
	return nil
}

// gapHoldback is how much of the newest audio a video gap keeps pending:
// pictures reach the writer later than the sound of the same moment (they
// are encoded first), so the keyframe that ends a gap finds the sound after
// it still pending and the next segment begins with both.
const gapHoldback = time.Second

// pumpAudioOnly writes the audio of a video gap: a fragment every
// FlushInterval, a new segment every SegmentDuration, holding back the
// newest gapHoldback.
func (w *Writer) pumpAudioOnly() error {
	hold := durToTicks(gapHoldback, media.AudioRate)
	if len(w.audio) == 0 || w.nextA < hold {
		return nil
	}
	limit := w.nextA - hold
	if w.seg != nil {
		start := w.seg.startA
		if w.seg.hasVideo {
			start = videoToAudio(w.seg.startV)
		}
		if limit >= start+durToTicks(w.cfg.SegmentDuration, media.AudioRate) {
			if err := w.fragment(^uint64(0), limit); err != nil {
				return err
			}
			if err := w.closeSegment(); err != nil {
				return err
			}
			if len(w.audio) > 0 {
				w.decide(w.nextSeg, w.audio[0].dts, media.AudioRate)
			}
			w.decided = max(w.decided, ticksToDur(limit, media.AudioRate))
			return nil
		}
	}
	// Without pictures the segments are cut on the sound, no earlier than
	// limit; a keyframe that ends the gap before it is an overlap the
	// caller sees as a segment that begins in the past.
	w.decided = max(w.decided, ticksToDur(limit, media.AudioRate))
	if limit >= w.audio[0].dts+durToTicks(w.cfg.FlushInterval, media.AudioRate) {
		return w.fragment(^uint64(0), limit)
	}
	return nil
}

// fragment writes one moof+mdat with the video samples before vLimit whose
// duration is known (or all, for vLimit = max) and the audio samples that
// start before aLimit.
func (w *Writer) fragment(vLimit, aLimit uint64) error {
	for {
		wrote, err := w.fragmentOnce(vLimit, aLimit)
		if err != nil || !wrote {
			return err
		}
	}
}

// fragmentOnce writes one fragment and reports whether there was anything
// to write. Audio with a gap needs more than one.
func (w *Writer) fragmentOnce(vLimit, aLimit uint64) (bool, error) {
	var vs []videoSample
	all := vLimit == ^uint64(0)
	n := 0
	for n < len(w.video) && w.video[n].dts < vLimit {
		n++
	}
	if !all && n == len(w.video) && n > 0 {
		// The newest sample's duration is unknown until the next arrives.
		n--
	}
	vs = w.video[:n]
	na := 0
	for na < len(w.audio) && w.audio[na].dts < aLimit {
		na++
	}
	as := w.audio[:na]
	if len(vs) == 0 && len(as) == 0 {
		return false, nil
	}
	if w.seg == nil {
		if err := w.openSegment(vs, as); err != nil {
			return false, err
		}
	}
	tracks := w.tracks[:0]
	if len(vs) > 0 {
		pt := fragTrack{id: VideoTrackID, baseTime: vs[0].dts, samples: w.vSamples[:0]}
		for i, s := range vs {
			var d uint64
			if i+1 < len(vs) {
				d = vs[i+1].dts - s.dts
			} else if n < len(w.video) {
				d = w.video[n].dts - s.dts
			} else {
				d = w.lastVideoDuration()
			}
			pt.samples = append(pt.samples, fragSample{duration: uint32(d), nonSync: !s.idr, payload: s.payload})
			w.seg.endV = s.dts + d
			w.endV = s.dts + d
		}
		w.vSamples = pt.samples
		tracks = append(tracks, pt)
		w.lastFlush = vs[len(vs)-1].dts
	}
	if len(as) > 0 {
		// A gap in audio splits the run: a fragment holds one contiguous
		// run per track, so write up to the gap now and the rest later.
		k := 1
		for k < len(as) && as[k].dts == as[k-1].dts+uint64(as[k-1].samples) {
			k++
		}
		as = as[:k]
		na = k
		pt := fragTrack{id: AudioTrackID, baseTime: as[0].dts, samples: w.aSamples[:0]}
		for _, s := range as {
			pt.samples = append(pt.samples, fragSample{duration: s.samples, payload: s.payload})
		}
		w.aSamples = pt.samples
		tracks = append(tracks, pt)
		w.seg.endA = as[len(as)-1].dts + uint64(as[len(as)-1].samples)
		if !w.seg.hasAudio {
			w.seg.hasAudio, w.seg.startA = true, as[0].dts
		}
	}
	w.frag = appendFragment(w.frag[:0], w.moof, tracks) // its memory is kept for the next fragment
	clear(w.vSamples)                                   // the payloads are not held until the next one
	clear(w.aSamples)
	b := w.frag
	if _, err := w.seg.f.Write(b); err != nil {
		return false, fmt.Errorf("segment: write %s: %w", w.seg.path, err)
	}
	if err := w.seg.sync.Failed(); err != nil {
		return false, fmt.Errorf("segment: fsync %s: %w", w.seg.path, err)
	}
	w.seg.sync.Kick()
	w.seg.hash.Write(b)
	w.seg.bytes += int64(len(b))
	w.moof++
	w.video = append(w.video[:0], w.video[n:]...)
	w.audio = append(w.audio[:0], w.audio[na:]...)
	return true, nil
}

// lastVideoDuration estimates the duration of the final picture of a lesson:
// the previous frame interval, or 1/30 s.
func (w *Writer) lastVideoDuration() uint64 {
	if n := len(w.video); n >= 2 {
		return w.video[n-1].dts - w.video[n-2].dts
	}
	if w.seg != nil && w.seg.hasVideo && w.seg.endV > w.seg.startV {
		return min(w.seg.endV-w.seg.startV, media.VideoClockRate/30)
	}
	return media.VideoClockRate / 30
}

func (w *Writer) openSegment(vs []videoSample, as []audioSample) error {
	n := w.nextSeg
	path := filepath.Join(w.cfg.Dir, Name(n)+PartSuffix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("segment: create %s: %w", path, err)
	}
	if err := durable.SyncDir(w.cfg.Dir); err != nil {
		f.Close()
		return err
	}
	s := &openSegment{number: n, path: path, f: f, sync: durable.NewSyncer(f), hash: sha256.New(), disc: w.nextDisc, videoGap: w.videoGap}
	if len(vs) > 0 {
		s.hasVideo, s.startV = true, vs[0].dts
	}
	if len(as) > 0 {
		s.hasAudio, s.startA = true, as[0].dts
	}
	if s.hasVideo {
		w.decide(n, s.startV, media.VideoClockRate)
	} else {
		w.decide(n, s.startA, media.AudioRate)
	}
	w.nextDisc = false
	w.seg = s
	w.nextSeg++
	return nil
}

func (w *Writer) closeSegment() error {
	s := w.seg
	if s == nil {
		return nil
	}
	w.seg = nil
	err := s.sync.Stop()
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		s.f.Close()
		return fmt.Errorf("segment: fsync %s: %w", s.path, err)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("segment: close %s: %w", s.path, err)
	}
	final := filepath.Join(w.cfg.Dir, Name(s.number))
	if err := durable.Rename(s.path, final); err != nil {
		return err
	}
	info := Info{
		Number:        s.number,
		Name:          Name(s.number),
		Bytes:         s.bytes,
		SHA256:        hex.EncodeToString(s.hash.Sum(nil)),
		Discontinuity: s.disc,
	}
	info.Start, info.Duration = spanOf(s)
	if w.cfg.OnSegment != nil {
		return w.cfg.OnSegment(info)
	}
	return nil
}

// spanOf returns the start and duration of a segment: the video track's
// extent, or the audio's for a segment without pictures (camera lost).
func spanOf(s *openSegment) (time.Duration, time.Duration) {
	if s.hasVideo && s.endV > s.startV {
		start := ticksToDur(s.startV, media.VideoClockRate)
		end := ticksToDur(s.endV, media.VideoClockRate)
		if s.videoGap && s.hasAudio {
			// The camera was lost within the segment: its sound goes on.
			end = max(end, ticksToDur(s.endA, media.AudioRate))
		}
		return start, end - start
	}
	if s.hasAudio {
		start := ticksToDur(s.startA, media.AudioRate)
		return start, ticksToDur(s.endA, media.AudioRate) - start
	}
	return 0, 0
}

// Position returns where the timeline stands after everything written so
// far (call it after Close to continue the lesson later).
func (w *Writer) Position() Position {
	return Position{
		NextSegment: w.nextSeg,
		NextMoof:    w.moof,
		VideoTicks:  max(w.cfg.Start.VideoTicks, w.endV),
		AudioTicks:  max(w.cfg.Start.AudioTicks, w.nextA),
	}
}

// Close writes everything pending and closes the open segment. Media
// written before Close is durable when it returns.
func (w *Writer) Close() error {
	if w.closed {
		return w.lastErr
	}
	err := w.pump(true)
	if err == nil && w.seg != nil {
		err = w.closeSegment()
	}
	if w.seg != nil {
		w.seg.sync.Stop()
		w.seg.f.Close()
	}
	w.closed = true
	w.lastErr = err
	return err
}
