package lesson

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/rawaudio"
	"github.com/classcap/classcap/capture/segment"
)

// Store is the folder of lessons.
type Store struct {
	root string
	log  *slog.Logger
}

// NewStore opens (creating it if needed) the lesson folder root.
func NewStore(root string, log *slog.Logger) (*Store, error) {
	if err := durable.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("lesson store: %w", err)
	}
	return &Store{root: root, log: log}, nil
}

// Root returns the store's folder.
func (s *Store) Root() string { return s.root }

// Dir returns the folder of lesson id.
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

// IDs returns the ids of the lesson folders on disk, oldest first.
func (s *Store) IDs() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list lessons: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && ValidID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// NextNumber returns a lesson number above every lesson on disk and above
// floor (the catalog's counter, which also remembers deleted lessons).
func (s *Store) NextNumber(floor int) (int, error) {
	ids, err := s.IDs()
	if err != nil {
		return 0, err
	}
	n := floor
	for _, id := range ids {
		if k, ok := NumberOf(id); ok && k >= n {
			n = k + 1
		}
	}
	return max(n, 1), nil
}

// Load reads lesson.json of lesson id.
func (s *Store) Load(id string) (Meta, error) {
	if !ValidID(id) {
		return Meta{}, fmt.Errorf("lesson %q: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(id), MetaName))
	if errors.Is(err, os.ErrNotExist) {
		return Meta{}, fmt.Errorf("lesson %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("lesson %s: %w", id, err)
	}
	m, err := ParseMeta(b)
	if err != nil {
		return Meta{}, fmt.Errorf("lesson %s: %w", id, err)
	}
	return m, nil
}

// List returns every lesson whose lesson.json reads, oldest first. Folders
// that do not read are logged and skipped.
func (s *Store) List() ([]Meta, error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	var out []Meta
	for _, id := range ids {
		m, err := s.Load(id)
		if err != nil {
			s.log.Warn("skipping unreadable lesson", "lesson", id, "err", err)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Store) save(m Meta) error {
	dir := s.Dir(m.ID)
	if err := durable.WriteFile(filepath.Join(dir, PlaylistName), m.Playlist(), 0o644); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dir, MetaName), m.Encode(), 0o644)
}

// MarkDamaged records that segment number of a closed lesson no longer has
// the bytes it was written with: lesson.json and the playlist then name
// the bytes as they are (size and SHA-256) and keep the recorded SHA-256.
// It refuses a lesson still being recorded (ErrStillRecording).
func (s *Store) MarkDamaged(id string, number int, sum string, size int64) (Meta, error) {
	m, err := s.Load(id)
	if err != nil {
		return Meta{}, err
	}
	if m.State == StateRecording {
		return Meta{}, fmt.Errorf("mark %s segment %d damaged: %w", id, number, ErrStillRecording)
	}
	for i := range m.Segments {
		sg := &m.Segments[i]
		if sg.Number != number {
			continue
		}
		if sg.SHA256 == sum && sg.Bytes == size {
			return m, nil
		}
		if !sg.Damaged {
			sg.Damaged, sg.RecordedSHA256 = true, sg.SHA256
		}
		sg.SHA256, sg.Bytes = sum, size
		if err := s.save(m); err != nil {
			return Meta{}, fmt.Errorf("mark %s segment %d damaged: %w", id, number, err)
		}
		return m, nil
	}
	return Meta{}, fmt.Errorf("mark %s segment %d damaged: no such segment", id, number)
}

// WriterConfig sets up the media of a recording.
type WriterConfig struct {
	SegmentDuration time.Duration
	Video           media.VideoParams
	AudioChannels   int
	// OnSegment is called after each segment is durably recorded in
	// lesson.json (the catalog hooks in here).
	OnSegment func(Meta, Segment)
	// Now reports the current clock (boot time, wall time when synced).
	Now func() Clock
}

// Recording is a lesson being recorded. One goroutine owns it; lesson.json,
// the playlist and the OnSegment hook are written by a goroutine of its own,
// so a slow disk never holds up the media behind them.
type Recording struct {
	store *Store
	meta  Meta
	w     *segment.Writer
	cfg   WriterConfig

	saves   chan Meta // the latest record to write; older ones are replaced
	saved   chan struct{}
	saveMu  sync.Mutex
	saveErr error

	raw      *rawaudio.File // the microphones' own channels, when kept
	rawStart float64        // media time of the open raw file's first sample
	rawOff   bool           // writing raw audio failed; the lesson goes on without
	rawCh    int            // format of the open raw file
	rawRate  int
	rawSeg   int  // the segment the raw audio written last belongs to
	rawBegun bool // raw audio was written (none is dropped from then on)
	// The run of contiguous raw samples: media time of its first, frames
	// so far, format.
	rawRunSet    bool
	rawRunAt     time.Duration
	rawRunFrames int64
	rawRunRate   int
	rawRunCh     int
	rawPending   []rawBlock // waiting for their segment to be known
	rawHeld      int64      // nanoseconds of audio in rawPending
}

// Create starts a new lesson described by m (ID, Number, Device,
// Visibility, StartedBy, Video, Audio set by the caller).
func (s *Store) Create(m Meta, cfg WriterConfig) (*Recording, error) {
	if !ValidID(m.ID) {
		return nil, fmt.Errorf("create lesson: bad id %q", m.ID)
	}
	dir := s.Dir(m.ID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create lesson: %w", err)
	}
	if err := durable.SyncDir(s.root); err != nil {
		return nil, err
	}
	m.V = 1
	m.State = StateRecording
	m.SegmentDuration = cfg.SegmentDuration.Seconds()
	now := cfg.Now()
	m.Start = now
	m.Segments = []Segment{}
	m.Gaps = []Gap{}
	m.Runs = []Run{{Start: now}}
	if err := s.save(m); err != nil {
		return nil, err
	}
	return s.open(m, cfg, segment.Position{}, false)
}

func (s *Store) open(m Meta, cfg WriterConfig, pos segment.Position, disc bool) (*Recording, error) {
	r := &Recording{store: s, meta: m, cfg: cfg, saves: make(chan Meta, 1), saved: make(chan struct{})}
	w, err := segment.New(segment.Config{
		Dir:             s.Dir(m.ID),
		SegmentDuration: cfg.SegmentDuration,
		Video:           cfg.Video,
		AudioChannels:   cfg.AudioChannels,
		Start:           pos,
		Discontinuity:   disc,
		OnSegment:       r.segmentClosed,
	})
	if err != nil {
		return nil, fmt.Errorf("lesson %s: %w", m.ID, err)
	}
	r.w = w
	go r.saveLoop()
	return r, nil
}

func (r *Recording) saveLoop() {
	defer close(r.saved)
	for m := range r.saves {
		err := r.store.save(m)
		if err != nil {
			r.saveMu.Lock()
			if r.saveErr == nil {
				r.saveErr = err
			}
			r.saveMu.Unlock()
			continue
		}
		if r.cfg.OnSegment != nil && len(m.Segments) > 0 {
			r.cfg.OnSegment(m, m.Segments[len(m.Segments)-1])
		}
	}
}

// queueSave hands a copy of the record to the save goroutine, replacing one
// that is still waiting.
func (r *Recording) queueSave() {
	m := r.meta
	m.Segments = append([]Segment(nil), r.meta.Segments...)
	m.Gaps = append([]Gap(nil), r.meta.Gaps...)
	m.Runs = append([]Run(nil), r.meta.Runs...)
	m.Raw = append([]RawAudio(nil), r.meta.Raw...)
	for {
		select {
		case r.saves <- m:
			return
		default:
		}
		select {
		case <-r.saves:
		default:
		}
	}
}

// drainSaves waits until every queued record is written and reports the
// first error a save met.
func (r *Recording) drainSaves() error {
	if r.saves != nil {
		close(r.saves)
		<-r.saved
		r.saves = nil
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	return r.saveErr
}

// Meta returns the lesson's record as of the last closed segment.
func (r *Recording) Meta() Meta { return r.meta }

// WriteVideo adds an access unit (see segment.Writer.WriteVideo).
func (r *Recording) WriteVideo(au media.AccessUnit) error {
	err := r.w.WriteVideo(au)
	r.rawCaughtUp()
	return err
}

// WriteAudio adds an Opus packet.
func (r *Recording) WriteAudio(p media.AudioPacket) error {
	err := r.w.WriteAudio(p)
	r.rawCaughtUp()
	return err
}

// rawCaughtUp writes the raw audio that waited for the media just written
// to decide its segment, rather than at the next raw block: what is on
// disk when the process dies is then all that could be.
func (r *Recording) rawCaughtUp() {
	if len(r.rawPending) == 0 || r.rawOff {
		return
	}
	if err := r.flushRaw(false); err != nil {
		err = r.rawFailed(err)
		r.store.log.Error("raw audio stopped for this lesson; the lesson goes on", "err", err)
	}
}

// WriteRaw adds a block of the microphones' own channels, kept beside the
// segments (see package rawaudio). Each file holds exactly the samples
// whose media time falls in its segment: [its start, the next segment's
// start). The segment writer decides where a segment begins only when the
// keyframe it begins with arrives, later than the sound of the same moment,
// so samples wait here (at most rawHoldMax) until their segment is known.
// Samples before the first picture are dropped. A block that begins later
// than the one before it ends (a microphone that was away, blocks dropped
// on the way) ends its file: the next begins at the block's own time, so a
// gap in the sound stays a gap between files. A write error is returned
// once; raw audio then stops for this recording while the lesson goes on.
func (r *Recording) WriteRaw(p media.PCM) error {
	if r.rawOff || !r.w.Started() || p.Frames() == 0 || p.Rate <= 0 {
		return nil
	}
	at := r.w.MediaTime(p.PTS)
	b := rawBlock{p: p}
	exp := r.rawRunAt + media.FramesToDur(r.rawRunFrames, p.Rate)
	if !r.rawRunSet || p.Rate != r.rawRunRate || p.Channels != r.rawRunCh || at-exp >= media.FramesToDur(int64(p.Frames()), p.Rate) {
		// A new run: the first block, another format or a gap. Within a
		// run the samples follow on from the last (small jitter in the
		// blocks' times is not a gap); the clock is followed forward only
		// past a whole block, and never back.
		r.rawRunSet, r.rawRunAt, r.rawRunFrames, r.rawRunRate, r.rawRunCh = true, at, 0, p.Rate, p.Channels
		b.newRun = true
	}
	b.runAt, b.frame0 = r.rawRunAt, r.rawRunFrames
	r.rawRunFrames += int64(p.Frames())
	r.rawPending = append(r.rawPending, b)
	r.rawHeld += int64(p.Frames()) * int64(time.Second) / int64(p.Rate)
	if err := r.flushRaw(false); err != nil {
		return r.rawFailed(err)
	}
	return nil
}

// rawHoldMax bounds how much raw audio waits for its segment to be known
// (the camera stalling before it counts as lost, then the sound held back
// during its loss); past it the oldest samples go to the segment the raw
// audio is in.
const rawHoldMax = 5 * time.Second

// rawBlock is a block of raw audio waiting for its segment.
type rawBlock struct {
	p      media.PCM
	off    int           // frames already written
	runAt  time.Duration // media time of the run's first sample
	frame0 int64         // frames of the run before this block
	newRun bool          // the block follows a gap (its file ends before it)
}

// rawFrameAt returns the first frame of a run (at rate) whose media time
// is at or after t.
func rawFrameAt(runAt, t time.Duration, rate int) int64 {
	if t <= runAt {
		return 0
	}
	d, s := int64(t-runAt), int64(time.Second)
	n := d/s*int64(rate) + d%s*int64(rate)/s
	for media.FramesToDur(n, rate) < t-runAt {
		n++
	}
	for n > 0 && media.FramesToDur(n-1, rate) >= t-runAt {
		n--
	}
	return n
}

// flushRaw writes the waiting samples whose segment is known; with all
// set (the lesson ends) it writes every one, the last to the last segment.
func (r *Recording) flushRaw(all bool) error {
	horizon := r.w.Decided()
	for len(r.rawPending) > 0 {
		b := &r.rawPending[0]
		rate := b.p.Rate
		if b.newRun && b.off == 0 {
			if err := r.closeRaw(); err != nil {
				return err
			}
		}
		t := b.runAt + media.FramesToDur(b.frame0+int64(b.off), rate)
		if r.rawSeg == 0 {
			r.rawSeg = r.w.FirstSegment()
		}
		if _, ok := r.w.SegmentStart(r.rawSeg); !ok {
			// The raw audio began long after the lesson (or fell far
			// behind): take it up from the segment being written, or
			// the latest before it that began by t.
			n := r.w.Segment()
			for start, ok := r.w.SegmentStart(n); ok && t < start && n > r.rawSeg+1; start, ok = r.w.SegmentStart(n) {
				n--
			}
			r.rawSeg = n
		}
		// Move on to the segment the sample falls in.
		for {
			next, ok := r.w.SegmentStart(r.rawSeg + 1)
			if !ok || t < next {
				break
			}
			if err := r.closeRaw(); err != nil {
				return err
			}
			r.rawSeg++
		}
		if start, ok := r.w.SegmentStart(r.rawSeg); ok && t < start && !r.rawBegun {
			// Before the segment's first picture (the lesson's start).
			skip := int(rawFrameAt(b.runAt, start, rate) - b.frame0)
			r.rawConsume(min(skip, b.p.Frames()) - b.off)
			continue
		}
		// The samples up to the next segment's start, or up to where
		// segment starts are known.
		end := int64(b.p.Frames())
		limit, known := r.w.SegmentStart(r.rawSeg + 1)
		if !known && !all && r.rawHeld <= int64(rawHoldMax) {
			limit, known = horizon, true
		}
		if known {
			end = min(end, rawFrameAt(b.runAt, limit, rate)-b.frame0)
		}
		n := int(end) - b.off
		if n <= 0 {
			return nil
		}
		if err := r.writeRawFrames(b, t, n); err != nil {
			return err
		}
		r.rawBegun = true
		r.rawConsume(n)
	}
	return nil
}

// rawConsume marks n frames of the first waiting block as done.
func (r *Recording) rawConsume(n int) {
	b := &r.rawPending[0]
	b.off += n
	r.rawHeld -= int64(n) * int64(time.Second) / int64(b.p.Rate)
	if b.off >= b.p.Frames() {
		r.rawPending[0] = rawBlock{}
		r.rawPending = r.rawPending[1:]
		if len(r.rawPending) == 0 {
			r.rawPending, r.rawHeld = nil, 0
		}
	}
}

// writeRawFrames writes n frames of b from its next one, at media time t,
// to the file of the raw audio's segment.
func (r *Recording) writeRawFrames(b *rawBlock, t time.Duration, n int) error {
	p := b.p
	p.Samples = p.Samples[b.off*p.Channels : (b.off+n)*p.Channels]
	if f := r.raw; f != nil && (f.Segment() != r.rawSeg || !r.rawFits(p)) {
		if err := r.closeRaw(); err != nil {
			return err
		}
	}
	if r.raw == nil {
		if err := r.openRaw(r.rawSeg, p, t); err != nil {
			return err
		}
	}
	err := r.raw.Write(p)
	if errors.Is(err, rawaudio.ErrFull) {
		if err = r.closeRaw(); err == nil {
			if err = r.openRaw(r.rawSeg, p, t); err == nil {
				err = r.raw.Write(p)
			}
		}
	}
	return err
}

func (r *Recording) rawFits(p media.PCM) bool { return r.rawCh == p.Channels && r.rawRate == p.Rate }

func (r *Recording) openRaw(seg int, p media.PCM, at time.Duration) error {
	dir := r.store.Dir(r.meta.ID)
	for k := 0; ; k++ {
		f, err := rawaudio.Create(dir, rawaudio.Name(seg, k), seg, p.Channels, p.Rate, at)
		if errors.Is(err, os.ErrExist) && k < 100 {
			continue // an earlier file of this segment (a gap, a crash)
		}
		if err != nil {
			return err
		}
		r.raw, r.rawStart, r.rawCh, r.rawRate = f, at.Seconds(), p.Channels, p.Rate
		return nil
	}
}

// closeRaw closes the open raw file and records it in lesson.json.
func (r *Recording) closeRaw() error {
	f := r.raw
	if f == nil {
		return nil
	}
	r.raw = nil
	info, err := f.Close()
	if err != nil {
		return err
	}
	r.meta.Raw = append(r.meta.Raw, rawEntry(info, r.rawStart))
	r.queueSave()
	return nil
}

func (r *Recording) rawFailed(err error) error {
	r.rawOff = true
	r.rawPending, r.rawHeld = nil, 0
	if r.raw != nil {
		r.raw.Abandon()
		r.raw = nil
	}
	return fmt.Errorf("lesson %s: raw audio: %w", r.meta.ID, err)
}

func rawEntry(info rawaudio.Info, start float64) RawAudio {
	return RawAudio{Name: info.Name, Segment: info.Segment, Start: start, Duration: info.Duration().Seconds(),
		Channels: info.Channels, Rate: info.Rate, Bits: info.Bits, Bytes: info.Bytes, SHA256: info.SHA256}
}

// VideoGap says the camera is away: sound goes on alone, and the next
// picture, a keyframe, begins a segment after a discontinuity (see
// segment.Writer.VideoGap). Record the gap with AddGap once it is over.
func (r *Recording) VideoGap() error { return r.w.VideoGap() }

// MediaTime returns where pipeline time pts falls in the lesson.
func (r *Recording) MediaTime(pts time.Duration) time.Duration { return r.w.MediaTime(pts) }

// VideoEnd returns the media time where the last picture written ends.
func (r *Recording) VideoEnd() time.Duration { return r.w.VideoEnd() }

// AddGap records a stretch the lesson lacks (a device that was away) in
// lesson.json; it is written at once, in the background.
func (r *Recording) AddGap(g Gap) {
	r.meta.Gaps = append(r.meta.Gaps, g)
	r.queueSave()
}

func (r *Recording) segmentClosed(info segment.Info) error {
	seg := Segment{
		Number:        info.Number,
		Name:          info.Name,
		Start:         info.Start.Seconds(),
		Duration:      info.Duration.Seconds(),
		Bytes:         info.Bytes,
		SHA256:        info.SHA256,
		Discontinuity: info.Discontinuity,
	}
	r.meta.addSegment(seg)
	if r.meta.Start.Wall == nil {
		r.meta.Start.Wall = backdate(r.meta.Start, r.cfg.Now())
	}
	r.saveMu.Lock()
	err := r.saveErr
	r.saveMu.Unlock()
	if err != nil {
		return err
	}
	r.queueSave()
	return nil
}

// backdate gives the wall time of an earlier moment start once the clock
// is synchronised in now, when both are in the same boot.
func backdate(start, now Clock) *time.Time {
	if now.Wall == nil || start.BootID == "" || start.BootID != now.BootID {
		return nil
	}
	t := now.Wall.Add(-time.Duration((now.BootTime - start.BootTime) * float64(time.Second)))
	return &t
}

func (m *Meta) addSegment(s Segment) {
	m.Segments = append(m.Segments, s)
	m.Duration = s.Start + s.Duration
	m.Bytes += s.Bytes
}

// Close ends the lesson: everything pending is written, the playlist becomes
// VOD with ENDLIST, and lesson.json says how it stopped.
func (r *Recording) Close(stop Stop) (Meta, error) {
	err := r.w.Close()
	// Every segment start is known now: the raw audio waiting goes to its
	// files.
	var rerr error
	if !r.rawOff {
		rerr = r.flushRaw(true)
		if cerr := r.closeRaw(); rerr == nil {
			rerr = cerr
		}
		if rerr != nil {
			r.rawFailed(rerr)
		}
	}
	if err == nil && rerr != nil {
		err = fmt.Errorf("lesson %s: raw audio: %w", r.meta.ID, rerr)
	}
	if serr := r.drainSaves(); err == nil {
		err = serr
	}
	stop.At = r.cfg.Now()
	r.meta.Stop = &stop
	r.meta.State = StateComplete
	if serr := r.store.save(r.meta); err == nil {
		err = serr
	}
	return r.meta, err
}

// Abandon stops writing without ending the lesson, as a crash would: the
// lesson stays open and is continued or closed by Recover. Media already
// handed over is written first.
func (r *Recording) Abandon() (Meta, error) {
	if r.raw != nil {
		r.raw.Abandon()
		r.raw = nil
	}
	err := r.w.Close()
	if serr := r.drainSaves(); err == nil {
		err = serr
	}
	return r.meta, err
}

// Recovered is what Recover found.
type Recovered struct {
	Meta     Meta
	Position segment.Position
	Repaired []string // segment files that were repaired or added
	// Gap is the time between the last media written and now, when it
	// can be measured (same boot or synchronised wall clocks), else -1.
	Gap time.Duration
}

// Recover makes an open lesson consistent after a crash: .part segments are
// truncated to their last complete fragment and closed, segments on disk
// that lesson.json lacks are added, and the playlist is rewritten. The
// lesson stays open; call Resume to continue it or Finish to close it.
func (s *Store) Recover(id string, now Clock) (Recovered, error) {
	m, err := s.Load(id)
	if err != nil {
		return Recovered{}, err
	}
	dir := s.Dir(id)
	rec := Recovered{Gap: -1}
	// Temporary files of durable writes never hold the only copy.
	tmps, _ := filepath.Glob(filepath.Join(dir, "*"+durable.TempSuffix))
	for _, t := range tmps {
		os.Remove(t)
	}
	known := map[int]bool{}
	for _, seg := range m.Segments {
		known[seg.Number] = true
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "seg_*.m4s"+segment.PartSuffix))
	for _, p := range parts {
		info, _, err := segment.Repair(p)
		if errors.Is(err, segment.ErrEmpty) {
			s.log.Info("removed empty segment", "lesson", id, "file", filepath.Base(p))
			continue
		}
		if err != nil {
			// Keep the bytes for a person to look at; never delete media.
			s.log.Error("cannot repair segment", "lesson", id, "file", p, "err", err)
			os.Rename(p, p+".bad")
			continue
		}
		rec.Repaired = append(rec.Repaired, info.Name)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	sort.Strings(names)
	var lastSum segment.Summary
	lastNum := 0
	for _, p := range names {
		n, ok := segment.ParseName(filepath.Base(p))
		if !ok {
			continue
		}
		if known[n] && n < m.lastNumber() {
			continue
		}
		info, sum, err := segment.InfoFromFile(p)
		if err != nil {
			s.log.Error("unreadable segment", "lesson", id, "file", p, "err", err)
			continue
		}
		if !known[n] {
			if len(m.Segments) > 0 && n < m.lastNumber() {
				s.log.Warn("segment out of order ignored", "lesson", id, "file", p)
				continue
			}
			info.Discontinuity = m.startsRun(info.Start.Seconds())
			m.addSegment(Segment{Number: n, Name: info.Name, Start: info.Start.Seconds(),
				Duration: info.Duration.Seconds(), Bytes: info.Bytes, SHA256: info.SHA256,
				Discontinuity: info.Discontinuity})
			if !contains(rec.Repaired, info.Name) {
				rec.Repaired = append(rec.Repaired, info.Name)
			}
		}
		lastSum, lastNum = sum, n
	}
	if lastNum > 0 {
		rec.Position = segment.PositionAfter(lastNum, lastSum)
	}
	s.recoverRaw(dir, &m, &rec)
	rec.Gap = m.gapUntil(now)
	rec.Meta = m
	if err := s.save(m); err != nil {
		return Recovered{}, err
	}
	return rec, nil
}

// recoverRaw closes the raw audio files a crash left open and adds those
// lesson.json lacks, each at the start its header records (a file written
// before headers did: its segment's start, or for a segment that was lost,
// the lesson's end).
func (s *Store) recoverRaw(dir string, m *Meta, rec *Recovered) {
	known := map[string]bool{}
	for _, r := range m.Raw {
		known[r.Name] = true
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "seg_*.wav"+rawaudio.PartSuffix))
	for _, p := range parts {
		_, err := rawaudio.Repair(p)
		if errors.Is(err, rawaudio.ErrEmpty) {
			continue
		}
		if err != nil {
			s.log.Error("cannot repair raw audio", "lesson", m.ID, "file", p, "err", err)
			os.Rename(p, p+".bad")
			continue
		}
		rec.Repaired = append(rec.Repaired, strings.TrimSuffix(filepath.Base(p), rawaudio.PartSuffix))
	}
	names, _ := filepath.Glob(filepath.Join(dir, "seg_*.wav"))
	sort.Strings(names)
	for _, p := range names {
		name := filepath.Base(p)
		if _, ok := rawaudio.ParseName(name); !ok || known[name] {
			continue
		}
		info, err := rawaudio.InfoFromFile(p)
		if err != nil {
			s.log.Error("unreadable raw audio", "lesson", m.ID, "file", p, "err", err)
			continue
		}
		start := m.Duration
		for _, seg := range m.Segments {
			if seg.Number == info.Segment {
				start = seg.Start
			}
		}
		if info.HasStart {
			start = info.Start.Seconds()
		}
		m.Raw = append(m.Raw, rawEntry(info, start))
	}
	sort.SliceStable(m.Raw, func(i, j int) bool { return m.Raw[i].Name < m.Raw[j].Name })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (m *Meta) lastNumber() int {
	if len(m.Segments) == 0 {
		return 0
	}
	return m.Segments[len(m.Segments)-1].Number
}

// startsRun reports whether a segment starting at media time start is the
// first of a continued run (it follows a gap).
func (m *Meta) startsRun(start float64) bool {
	if len(m.Runs) < 2 {
		return false
	}
	d := start - m.Runs[len(m.Runs)-1].MediaStart
	return d > -0.001 && d < 0.001
}

// gapUntil estimates how long ago the last media was captured.
func (m *Meta) gapUntil(now Clock) time.Duration {
	if len(m.Runs) == 0 {
		return -1
	}
	run := m.Runs[len(m.Runs)-1]
	endBoot := run.Start.BootTime + (m.Duration - run.MediaStart)
	switch {
	case run.Start.BootID != "" && run.Start.BootID == now.BootID:
		return max(0, time.Duration((now.BootTime-endBoot)*float64(time.Second)))
	case run.Start.Wall != nil && now.Wall != nil:
		end := run.Start.Wall.Add(time.Duration((m.Duration - run.MediaStart) * float64(time.Second)))
		return max(0, now.Wall.Sub(end))
	}
	return -1
}

// Resume continues a recovered lesson with a discontinuity and a gap entry.
func (s *Store) Resume(rec Recovered, reason string, cfg WriterConfig) (*Recording, error) {
	m := rec.Meta
	now := cfg.Now()
	pos := rec.Position.Aligned()
	gap := -1.0
	if rec.Gap >= 0 {
		gap = rec.Gap.Seconds()
	}
	m.Gaps = append(m.Gaps, Gap{At: m.Duration, Duration: gap, Reason: reason})
	m.Runs = append(m.Runs, Run{Start: now, MediaStart: pos.SegmentStart().Seconds()})
	if err := s.save(m); err != nil {
		return nil, err
	}
	return s.open(m, cfg, pos, len(m.Segments) > 0)
}

// Finish closes a recovered lesson without continuing it.
func (s *Store) Finish(rec Recovered, stop Stop) (Meta, error) {
	m := rec.Meta
	m.State = StateComplete
	m.Stop = &stop
	return m, s.save(m)
}

// Export writes the lesson as one MP4 file (init.mp4 and every closed
// segment in order) to w.
func (s *Store) Export(id string, w io.Writer) error {
	m, err := s.Load(id)
	if err != nil {
		return err
	}
	dir := s.Dir(id)
	files := []string{segment.InitName}
	for _, seg := range m.Segments {
		files = append(files, seg.Name)
	}
	for _, name := range files {
		if strings.ContainsAny(name, "/\\") {
			return fmt.Errorf("export %s: bad file name %q", id, name)
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("export %s: %w", id, err)
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("export %s: %w", id, err)
		}
	}
	return nil
}

// RemoveEmpty deletes a lesson that holds no media at all (stopped or
// interrupted before its first fragment reached disk): there is nothing in
// it to keep, and an empty playlist is no lesson anyone can play.
func (s *Store) RemoveEmpty(id string) error {
	m, err := s.Load(id)
	if err != nil {
		return err
	}
	if len(m.Segments) > 0 {
		return fmt.Errorf("remove lesson %s: it holds %d segments", id, len(m.Segments))
	}
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove lesson %s: %w", id, err)
	}
	return durable.SyncDir(s.root)
}
