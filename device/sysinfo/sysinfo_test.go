package sysinfo

import (
	"testing"
)

func TestDiskUsage(t *testing.T) {
	d, err := DiskUsage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d.TotalBytes == 0 || d.FreeBytes > d.TotalBytes {
		t.Fatalf("implausible disk usage %+v", d)
	}
	if _, err := DiskUsage("/does/not/exist"); err == nil {
		t.Fatal("want error for a missing path")
	}
}

func TestBootTimeAdvances(t *testing.T) {
	a := BootTime()
	if a <= 0 {
		t.Fatalf("boot time %v", a)
	}
	for BootTime() == a {
	}
	if BootID() == "" {
		t.Fatal("no boot id")
	}
}

func TestClockHasSource(t *testing.T) {
	if c := Clock(); c.Source == "" {
		t.Fatalf("clock state without a source: %+v", c)
	}
}
