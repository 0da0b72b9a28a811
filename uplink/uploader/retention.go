package uploader

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
)

func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// verified reports whether the hub verified every file of a complete
// lesson: init.mp4, every segment, the playlist and lesson.json.
func (u *Uploader) verified(l catalog.Lesson) (bool, error) {
	if l.State != lesson.StateComplete {
		return false, nil
	}
	files, mediaDone, err := u.lessonFiles(l)
	if err != nil {
		return false, err
	}
	return mediaDone && len(files) == 0, nil
}

// prune applies retention: only verified lessons are deleted, oldest
// first, when older than RetentionDays or while space is short.
func (u *Uploader) prune() error {
	pol := u.policy()
	if pol.RetentionDays <= 0 && pol.RetentionFreeBytes <= 0 {
		return nil
	}
	lessons, err := u.cat.Lessons()
	if err != nil {
		return err
	}
	sort.Slice(lessons, func(i, j int) bool { return lessons[i].Number < lessons[j].Number })
	for _, l := range lessons {
		reason := ""
		if pol.RetentionFreeBytes > 0 {
			free, err := u.free(u.store.Root())
			if err != nil {
				return err
			}
			if free < pol.RetentionFreeBytes {
				reason = "space"
			}
		}
		if reason == "" && pol.RetentionDays > 0 && l.Wall != "" {
			if start, err := time.Parse(time.RFC3339, l.Wall); err == nil &&
				u.now().Sub(start) > time.Duration(pol.RetentionDays)*24*time.Hour {
				reason = "age"
			}
		}
		if reason == "" {
			if pol.RetentionDays <= 0 {
				return nil // space is fine and age does not matter
			}
			continue
		}
		ok, err := u.verified(l)
		if err != nil {
			return err
		}
		if !ok {
			continue // never an unverified lesson
		}
		if err := u.deleteLesson(l.ID); err != nil {
			return err
		}
		u.log.Info("local lesson deleted after the hub verified it", "lesson", l.ID, "reason", reason, "bytes", l.Bytes)
	}
	return nil
}

// deleteLesson removes a verified lesson's folder: renamed aside first (so
// a crash never leaves a half-deleted lesson looking whole), then removed,
// then forgotten by the catalog.
func (u *Uploader) deleteLesson(id string) error {
	dir := u.store.Dir(id)
	aside := filepath.Join(u.store.Root(), "."+id+".deleting")
	if err := os.Rename(dir, aside); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("delete lesson %s: %w", id, err)
	}
	if err := durable.SyncDir(u.store.Root()); err != nil {
		return err
	}
	if err := u.cat.DeleteLesson(id); err != nil {
		return err
	}
	if err := u.cat.DeleteTransfers(id); err != nil {
		return err
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("delete lesson %s: %w", id, err)
	}
	return nil
}
