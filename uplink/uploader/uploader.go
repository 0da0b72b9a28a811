// Package uploader sends the box's lessons to the hub, progressively: each
// segment as soon as it is closed, while the lesson is still recording;
// init.mp4 first, then the segments in order, and index.m3u8 and
// lesson.json last, once the lesson is complete and every media file is
// verified. For each file it asks the hub for a grant (a tus endpoint and
// a token), sends the file with the tus client (resuming from the hub's
// offset; the upload URL and offset are kept in the catalog so a reboot
// resumes mid-file), reports completion and waits for the hub's verified
// ack, which alone moves the file to verified. At most Concurrency
// transfers run at once, within the upload windows and the bandwidth cap.
// Retention deletes local lessons only once every file is verified.
package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/segment"
	"github.com/classcap/classcap/uplink/pace"
	"github.com/classcap/classcap/uplink/tus"
)

// File is one file of a lesson to upload.
type File struct {
	Device  string
	Lesson  string
	Name    string
	Segment int // 0 for init.mp4, index.m3u8, lesson.json
	Bytes   int64
	SHA256  string
}

// Grant is the hub's permission to send one file.
type Grant struct {
	Endpoint string // tus creation URL
	Token    string
}

// Hub is what the uploader needs from the hub; the MQTT link provides it.
type Hub interface {
	// Grant asks for a tus endpoint and token for f.
	Grant(ctx context.Context, f File) (Grant, error)
	// Complete reports that every byte of f was sent and returns nil once
	// the hub acknowledged it verified (size and SHA-256 checked).
	Complete(ctx context.Context, f File) error
}

// Config sets the policy.
type Config struct {
	Device      string
	Concurrency int          // transfers at once; default 2
	Rate        int64        // bytes per second for all transfers; 0: no cap
	Windows     pace.Windows // times of day uploads may run; none: any time
	// ClockSynced says whether the wall clock can tell the time of day
	// (nil: always). A Pi has no clock battery and boots at 1970: until
	// its clock is set the windows cannot be judged and uploads run at any
	// time (waiting for a window that cannot be told would let the disk
	// fill).
	ClockSynced func() bool
	Poll        time.Duration // how often to look for work without a Kick; default 5 s
	ChunkSize   int64         // tus PATCH size; default 1 MiB
	// Retention: delete verified lessons older than RetentionDays (0:
	// never for age), and oldest first while free space is below
	// RetentionFreeBytes (0: never for space).
	RetentionDays      int
	RetentionFreeBytes int64
	// Retry delays of the tus client (defaults 250 ms .. 30 s).
	MinDelay, MaxDelay time.Duration
}

// Policy is the part of Config that may change while the uploader runs
// (the hub's configuration): it takes effect at once, for transfers under
// way too (the bandwidth cap) or from the next pass (the rest).
type Policy struct {
	Concurrency        int
	Rate               int64
	Windows            pace.Windows
	RetentionDays      int
	RetentionFreeBytes int64
}

