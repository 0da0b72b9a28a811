package alsa

import (
	"runtime"
	"testing"
	"unsafe"
)

// Values from the kernel headers (include/uapi/sound/asound.h), as compiled
// by gcc for each architecture.
func TestIoctlNumbers(t *testing.T) {
	want := map[string]map[string]uintptr{
		"amd64": {"HW_REFINE": 0xc2604110, "HW_PARAMS": 0xc2604111, "SW_PARAMS": 0xc0884113, "READI_FRAMES": 0x80184151, "WRITEI_FRAMES": 0x40184150},
		"arm64": {"HW_REFINE": 0xc2604110, "HW_PARAMS": 0xc2604111, "SW_PARAMS": 0xc0884113, "READI_FRAMES": 0x80184151, "WRITEI_FRAMES": 0x40184150},
		"arm":   {"HW_REFINE": 0xc25c4110, "HW_PARAMS": 0xc25c4111, "SW_PARAMS": 0xc0684113, "READI_FRAMES": 0x800c4151, "WRITEI_FRAMES": 0x400c4150},
	}[runtime.GOARCH]
	if want == nil {
		t.Skipf("no reference values for %s", runtime.GOARCH)
	}
	got := map[string]uintptr{
		"HW_REFINE": ioctlHWRefine, "HW_PARAMS": ioctlHWParams, "SW_PARAMS": ioctlSWParams, "READI_FRAMES": ioctlReadIFrames, "WRITEI_FRAMES": ioctlWriteIFrames,
	}
	// The same on every architecture.
	for k, v := range map[string]uintptr{
		"PVERSION": 0x80044100, "INFO": 0x81204101, "HW_FREE": 0x4112, "PREPARE": 0x4140, "START": 0x4142, "DROP": 0x4143, "DRAIN": 0x4144,
		"CTL_PCM_PREFER_SUBDEVICE": 0x40045532,
	} {
		want[k] = v
	}
	for k, v := range map[string]uintptr{
		"PVERSION": ioctlPVersion, "INFO": ioctlInfo, "HW_FREE": ioctlHWFree, "PREPARE": ioctlPrepare, "START": ioctlStart,
		"DROP": ioctlDrop, "DRAIN": ioctlDrain, "CTL_PCM_PREFER_SUBDEVICE": ioctlCtlPreferSubdevice,
	} {
		got[k] = v
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("SNDRV_%s = %#x, want %#x", k, got[k], w)
		}
	}
}

func TestStructOffsets(t *testing.T) {
	var p hwParams
	// Fixed by the C layout before the first long.
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"masks", unsafe.Offsetof(p.Masks), 4},
		{"intervals", unsafe.Offsetof(p.Intervals), 4 + 8*32},
		{"ires", unsafe.Offsetof(p.IRes), 4 + 8*32 + 12*12},
		{"rmask", unsafe.Offsetof(p.RMask), 512},
		{"fifo_size", unsafe.Offsetof(p.FIFOSize), 536},
	} {
		if c.got != c.want {
			t.Errorf("offset of %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestMask(t *testing.T) {
	var m mask
	if !m.empty() || m.test(formatS16LE) {
		t.Fatal("zero mask not empty")
	}
	m.only(formatS32LE)
	if m.Bits != [8]uint32{1 << 10} || !m.test(formatS32LE) || m.test(formatS16LE) || m.empty() {
		t.Errorf("only(S32_LE) = %#x", m.Bits)
	}
	m.only(33)
	if m.Bits != [8]uint32{0, 1 << 1} || !m.test(33) {
		t.Errorf("only(33) = %#x", m.Bits)
	}
	m.only(300)
	if !m.empty() || m.test(300) {
		t.Errorf("only(300) = %#x, want empty", m.Bits)
	}
}

func TestInterval(t *testing.T) {
	tests := []struct {
		iv            interval
		in, out       []uint32
		value, upper_ uint32
	}{
		{interval{Min: 2, Max: 8}, []uint32{2, 5, 8}, []uint32{1, 9}, 2, 8},
		{interval{Min: 2, Max: 8, Flags: intervalOpenMin | intervalOpenMax}, []uint32{3, 7}, []uint32{2, 8}, 3, 7},
		{interval{Min: 4, Max: 4, Flags: intervalInteger}, []uint32{4}, []uint32{3, 5}, 4, 4},
		{interval{Min: 1, Max: 9, Flags: intervalEmpty}, nil, []uint32{1, 5}, 1, 9},
	}
	for i, tt := range tests {
		for _, v := range tt.in {
			if !tt.iv.contains(v) {
				t.Errorf("%d: %+v does not contain %d", i, tt.iv, v)
			}
		}
		for _, v := range tt.out {
			if tt.iv.contains(v) {
				t.Errorf("%d: %+v contains %d", i, tt.iv, v)
			}
		}
		if tt.iv.value() != tt.value || upper(tt.iv) != tt.upper_ {
			t.Errorf("%d: value %d upper %d, want %d %d", i, tt.iv.value(), upper(tt.iv), tt.value, tt.upper_)
		}
	}
	var iv interval
	iv.set(48000)
	if iv != (interval{Min: 48000, Max: 48000, Flags: intervalInteger}) {
		t.Errorf("set = %+v", iv)
	}
	iv.setRange(10, 20)
	if iv != (interval{Min: 10, Max: 20}) {
		t.Errorf("setRange = %+v", iv)
	}
}

func TestNewHWParams(t *testing.T) {
	p := newHWParams()
	for i := range p.Masks {
		for _, b := range p.Masks[i].Bits {
			if b != ^uint32(0) {
				t.Fatalf("mask %d not full", i)
			}
		}
	}
	for i, iv := range p.Intervals {
		if iv != (interval{Max: ^uint32(0)}) {
			t.Fatalf("interval %d = %+v", i, iv)
		}
	}
	if p.RMask != ^uint32(0) || p.CMask != 0 || p.Info != ^uint32(0) {
		t.Errorf("rmask %#x cmask %#x info %#x", p.RMask, p.CMask, p.Info)
	}
	if p.interval(paramRate) != &p.Intervals[3] || p.mask(paramFormat) != &p.Masks[1] {
		t.Error("parameter indexes")
	}
}
