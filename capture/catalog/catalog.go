// Package catalog is the box's index of lessons and segments in bbolt: each
// lesson with its state, each segment with its size, checksum and upload
// state (recording, closed, uploaded, verified). It is written once per
// segment or event, never per frame. The lesson folders are the truth: a
// missing or corrupt catalog is moved aside and rebuilt from them.
package catalog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/classcap/classcap/capture/lesson"
)

// Segment states, in the order a segment goes through them.
const (
	SegmentClosed   = "closed"   // durably on the box
	SegmentUploaded = "uploaded" // the hub has every byte
	SegmentVerified = "verified" // the hub checked its SHA-256: the box may delete it
)

// Lesson is a catalog entry.
type Lesson struct {
	ID         string  `json:"id"`
	Number     int     `json:"number"`
	State      string  `json:"state"`
	Visibility string  `json:"visibility"`
	StartedBy  string  `json:"started_by"`
	Duration   float64 `json:"duration"`
	Bytes      int64   `json:"bytes"`
	Segments   int     `json:"segments"`
	Gaps       int     `json:"gaps"`
	Wall       string  `json:"wall_start,omitempty"`
}

// Segment is a catalog entry for one segment.
type Segment struct {
	Lesson   string  `json:"lesson"`
	Number   int     `json:"number"`
	Name     string  `json:"name"`
	Bytes    int64   `json:"bytes"`
	SHA256   string  `json:"sha256"`
	Duration float64 `json:"duration"`
	State    string  `json:"state"`
}

var (
	bucketLessons  = []byte("lessons")
	bucketSegments = []byte("segments")
	bucketMeta     = []byte("meta")
	keyNextNumber  = []byte("next_lesson_number")
)

// Catalog is the open database.
type Catalog struct {
	db  *bolt.DB
	log *slog.Logger
}

// Open opens the catalog at path. When it is missing or unreadable, it is
// (re)built from the lesson store; a corrupt file is kept beside it as
// path.corrupt-N for inspection.
func Open(path string, store *lesson.Store, log *slog.Logger) (*Catalog, error) {
	_, statErr := os.Stat(path)
	fresh := errors.Is(statErr, os.ErrNotExist)
	c, err := open(path, log)
	if err != nil {
		aside := ""
		for i := 1; ; i++ {
			aside = fmt.Sprintf("%s.corrupt-%d", path, i)
			if _, err := os.Stat(aside); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		log.Error("catalog unreadable; rebuilding from lesson folders", "path", path, "err", err, "kept_as", aside)
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("catalog: move aside %s: %w", path, rerr)
		}
		fresh = true
		if c, err = open(path, log); err != nil {
			return nil, err
		}
	}
	if fresh {
		if err := c.Rebuild(store); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func open(path string, log *slog.Logger) (c *Catalog, err error) {
	if err := precheck(path); err != nil {
		return nil, fmt.Errorf("catalog: open %s: corrupt: %w", path, err)
	}
	// bbolt panics (or faults reading its mapped file) on some corrupt
	// files instead of returning an error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("catalog: open %s: corrupt: %v", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketLessons, bucketSegments, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.View(func(tx *bolt.Tx) error {
			for cerr := range tx.Check() {
				return cerr
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog: open %s: %w", path, err)
	}
	return &Catalog{db: db, log: log}, nil
}

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

func segKey(lessonID string, n int) []byte {
	k := make([]byte, 0, len(lessonID)+5)
	k = append(k, lessonID...)
	k = append(k, '/')
	return binary.BigEndian.AppendUint32(k, uint32(n))
}

func summary(m lesson.Meta) Lesson {
	l := Lesson{ID: m.ID, Number: m.Number, State: m.State, Visibility: m.Visibility, StartedBy: m.StartedBy,
		Duration: m.Duration, Bytes: m.Bytes, Segments: len(m.Segments), Gaps: len(m.Gaps)}
	if m.Start.Wall != nil {
		l.Wall = m.Start.Wall.UTC().Format(time.RFC3339)
	}
	return l
}

func put(b *bolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

// PutLesson records a lesson's state and any segments not yet known (as
// closed); segments already known keep their upload state.
func (c *Catalog) PutLesson(m lesson.Meta) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		if err := put(tx.Bucket(bucketLessons), []byte(m.ID), summary(m)); err != nil {
			return err
		}
		segs := tx.Bucket(bucketSegments)
		for _, s := range m.Segments {
			k := segKey(m.ID, s.Number)
			if v := segs.Get(k); v != nil {
				// Known: its state stays. Only a segment found damaged
				// on disk changes its size and SHA-256 (to the bytes as
				// they are).
				var old Segment
				if !s.Damaged || json.Unmarshal(v, &old) != nil || old.SHA256 == s.SHA256 && old.Bytes == s.Bytes {
					continue
				}
				old.SHA256, old.Bytes = s.SHA256, s.Bytes
				if err := put(segs, k, old); err != nil {
					return err
				}
				continue
			}
			if err := put(segs, k, Segment{Lesson: m.ID, Number: s.Number, Name: s.Name, Bytes: s.Bytes,
				SHA256: s.SHA256, Duration: s.Duration, State: SegmentClosed}); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		next := 1
		if v := meta.Get(keyNextNumber); len(v) == 4 {
			next = int(binary.BigEndian.Uint32(v))
		}
		if m.Number >= next {
			return meta.Put(keyNextNumber, binary.BigEndian.AppendUint32(nil, uint32(m.Number+1)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog: put lesson %s: %w", m.ID, err)
	}
	return nil
}

// NextNumber returns the lesson number after every lesson ever recorded.
func (c *Catalog) NextNumber() int {
	next := 1
	c.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyNextNumber); len(v) == 4 {
			next = int(binary.BigEndian.Uint32(v))
		}
		return nil
	})
	return next
}

// Lessons returns every lesson, oldest first.
func (c *Catalog) Lessons() ([]Lesson, error) {
	var out []Lesson
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLessons).ForEach(func(k, v []byte) error {
			var l Lesson
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lesson %s: %w", k, err)
			}
			out = append(out, l)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: lessons: %w", err)
	}
	return out, nil
}

// Segments returns the segments of a lesson in order.
func (c *Catalog) Segments(lessonID string) ([]Segment, error) {
	var out []Segment
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketSegments).Cursor()
		prefix := append([]byte(lessonID), '/')
		for k, v := cur.Seek(prefix); k != nil && len(k) == len(prefix)+4 && string(k[:len(prefix)]) == string(prefix); k, v = cur.Next() {
			var s Segment
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("catalog: segments of %s: %w", lessonID, err)
	}
	return out, nil
}

