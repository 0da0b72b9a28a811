package alsa

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCaptureDevices(t *testing.T) {
	dir := t.TempDir()
	pcm := `00-00: ALC892 Analog : ALC892 Analog : playback 1 : capture 1
00-01: ALC892 Digital : ALC892 Digital : playback 1
00-02: ALC892 Alt Analog : ALC892 Alt Analog : capture 1
01-00: Loopback PCM : Loopback PCM : playback 8 : capture 8
01-01: Loopback PCM : Loopback PCM : playback 8 : capture 8
02-00: USB Audio : USB Audio : capture 1
garbage
`
	if err := os.WriteFile(filepath.Join(dir, "pcm"), []byte(pcm), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := CaptureDevices(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []PCMDevice{
		{Addr{0, 0, -1}, "ALC892 Analog", "ALC892 Analog", 1},
		{Addr{0, 2, -1}, "ALC892 Alt Analog", "ALC892 Alt Analog", 1},
		{Addr{1, 0, -1}, "Loopback PCM", "Loopback PCM", 8},
		{Addr{1, 1, -1}, "Loopback PCM", "Loopback PCM", 8},
		{Addr{2, 0, -1}, "USB Audio", "USB Audio", 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[4].String() != "hw:2,0" {
		t.Errorf("String = %q", got[4].String())
	}
	if l, err := CaptureDevices(t.TempDir()); err != nil || l != nil {
		t.Errorf("no cards: %v, %v", l, err)
	}
}

func FuzzParsePCMLine(f *testing.F) {
	f.Add("01-00: Loopback PCM : Loopback PCM : playback 8 : capture 8")
	f.Add("00-01: ALC892 Digital : ALC892 Digital : playback 1")
	f.Fuzz(func(t *testing.T, line string) {
		d, ok := parsePCMLine(line)
		if !ok {
			return
		}
		if d.Subdevices <= 0 || d.Addr.Card < 0 || d.Addr.Card > maxIndex || d.Addr.Device < 0 || d.Addr.Device > maxIndex || d.Addr.Subdevice != -1 {
			t.Fatalf("parsePCMLine(%q) = %+v", line, d)
		}
		if _, err := ParseName(d.String()); err != nil {
			t.Fatalf("name %q of %q does not parse: %v", d.String(), line, err)
		}
	})
}
