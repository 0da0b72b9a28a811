package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/segment"
)

// sumsName is the per-lesson record of the files the hub holds verified.
const sumsName = ".verified.json"

// File is a verified file in the hub's lesson store.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrConflict: a media file is already stored with other bytes. Segments
// and init.mp4 never change once closed on the box.
var ErrConflict = errors.New("stored with other bytes")

// ValidName reports whether name is a file a lesson folder may hold.
func ValidName(name string) bool {
	switch name {
	case segment.InitName, lesson.PlaylistName, lesson.MetaName:
		return true
	}
	_, ok := segment.ParseName(name)
	return ok
}

// mutable reports whether a newer version of the file may replace an older
// one: the playlist and lesson.json are rewritten as a lesson grows.
func mutable(name string) bool { return name == lesson.PlaylistName || name == lesson.MetaName }

// Store is the hub's lesson store: <dir>/<lesson_id>/ with the same file
// names as on the box, and a record of each file's size and SHA-256.
type Store struct {
	dir  string
	mu   sync.Mutex
	sums map[string]map[string]File // lesson -> name -> file; loaded lazily
}

// NewStore opens (creating) the lesson store at dir.
func NewStore(dir string) (*Store, error) {
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lesson store: %w", err)
	}
	return &Store{dir: dir, sums: map[string]map[string]File{}}, nil
}

// Dir is the folder of a lesson.
func (s *Store) Dir(lessonID string) string { return filepath.Join(s.dir, lessonID) }

func (s *Store) loadLocked(lessonID string) (map[string]File, error) {
	if m, ok := s.sums[lessonID]; ok {
		return m, nil
	}
	m := map[string]File{}
	b, err := os.ReadFile(filepath.Join(s.Dir(lessonID), sumsName))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("lesson store: read sums of %s: %w", lessonID, err)
	default:
		var list []File
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("lesson store: sums of %s: %w", lessonID, err)
		}
		for _, f := range list {
			m[f.Name] = f
		}
	}
	s.sums[lessonID] = m
	return m, nil
}

func (s *Store) saveLocked(lessonID string, m map[string]File) error {
	list := make([]File, 0, len(m))
	for _, f := range m {
		list = append(list, f)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(s.Dir(lessonID), sumsName), b, 0o644)
}

// Lookup returns the stored file, if any.
func (s *Store) Lookup(lessonID, name string) (File, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.loadLocked(lessonID)
	if err != nil {
		return File{}, false, err
	}
	f, ok := m[name]
	return f, ok, nil
}