// SetSegmentState moves a segment to a new upload state.
func (c *Catalog) SetSegmentState(lessonID string, n int, state string) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		k := segKey(lessonID, n)
		v := b.Get(k)
		if v == nil {
			return fmt.Errorf("no segment %d", n)
		}
		var s Segment
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		s.State = state
		return put(b, k, s)
	})
	if err != nil {
		return fmt.Errorf("catalog: set state of %s/%d: %w", lessonID, n, err)
	}
	return nil
}

// Rebuild fills the catalog from the lesson folders. Upload states are not
// in the folders: every segment starts again as closed (it will be offered
// to the hub again, which is harmless; nothing is deleted unverified).
func (c *Catalog) Rebuild(store *lesson.Store) error {
	metas, err := store.List()
	if err != nil {
		return fmt.Errorf("catalog: rebuild: %w", err)
	}
	for _, m := range metas {
		if err := c.PutLesson(m); err != nil {
			return err
		}
	}
	c.log.Info("catalog rebuilt from lesson folders", "lessons", len(metas))
	return nil
}

// DeleteLesson forgets a lesson and its segments (the lesson counter keeps
// counting past it).
func (c *Catalog) DeleteLesson(id string) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketLessons).Delete([]byte(id)); err != nil {
			return err
		}
		cur := tx.Bucket(bucketSegments).Cursor()
		prefix := append([]byte(id), '/')
		for k, _ := cur.Seek(prefix); k != nil && len(k) == len(prefix)+4 && string(k[:len(prefix)]) == string(prefix); k, _ = cur.Seek(prefix) {
			if err := cur.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog: delete lesson %s: %w", id, err)
	}
	return nil
}

// Transfer is the upload state of one file of a lesson (a segment, or
// init.mp4, index.m3u8, lesson.json): the tus upload made for it and the
// bytes the hub was last known to hold, so a restart resumes mid-file.
type Transfer struct {
	Lesson  string `json:"lesson"`
	Name    string `json:"name"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	URL     string `json:"url,omitempty"` // tus upload URL; empty before creation
	Offset  int64  `json:"offset"`
	State   string `json:"state"` // closed (waiting or in flight), uploaded, verified
	Updated int64  `json:"updated,omitempty"`
}

var bucketTransfers = []byte("transfers")

func transferKey(lessonID, name string) []byte { return []byte(lessonID + "/" + name) }

// PutTransfer records a file's transfer state.
func (c *Catalog) PutTransfer(t Transfer) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTransfers)
		if err != nil {
			return err
		}
		return put(b, transferKey(t.Lesson, t.Name), t)
	})
	if err != nil {
		return fmt.Errorf("catalog: put transfer %s/%s: %w", t.Lesson, t.Name, err)
	}
	return nil
}

// GetTransfer returns a file's transfer state, if recorded.
func (c *Catalog) GetTransfer(lessonID, name string) (Transfer, bool, error) {
	var t Transfer
	found := false
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTransfers)
		if b == nil {
			return nil
		}
		v := b.Get(transferKey(lessonID, name))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &t)
	})
	if err != nil {
		return Transfer{}, false, fmt.Errorf("catalog: transfer %s/%s: %w", lessonID, name, err)
	}
	return t, found, nil
}

// DeleteTransfers forgets the transfer states of a lesson.
func (c *Catalog) DeleteTransfers(lessonID string) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTransfers)
		if b == nil {
			return nil
		}
		prefix := []byte(lessonID + "/")
		cur := b.Cursor()
		for k, _ := cur.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = cur.Seek(prefix) {
			if err := cur.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog: delete transfers of %s: %w", lessonID, err)
	}
	return nil
}
