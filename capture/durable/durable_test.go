package durable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "lesson.json")
	for _, content := range []string{"first", "second, longer content", "3"} {
		if err := WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("content = %q, want %q", got, content)
		}
	}
	if _, err := os.Stat(p + TempSuffix); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestWriteFileErrorNamesPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing", "x.json")
	err := WriteFile(p, []byte("x"), 0o644)
	if err == nil {
		t.Fatal("want an error for a missing directory")
	}
	if want := p; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

func TestMkdirAll(t *testing.T) {
	base := t.TempDir()
	d := filepath.Join(base, "a", "b", "c")
	if err := MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.Fatalf("stat %s: %v", d, err)
	}
	if err := MkdirAll(d, 0o755); err != nil {
		t.Fatalf("second MkdirAll: %v", err)
	}
	f := filepath.Join(base, "file")
	os.WriteFile(f, nil, 0o644)
	if err := MkdirAll(f, 0o755); err == nil {
		t.Fatal("MkdirAll over a file succeeded")
	}
}
