// Package durable writes files that must survive a crash or a power loss:
// every change goes to a temporary file that is fsynced, renamed over the
// final name, and then the directory itself is fsynced, so a reader finds
// either the old content or the new one, never a torn mix.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// TempSuffix ends the name of every temporary file this package writes.
// Recovery code may delete such leftovers.
const TempSuffix = ".tmp"

// WriteFile atomically replaces path with data: tmp, fsync, rename, fsync(dir).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + TempSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	return Rename(tmp, path)
}

// Rename moves an already fsynced file to its final name and fsyncs the
// directory so the rename itself is durable.
func Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("rename %s: %w", from, err)
	}
	return SyncDir(filepath.Dir(to))
}

// SyncDir fsyncs a directory, making creations, renames and removals of its
// entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// MkdirAll creates dir and its parents and fsyncs the parent of every
// directory it created, so the new directory survives a power loss.
func MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !os.IsExist(err) {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return SyncDir(parent)
}