// Files returns the stored files of a lesson, by name.
func (s *Store) Files(lessonID string) ([]File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.loadLocked(lessonID)
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lessons returns the ids of the lessons the store holds files of.
func (s *Store) Lessons() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("lesson store: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && lesson.ValidID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Put moves the verified file at src (already checked to have f.Size bytes
// and f.SHA256) into the lesson under f.Name: fsync, rename, fsync the
// folder, then record it. It is idempotent: a file already stored with the
// same SHA-256 is left as it is and src is removed (dup is true). A media
// file stored with other bytes is ErrConflict.
func (s *Store) Put(lessonID string, f File, src string) (dup bool, err error) {
	if !lesson.ValidID(lessonID) || !ValidName(f.Name) {
		return false, fmt.Errorf("lesson store: put %s/%s: bad lesson id or file name", lessonID, f.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.loadLocked(lessonID)
	if err != nil {
		return false, err
	}
	if old, ok := m[f.Name]; ok {
		if old.SHA256 == f.SHA256 {
			os.Remove(src)
			return true, nil
		}
		if !mutable(f.Name) {
			return false, fmt.Errorf("lesson store: put %s/%s: %w (sha256 %s)", lessonID, f.Name, ErrConflict, old.SHA256)
		}
	}
	dir := s.Dir(lessonID)
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("lesson store: %w", err)
	}
	final := filepath.Join(dir, f.Name)
	if _, ok := m[f.Name]; !ok && !mutable(f.Name) {
		// On disk but not recorded: a crash between the rename and the
		// record. Keep what is there when it is the same file.
		if sum, size, err := hashFile(final); err == nil {
			if sum == f.SHA256 && size == f.Size {
				os.Remove(src)
				m[f.Name] = f
				return true, s.saveLocked(lessonID, m)
			}
		}
	}
	if err := syncFile(src); err != nil {
		return false, fmt.Errorf("lesson store: put %s/%s: %w", lessonID, f.Name, err)
	}
	if err := os.Rename(src, final); err != nil {
		var le *os.LinkError
		if !errors.As(err, &le) {
			return false, fmt.Errorf("lesson store: put %s/%s: %w", lessonID, f.Name, err)
		}
		// Another file system: copy durably instead.
		if err := copyFile(src, final+durable.TempSuffix); err != nil {
			return false, fmt.Errorf("lesson store: put %s/%s: %w", lessonID, f.Name, err)
		}
		if err := os.Rename(final+durable.TempSuffix, final); err != nil {
			return false, fmt.Errorf("lesson store: put %s/%s: %w", lessonID, f.Name, err)
		}
		os.Remove(src)
	}
	if err := durable.SyncDir(dir); err != nil {
		return false, fmt.Errorf("lesson store: %w", err)
	}
	m[f.Name] = f
	if err := s.saveLocked(lessonID, m); err != nil {
		return false, fmt.Errorf("lesson store: record %s/%s: %w", lessonID, f.Name, err)
	}
	return false, nil
}

func syncFile(path string) error {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return fh.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// hashFile returns the SHA-256 (hex) and size of a file.
func hashFile(path string) (string, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Has reports whether the store holds a verified file of a lesson.
func (s *Store) Has(lessonID, name string) bool {
	if !lesson.ValidID(lessonID) || !ValidName(name) {
		return false
	}
	_, ok, err := s.Lookup(lessonID, name)
	return ok && err == nil
}

// Lesson upload states on the hub.
const (
	LessonUploading = "uploading" // files are still arriving
	LessonComplete  = "complete"  // lesson.json of a stopped lesson and every file it lists are verified
)

// Status is what the hub holds of a lesson.
type Status struct {
	State string `json:"state"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// Status says whether a lesson is complete on the hub: its lesson.json
// says it stopped, and init.mp4, the playlist and every segment it lists
// are stored with the SHA-256 it names.
func (s *Store) Status(lessonID string) (Status, error) {
	files, err := s.Files(lessonID)
	if err != nil {
		return Status{}, err
	}
	st := Status{State: LessonUploading, Files: len(files)}
	byName := map[string]File{}
	for _, f := range files {
		st.Bytes += f.Size
		byName[f.Name] = f
	}
	if _, ok := byName[lesson.MetaName]; !ok {
		return st, nil
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(lessonID), lesson.MetaName))
	if err != nil {
		return Status{}, fmt.Errorf("lesson store: %w", err)
	}
	m, err := lesson.ParseMeta(b)
	if err != nil || m.ID != lessonID || m.State != lesson.StateComplete {
		return st, nil
	}
	if _, ok := byName[segment.InitName]; !ok && len(m.Segments) > 0 {
		return st, nil
	}
	if _, ok := byName[lesson.PlaylistName]; !ok {
		return st, nil
	}
	for _, seg := range m.Segments {
		if f, ok := byName[seg.Name]; !ok || f.SHA256 != seg.SHA256 {
			return st, nil
		}
	}
	st.State = LessonComplete
	return st, nil
}

// Visibility returns the visibility in a lesson's lesson.json on the hub.
func (s *Store) Visibility(lessonID string) (string, error) {
	if !s.Has(lessonID, lesson.MetaName) {
		return "", fmt.Errorf("lesson store: %s has no lesson.json yet", lessonID)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(lessonID), lesson.MetaName))
	if err != nil {
		return "", fmt.Errorf("lesson store: %w", err)
	}
	m, err := lesson.ParseMeta(b)
	if err != nil {
		return "", fmt.Errorf("lesson store: %s: %w", lessonID, err)
	}
	return m.Visibility, nil
}
