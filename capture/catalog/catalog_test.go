package catalog

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/lesson"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// writeLesson puts a lesson.json into the store as a recording would.
func writeLesson(t *testing.T, s *lesson.Store, n int, segs int) lesson.Meta {
	t.Helper()
	m := lesson.Meta{V: 1, ID: lesson.NewID(n), Number: n, State: lesson.StateComplete, Visibility: lesson.VisibilityPrivate}
	for i := 1; i <= segs; i++ {
		m.Segments = append(m.Segments, lesson.Segment{Number: i, Name: "seg", Duration: 4, Bytes: 100, SHA256: "x"})
	}
	if err := os.MkdirAll(s.Dir(m.ID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := durable.WriteFile(filepath.Join(s.Dir(m.ID), lesson.MetaName), m.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPutAndStates(t *testing.T) {
	dir := t.TempDir()
	store, _ := lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	c, err := Open(filepath.Join(dir, "catalog.db"), store, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := writeLesson(t, store, 3, 2)
	if err := c.PutLesson(m); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSegmentState(m.ID, 1, SegmentVerified); err != nil {
		t.Fatal(err)
	}
	// A later put (another segment closed) keeps upload states.
	m.Segments = append(m.Segments, lesson.Segment{Number: 3, Name: "seg", Duration: 4})
	if err := c.PutLesson(m); err != nil {
		t.Fatal(err)
	}
	segs, err := c.Segments(m.ID)
	if err != nil || len(segs) != 3 {
		t.Fatalf("segments %v %v", segs, err)
	}
	if segs[0].State != SegmentVerified || segs[1].State != SegmentClosed || segs[2].Number != 3 {
		t.Fatalf("states %+v", segs)
	}
	if c.NextNumber() != 4 {
		t.Fatalf("next number %d", c.NextNumber())
	}
	if err := c.SetSegmentState(m.ID, 9, SegmentVerified); err == nil {
		t.Fatal("unknown segment accepted")
	}
}

func TestRebuildWhenMissingOrCorrupt(t *testing.T) {
	dir := t.TempDir()
	store, _ := lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	a := writeLesson(t, store, 1, 3)
	b := writeLesson(t, store, 2, 1)
	path := filepath.Join(dir, "catalog.db")

	check := func(c *Catalog) {
		t.Helper()
		ls, err := c.Lessons()
		if err != nil || len(ls) != 2 || ls[0].ID != a.ID || ls[1].ID != b.ID || ls[0].Segments != 3 {
			t.Fatalf("lessons %+v %v", ls, err)
		}
		if c.NextNumber() != 3 {
			t.Fatalf("next number %d", c.NextNumber())
		}
	}
	c, err := Open(path, store, quiet())
	if err != nil {
		t.Fatal(err)
	}
	check(c)
	c.Close()

	for name, corrupt := range map[string][]byte{
		"garbage":   []byte("this is not a bolt database at all, not even close................"),
		"truncated": nil,
	} {
		t.Run(name, func(t *testing.T) {
			if corrupt == nil {
				b, _ := os.ReadFile(path)
				corrupt = b[:len(b)/3]
			}
			if err := os.WriteFile(path, corrupt, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Open(path, store, quiet())
			if err != nil {
				t.Fatal(err)
			}
			check(c)
			c.Close()
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) == 0 {
				t.Fatal("corrupt catalog not kept aside")
			}
		})
	}
}

// FuzzOpen feeds arbitrary catalog files to Open: it must rebuild or open,
// never crash the daemon.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	store, _ := lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	c, err := Open(filepath.Join(dir, "seed.db"), store, quiet())
	if err != nil {
		f.Fatal(err)
	}
	c.PutLesson(lesson.Meta{V: 1, ID: lesson.NewID(1), Number: 1, State: lesson.StateComplete})
	c.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, "seed.db"))
	f.Add(seed[:8192])
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := t.TempDir()
		p := filepath.Join(d, "catalog.db")
		os.WriteFile(p, b, 0o600)
		c, err := Open(p, store, quiet())
		if err != nil {
			return
		}
		c.Lessons()
		c.Close()
	})
}

func TestTransfers(t *testing.T) {
	dir := t.TempDir()
	store, _ := lesson.NewStore(filepath.Join(dir, "lessons"), quiet())
	c, err := Open(filepath.Join(dir, "catalog.db"), store, quiet())
	if err != nil {
		t.Fatal(err)
	}
	m := writeLesson(t, store, 1, 1)
	if _, ok, err := c.GetTransfer(m.ID, "seg_000001.m4s"); ok || err != nil {
		t.Fatalf("unknown transfer: %v %v", ok, err)
	}
	tr := Transfer{Lesson: m.ID, Name: "seg_000001.m4s", Bytes: 100, SHA256: "x", URL: "http://hub/tus/abc", Offset: 40, State: SegmentClosed}
	if err := c.PutTransfer(tr); err != nil {
		t.Fatal(err)
	}
	other := newID(t, 2)
	if err := c.PutTransfer(Transfer{Lesson: other, Name: "init.mp4", State: SegmentVerified}); err != nil {
		t.Fatal(err)
	}
	// It survives a reopen (a reboot).
	c.Close()
	if c, err = Open(filepath.Join(dir, "catalog.db"), store, quiet()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, ok, err := c.GetTransfer(m.ID, "seg_000001.m4s")
	if err != nil || !ok || got != tr {
		t.Fatalf("after reopen: %+v %v %v; want %+v", got, ok, err, tr)
	}
	if err := c.DeleteTransfers(m.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.GetTransfer(m.ID, "seg_000001.m4s"); ok {
		t.Fatal("transfer kept after DeleteTransfers")
	}
	if _, ok, _ := c.GetTransfer(other, "init.mp4"); !ok {
		t.Fatal("DeleteTransfers removed another lesson's transfer")
	}
}

func newID(_ *testing.T, n int) string { return lesson.NewID(n) }
