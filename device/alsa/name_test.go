package alsa

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in   string
		want Name
		bad  bool
	}{
		{in: "hw:1,0", want: Name{Card: "1", Device: 0, Subdevice: -1}},
		{in: "hw:1", want: Name{Card: "1", Device: 0, Subdevice: -1}},
		{in: "hw:0,3,2", want: Name{Card: "0", Device: 3, Subdevice: 2}},
		{in: "hw:Loopback,1,0", want: Name{Card: "Loopback", Device: 1, Subdevice: 0}},
		{in: "hw:Loopback,1", want: Name{Card: "Loopback", Device: 1, Subdevice: -1}},
		{in: "hw:CARD=Loopback,DEV=1", want: Name{Card: "Loopback", Device: 1, Subdevice: -1}},
		{in: "hw:DEV=2,CARD=Array", want: Name{Card: "Array", Device: 2, Subdevice: -1}},
		{in: "hw:card=Loopback,dev=1,subdev=3", want: Name{Card: "Loopback", Device: 1, Subdevice: 3}},
		{in: "hw:CARD=Loopback", want: Name{Card: "Loopback", Device: 0, Subdevice: -1}},
		{in: "hw: 1 , 0", want: Name{Card: "1", Device: 0, Subdevice: -1}},
		{in: "", bad: true},
		{in: "default", bad: true},
		{in: "plughw:1,0", bad: true},
		{in: "hw:", bad: true},
		{in: "hw:,0", bad: true},
		{in: "hw:1,x", bad: true},
		{in: "hw:1,-1", bad: true},
		{in: "hw:1,256", bad: true},
		{in: "hw:1,0,0,0", bad: true},
		{in: "hw:CARD=a,1", bad: true},
		{in: "hw:CARD=a,CARD=b", bad: true},
		{in: "hw:DEV=1", bad: true},
		{in: "hw:CARD=a,FOO=1", bad: true},
		{in: "hw:my card,0", bad: true},
		{in: "hw:../../etc,0", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseName(tt.in)
			if tt.bad {
				if !errors.Is(err, ErrBadName) {
					t.Fatalf("ParseName(%q) = %+v, %v; want ErrBadName", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseName(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			again, err := ParseName(got.String())
			if err != nil || again != got {
				t.Errorf("round trip through %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"hw:1,0", "hw:CARD=Loopback,DEV=1", "hw:Loopback,1,0", "hw:card=x,subdev=2", "plughw:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v does not wrap ErrBadName", err)
			}
			return
		}
		if !validCardID(n.Card) || n.Device < 0 || n.Device > maxIndex || n.Subdevice < -1 || n.Subdevice > maxIndex {
			t.Fatalf("ParseName(%q) = %+v out of range", s, n)
		}
		again, err := ParseName(n.String())
		if err != nil || again != n {
			t.Fatalf("round trip %q -> %q: %+v, %v", s, n.String(), again, err)
		}
	})
}

// fakeProc builds a /proc/asound look-alike: the cards table, and the id
// symlinks only when links is set.
func fakeProc(t *testing.T, links bool) string {
	t.Helper()
	dir := t.TempDir()
	cards := ` 0 [PCH            ]: HDA-Intel - HDA Intel PCH
                      HDA Intel PCH at 0xf7f10000 irq 32
 1 [Loopback       ]: Loopback - Loopback
                      Loopback 1
 2 [Array          ]: USB-Audio - ReSpeaker 4 Mic Array
                      SEEED ReSpeaker at usb-0000:01:00.0-1.3, full speed
`
	if err := os.WriteFile(filepath.Join(dir, "cards"), []byte(cards), 0o644); err != nil {
		t.Fatal(err)
	}
	if links {
		for id, n := range map[string]string{"PCH": "card0", "Loopback": "card1", "Array": "card2"} {
			if err := os.Symlink(n, filepath.Join(dir, id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestResolve(t *testing.T) {
	for _, links := range []bool{true, false} {
		proc := fakeProc(t, links)
		tests := []struct {
			in   string
			want Addr
			bad  bool
		}{
			{in: "hw:Loopback,1,0", want: Addr{Card: 1, Device: 1, Subdevice: 0}},
			{in: "hw:CARD=Array,DEV=0", want: Addr{Card: 2, Device: 0, Subdevice: -1}},
			{in: "hw:PCH", want: Addr{Card: 0, Device: 0, Subdevice: -1}},
			{in: "hw:3,0", want: Addr{Card: 3, Device: 0, Subdevice: -1}},
			{in: "hw:Nope,0", bad: true},
		}
		for _, tt := range tests {
			n, err := ParseName(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := n.Resolve(proc)
			if tt.bad {
				if !errors.Is(err, ErrBadName) {
					t.Errorf("links %v: Resolve(%q) = %+v, %v; want ErrBadName", links, tt.in, got, err)
				}
				continue
			}
			if err != nil || got != tt.want {
				t.Errorf("links %v: Resolve(%q) = %+v, %v; want %+v", links, tt.in, got, err, tt.want)
			}
		}
	}
	// No sound cards at all: the error names the file.
	n, _ := ParseName("hw:Loopback,1")
	if _, err := n.Resolve(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Resolve without /proc/asound: %v, want ErrNotExist", err)
	}
}

func TestAddrPath(t *testing.T) {
	a := Addr{Card: 1, Device: 2, Subdevice: -1}
	if got := a.Path("/dev/snd"); got != "/dev/snd/pcmC1D2c" {
		t.Errorf("Path = %q", got)
	}
	if a.String() != "hw:1,2" || (Addr{Card: 1, Device: 2, Subdevice: 3}).String() != "hw:1,2,3" {
		t.Errorf("String = %q", a.String())
	}
}
