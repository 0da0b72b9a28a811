package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultAbandonAfter is how long a partial upload may go without a byte
// before the hub discards it.
const DefaultAbandonAfter = 7 * 24 * time.Hour

// Pruned says what Prune discarded.
type Pruned struct {
	Uploads int
	Bytes   int64
}

// Prune discards partial uploads that received no byte for olderThan: a box
// that was replaced, wiped or retired never finishes them, and their bytes
// would fill the hub's disk. A box that does come back finds its upload
// gone and starts that file again (its copy is kept until the hub verified
// it). Finished uploads never wait here: they are verified and moved into
// the lesson store at once.
func (in *Ingest) Prune(ctx context.Context, olderThan time.Duration) (Pruned, error) {
	var out Pruned
	infos, err := filepath.Glob(filepath.Join(in.cfg.UploadDir, "*.info"))
	if err != nil {
		return out, err
	}
	cutoff := in.now().Add(-olderThan)
	for _, p := range infos {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		id := strings.TrimSuffix(filepath.Base(p), ".info")
		data := filepath.Join(in.cfg.UploadDir, id)
		last, size, ok := lastWrite(p, data)
		if !ok || last.After(cutoff) {
			continue
		}
		up, err := in.fs.GetUpload(ctx, id)
		if err != nil {
			continue
		}
		info, err := up.GetInfo(ctx)
		if err != nil || !info.SizeIsDeferred && info.Offset == info.Size {
			continue // complete: recover (at start) verifies it
		}
		in.discard(info)
		out.Uploads++
		out.Bytes += size
		in.log.Info("abandoned upload discarded", "upload", id, "lesson", info.MetaData[MetaLesson],
			"file", info.MetaData[MetaFilename], "device", info.MetaData["device"], "bytes", size, "idle_since", last)
	}
	return out, nil
}

// lastWrite returns when an upload last changed (its info or its bytes)
// and the size of its bytes.
func lastWrite(infoPath, dataPath string) (time.Time, int64, bool) {
	fi, err := os.Stat(infoPath)
	if err != nil {
		return time.Time{}, 0, false
	}
	last := fi.ModTime()
	var size int64
	if di, err := os.Stat(dataPath); err == nil {
		size = di.Size()
		if di.ModTime().After(last) {
			last = di.ModTime()
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return time.Time{}, 0, false
	}
	return last, size, true
}

// RunJanitor prunes abandoned uploads (see Prune) at start and then every
// interval until ctx ends.
func (in *Ingest) RunJanitor(ctx context.Context, olderThan, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := in.Prune(ctx, olderThan); err != nil && ctx.Err() == nil {
			in.log.Warn("pruning abandoned uploads", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