// Backlog is what waits to go to the hub.
type Backlog struct {
	Segments int   `json:"segments"` // media segments not yet verified
	Files    int   `json:"files"`    // every file not yet verified
	Bytes    int64 `json:"bytes"`
	// Damaged counts segments found damaged on the box's storage (their
	// bytes no longer have the SHA-256 they were written with) since the
	// daemon started; Problem describes the latest. Failing storage (a worn
	// SD card) shows here first.
	Damaged int    `json:"damaged,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Window is whether uploads may run now: "open", "closed" (outside
	// the upload windows), or "clock not synced" (the windows cannot be
	// judged, uploads run); empty without windows.
	Window string `json:"window,omitempty"`
}

// Uploader is the component; New then Run.
type Uploader struct {
	cfg    Config
	cat    *catalog.Catalog
	store  *lesson.Store
	hub    Hub
	client *tus.Client
	log    *slog.Logger
	now    func() time.Time
	free   func(dir string) (int64, error)
	kick   chan struct{}
	rate   rateLimit

	mu           sync.Mutex // guards the policy in cfg, and what follows
	inflight     map[string]bool
	backlog      Backlog
	damaged      map[string]bool // lesson/file found damaged on disk
	problem      string          // what the latest damaged file is
	unsyncedSaid bool            // the unsynced clock was logged
	wg           sync.WaitGroup
}

// New makes an uploader over the catalog and the lesson store. With a nil
// hub (the box is offline) it only keeps the backlog and applies
// retention.
func New(cfg Config, cat *catalog.Catalog, store *lesson.Store, hub Hub, log *slog.Logger) *Uploader {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	c := tus.New(log)
	if cfg.ChunkSize > 0 {
		c.ChunkSize = cfg.ChunkSize
	}
	if cfg.MinDelay > 0 {
		c.MinDelay = cfg.MinDelay
	}
	if cfg.MaxDelay > 0 {
		c.MaxDelay = cfg.MaxDelay
	}
	// A transfer gives up after a while without progress and is tried
	// again on a later pass (with a fresh grant).
	c.MaxFailures = 8
	u := &Uploader{cfg: cfg, cat: cat, store: store, hub: hub, client: c, log: log, now: time.Now,
		free: freeBytes, kick: make(chan struct{}, 1), inflight: map[string]bool{}, damaged: map[string]bool{}}
	u.rate.set(cfg.Rate)
	c.Limiter = &u.rate
	return u
}

// SetPolicy changes the concurrency, bandwidth cap, upload windows and
// retention.
func (u *Uploader) SetPolicy(p Policy) {
	if p.Concurrency <= 0 {
		p.Concurrency = 2
	}
	u.mu.Lock()
	u.cfg.Concurrency, u.cfg.Rate, u.cfg.Windows = p.Concurrency, p.Rate, p.Windows
	u.cfg.RetentionDays, u.cfg.RetentionFreeBytes = p.RetentionDays, p.RetentionFreeBytes
	u.mu.Unlock()
	u.rate.set(p.Rate)
	u.log.Info("upload policy", "concurrency", p.Concurrency, "rate_bytes_per_s", p.Rate, "windows", len(p.Windows),
		"retention_days", p.RetentionDays, "retention_free_bytes", p.RetentionFreeBytes)
	u.Kick()
}

func (u *Uploader) policy() Policy {
	u.mu.Lock()
	defer u.mu.Unlock()
	return Policy{Concurrency: u.cfg.Concurrency, Rate: u.cfg.Rate, Windows: u.cfg.Windows,
		RetentionDays: u.cfg.RetentionDays, RetentionFreeBytes: u.cfg.RetentionFreeBytes}
}

// rateLimit is the bandwidth cap shared by every transfer; it can be
// replaced while they run.
type rateLimit struct{ l atomic.Pointer[pace.Limiter] }

func (r *rateLimit) set(bytesPerSecond int64) {
	if bytesPerSecond <= 0 {
		r.l.Store(nil)
		return
	}
	r.l.Store(pace.New(bytesPerSecond))
}

// WaitN waits on the current cap (none: at once).
func (r *rateLimit) WaitN(ctx context.Context, n int) error {
	return r.l.Load().WaitN(ctx, n) // a nil *pace.Limiter lets everything through
}

// Kick makes the uploader look for work now (a segment closed, a lesson
// stopped, the link came up).
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Backlog returns what waits to go to the hub, as of the last pass.
func (u *Uploader) Backlog() Backlog {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.backlog
}

// Run uploads until ctx ends.
func (u *Uploader) Run(ctx context.Context) error {
	// Finish deletions a crash interrupted.
	if left, _ := filepath.Glob(filepath.Join(u.store.Root(), ".*.deleting")); len(left) > 0 {
		for _, d := range left {
			os.RemoveAll(d)
		}
	}
	t := time.NewTicker(u.cfg.Poll)
	defer t.Stop()
	defer u.wg.Wait()
	for {
		if err := u.pass(ctx); err != nil {
			u.log.Warn("upload pass", "err", err)
		}
		if err := u.prune(); err != nil {
			u.log.Warn("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.kick:
		case <-t.C:
		}
	}
}

// pending lists the files of every lesson that are not verified, in the
// order they may go, and the backlog. Playlist and lesson.json are listed
// only once the lesson is complete and its media verified; lesson.json
// only after the playlist.
func (u *Uploader) pending() ([]File, Backlog, error) {
	lessons, err := u.cat.Lessons()
	if err != nil {
		return nil, Backlog{}, err
	}
	sort.Slice(lessons, func(i, j int) bool { return lessons[i].Number < lessons[j].Number })
	var out []File
	var bl Backlog
	for _, l := range lessons {
		files, mediaDone, err := u.lessonFiles(l)
		if err != nil {
			u.log.Warn("lesson files", "lesson", l.ID, "err", err)
			continue
		}
		for _, f := range files {
			bl.Files++
			bl.Bytes += f.Bytes
			if f.Segment > 0 {
				bl.Segments++
			}
		}
		if !mediaDone {
			// Only media may go yet.
			for _, f := range files {
				if f.Name != lesson.PlaylistName && f.Name != lesson.MetaName {
					out = append(out, f)
				}
			}
			continue
		}
		if len(files) > 0 {
			out = append(out, files[0]) // the playlist, then (next pass) lesson.json
		}
	}
	return out, bl, nil
}

// lessonFiles returns the unverified files of a lesson, and whether every
// media file (init.mp4 and segments) is verified with the lesson complete.
func (u *Uploader) lessonFiles(l catalog.Lesson) ([]File, bool, error) {
	segs, err := u.cat.Segments(l.ID)
	if err != nil {
		return nil, false, err
	}
	var files []File
	dir := u.store.Dir(l.ID)
	mk := func(name string, n int) (File, bool, error) {
		t, ok, err := u.cat.GetTransfer(l.ID, name)
		if err != nil {
			return File{}, false, err
		}
		if ok && t.State == catalog.SegmentVerified {
			if name != lesson.PlaylistName && name != lesson.MetaName {
				return File{}, true, nil
			}
			// lesson.json (and so the playlist) may change after the
			// upload (a new visibility): the hub gets the newer one.
			if sum, err := hashPath(filepath.Join(dir, name)); err != nil || sum == t.SHA256 {
				return File{}, true, nil
			}
		}
		return File{Device: u.cfg.Device, Lesson: l.ID, Name: name, Segment: n}, false, nil
	}
	mediaDone := l.State == lesson.StateComplete
	if len(segs) > 0 {
		f, done, err := mk(segment.InitName, 0)
		if err != nil {
			return nil, false, err
		}
		if !done {
			fi, err := os.Stat(filepath.Join(dir, segment.InitName))
			if err != nil {
				return nil, false, err
			}
			f.Bytes = fi.Size()
			files = append(files, f)
			mediaDone = false
		}
	}
	for _, s := range segs {
		if s.State == catalog.SegmentVerified {
			continue
		}
		mediaDone = false
		files = append(files, File{Device: u.cfg.Device, Lesson: l.ID, Name: s.Name, Segment: s.Number, Bytes: s.Bytes, SHA256: s.SHA256})
	}
	if l.State == lesson.StateComplete {
		for _, name := range []string{lesson.PlaylistName, lesson.MetaName} {
			f, done, err := mk(name, 0)
			if err != nil {
				return nil, false, err
			}
			if !done {
				if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
					f.Bytes = fi.Size()
				}
				files = append(files, f)
			}
		}
	}
	return files, mediaDone, nil
}

func key(f File) string { return f.Lesson + "/" + f.Name }

// Window states (Backlog.Window).
const (
	WindowOpen     = "open"
	WindowClosed   = "closed"
	WindowUnsynced = "clock not synced"
)

// window says whether uploads may run now, and why.
func (u *Uploader) window() (bool, string) {
	windows := u.policy().Windows
	if len(windows) == 0 {
		return true, ""
	}
	if u.cfg.ClockSynced != nil && !u.cfg.ClockSynced() {
		u.mu.Lock()
		if !u.unsyncedSaid {
			u.unsyncedSaid = true
			u.log.Warn("the clock is not synced: upload windows cannot be judged; uploading at any time until it is")
		}
		u.mu.Unlock()
		return true, WindowUnsynced
	}
	if windows.Open(u.now()) {
		return true, WindowOpen
	}
	return false, WindowClosed
}

// pass starts transfers for pending files, up to the concurrency limit.
func (u *Uploader) pass(ctx context.Context) error {
	files, bl, err := u.pending()
	if err != nil {
		return err
	}
	open, window := u.window()
	u.mu.Lock()
	bl.Damaged, bl.Problem, bl.Window = len(u.damaged), u.problem, window
	u.backlog = bl
	u.mu.Unlock()
	if u.hub == nil || !open {
		return nil
	}
	for _, f := range files {
		u.mu.Lock()
		if len(u.inflight) >= u.cfg.Concurrency {
			u.mu.Unlock()
			return nil
		}
		if u.inflight[key(f)] {
			u.mu.Unlock()
			continue
		}
		u.inflight[key(f)] = true
		u.mu.Unlock()
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			err := u.transfer(ctx, f)
			u.mu.Lock()
			delete(u.inflight, key(f))
			u.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				u.log.Warn("upload failed; will retry", "lesson", f.Lesson, "file", f.Name, "err", err)
				return // the next poll tries again
			}
			u.Kick()
		}()
	}
	return nil
}

// transfer sends one file and waits for its verified ack.
func (u *Uploader) transfer(ctx context.Context, f File) error {
	path := filepath.Join(u.store.Dir(f.Lesson), f.Name)
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", f.Lesson, f.Name, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", f.Lesson, f.Name, err)
	}
	t, known, err := u.cat.GetTransfer(f.Lesson, f.Name)
	if err != nil {
		return err
	}
	if f.SHA256 == "" {
		// init.mp4, the playlist and lesson.json: hashed as they are now.
		// A file that changed since its upload began starts a new one.
		sum, err := hashFile(fh)
		if err != nil {
			return fmt.Errorf("upload %s/%s: %w", f.Lesson, f.Name, err)
		}
		f.SHA256 = sum
	}
	f.Bytes = fi.Size()
	if known && t.State == catalog.SegmentVerified && t.SHA256 == f.SHA256 && t.Bytes == f.Bytes {
		// A pass listed the file just before its last transfer finished:
		// the hub holds these very bytes already.
		return nil
	}
	if !known || t.SHA256 != f.SHA256 || t.Bytes != f.Bytes {
		t = catalog.Transfer{Lesson: f.Lesson, Name: f.Name, Bytes: f.Bytes, SHA256: f.SHA256, State: catalog.SegmentClosed}
	}
	if f.Segment > 0 && t.State == catalog.SegmentClosed && t.URL == "" {
		// A segment's first upload: its bytes must still be the ones it
		// was written with, or the hub would refuse them for ever.
		sum, err := hashFile(fh)
		if err != nil {
			return fmt.Errorf("upload %s/%s: %w", f.Lesson, f.Name, err)
		}
		if sum != f.SHA256 {
			if err := u.markDamaged(f, sum); err != nil {
				return err
			}
			f.SHA256 = sum
			t = catalog.Transfer{Lesson: f.Lesson, Name: f.Name, Bytes: f.Bytes, SHA256: f.SHA256, State: catalog.SegmentClosed}
		}
	}
	if t.State != catalog.SegmentUploaded {
		g, err := u.hub.Grant(ctx, f)
		if errors.Is(err, ErrVerified) {
			return u.verifiedNow(f, t)
		}
		if err != nil {
			return fmt.Errorf("upload %s/%s: grant: %w", f.Lesson, f.Name, err)
		}
		tf := &tus.File{Endpoint: g.Endpoint, Token: g.Token, Length: f.Bytes, Body: fh, URL: t.URL,
			Metadata: map[string]string{"filename": f.Name, "lesson": f.Lesson, "segment": fmt.Sprint(f.Segment), "sha256": f.SHA256}}
		res, err := u.client.Send(ctx, tf, tus.Observer{
			Created: func(url string) error {
				t.URL, t.Offset = url, 0
				return u.cat.PutTransfer(t)
			},
			Progress: func(off int64) { t.Offset = off },
		})
		if err != nil {
			t.URL = tf.URL
			if perr := u.cat.PutTransfer(t); perr != nil {
				u.log.Warn("persist transfer", "err", perr)
			}
			return fmt.Errorf("upload %s/%s: %w", f.Lesson, f.Name, err)
		}
		u.log.Debug("file sent", "lesson", f.Lesson, "file", f.Name, "bytes", f.Bytes, "sent", res.Sent,
			"already_stored", res.AlreadyStored, "rejected", res.Rejected)
		t.State, t.URL, t.Offset = catalog.SegmentUploaded, "", f.Bytes
		if err := u.markState(f, t); err != nil {
			return err
		}
	}
	if err := u.hub.Complete(ctx, f); err != nil {
		if errors.Is(err, ErrRefused) {
			// The hub does not hold it as announced: send it again.
			t.State = catalog.SegmentClosed
			if perr := u.markState(f, t); perr != nil {
				return perr
			}
		}
		return fmt.Errorf("upload %s/%s: completion: %w", f.Lesson, f.Name, err)
	}
	return u.verifiedNow(f, t)
}

// markDamaged handles a segment whose bytes on disk are no longer those it
// was written with: it is reported (Backlog, and so the box's state and an
// alarm) and its lesson's record names the bytes as they are, which then go
// to the hub like any other: most of a damaged segment still plays, and
// nothing better exists. A lesson still recording is left for after its
// stop (the recording owns its record).
func (u *Uploader) markDamaged(f File, sum string) error {
	msg := fmt.Sprintf("%s of lesson %s is damaged on the box's storage: its SHA-256 is %s, not %s as written", f.Name, f.Lesson, sum, f.SHA256)
	u.mu.Lock()
	if !u.damaged[key(f)] {
		u.log.Error("segment damaged on disk; the storage may be failing", "lesson", f.Lesson, "file", f.Name,
			"sha256", sum, "recorded_sha256", f.SHA256)
	}
	u.damaged[key(f)], u.problem = true, msg
	u.mu.Unlock()
	m, err := u.store.MarkDamaged(f.Lesson, f.Segment, sum, f.Bytes)
	if err != nil {
		return fmt.Errorf("upload %s/%s: damaged on disk: %w", f.Lesson, f.Name, err)
	}
	if err := u.cat.PutLesson(m); err != nil {
		return fmt.Errorf("upload %s/%s: damaged on disk: %w", f.Lesson, f.Name, err)
	}
	return nil
}

// verifiedNow records the hub's verified ack.
func (u *Uploader) verifiedNow(f File, t catalog.Transfer) error {
	t.State, t.URL, t.Offset = catalog.SegmentVerified, "", f.Bytes
	if err := u.markState(f, t); err != nil {
		return err
	}
	u.log.Info("file verified by the hub", "lesson", f.Lesson, "file", f.Name, "bytes", f.Bytes)
	return nil
}

func (u *Uploader) markState(f File, t catalog.Transfer) error {
	t.Updated = u.now().Unix()
	if err := u.cat.PutTransfer(t); err != nil {
		return err
	}
	if f.Segment > 0 {
		return u.cat.SetSegmentState(f.Lesson, f.Segment, t.State)
	}
	return nil
}

func hashPath(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	return hashFile(fh)
}

func hashFile(r io.ReaderAt) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, 1<<62)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
