package ingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/uplink/tus"
)

// TestPruneDiscardsOnlyAbandonedUploads: a partial upload idle longer than
// the limit is discarded with its bytes; a recent one stays and finishes;
// the box of a discarded one starts that file again and the hub stores it.
func TestPruneDiscardsOnlyAbandonedUploads(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, "127.0.0.1:0")
	c := testClient(1 << 20)
	ctx := context.Background()
	start := func(name string, body []byte) (*tus.File, string) {
		f := fileFor(h, h.endpoint(), name, body)
		u, _, err := c.Create(ctx, f.Endpoint, f.Token, f.Length, f.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Patch(ctx, u, f.Token, 0, bytes.NewReader(body[:4000]), 4000); err != nil {
			t.Fatal(err)
		}
		return f, u
	}
	oldBody, newBody := randomBytes(t, 64<<10), randomBytes(t, 64<<10)
	oldF, oldURL := start("seg_000001.m4s", oldBody)
	newF, newURL := start("seg_000002.m4s", newBody)
	// The first one's box went away eight days ago.
	id := filepath.Base(oldURL)
	week := time.Now().Add(-8 * 24 * time.Hour)
	for _, p := range []string{filepath.Join(dir, "uploads", id), filepath.Join(dir, "uploads", id+".info")} {
		if err := os.Chtimes(p, week, week); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.in.Prune(ctx, DefaultAbandonAfter)
	if err != nil {
		t.Fatal(err)
	}
	if got.Uploads != 1 || got.Bytes != 4000 {
		t.Fatalf("pruned %+v, want 1 upload of 4000 bytes", got)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "uploads", "*"))
	for _, p := range left {
		if filepath.Base(p) == id || filepath.Base(p) == id+".info" {
			t.Fatalf("%s is still there", p)
		}
	}
	if len(left) != 2 {
		t.Fatalf("uploads left: %v, want the recent one (bytes and info)", left)
	}
	// The recent one resumes; the abandoned one's box starts it again.
	newF.URL = newURL
	if res, err := c.Send(ctx, newF, tus.Observer{}); err != nil || res.Created != 0 {
		t.Fatalf("resume of the recent upload: %+v %v", res, err)
	}
	checkStored(t, h, "seg_000002.m4s", newBody)
	oldF.URL = oldURL
	if res, err := c.Send(ctx, oldF, tus.Observer{}); err != nil || res.Created != 1 {
		t.Fatalf("the discarded upload sent again: %+v %v", res, err)
	}
	checkStored(t, h, "seg_000001.m4s", oldBody)
}
