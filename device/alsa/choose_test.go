package alsa

import (
	"errors"
	"math"
	"slices"
	"testing"
)

var errInval = errors.New("EINVAL")

// fakeDev refines like the kernel for a device with discrete rates and
// ranges of channels and period sizes.
type fakeDev struct {
	formats        []uint
	chMin, chMax   uint32
	rates          []uint32
	perMin, perMax uint32
	calls          int
}

func intersect(iv *interval, lo, hi uint32) bool {
	if iv.Flags&intervalOpenMin != 0 {
		iv.Min++
		iv.Flags &^= intervalOpenMin
	}
	if iv.Flags&intervalOpenMax != 0 {
		iv.Max--
		iv.Flags &^= intervalOpenMax
	}
	iv.Min, iv.Max = max(iv.Min, lo), min(iv.Max, hi)
	return iv.Min <= iv.Max
}

func (d *fakeDev) refine(p *hwParams) error {
	d.calls++
	acc := p.mask(paramAccess)
	if !acc.test(accessRWInterleaved) {
		return errInval
	}
	acc.only(accessRWInterleaved)
	var f mask
	for _, x := range d.formats {
		if p.mask(paramFormat).test(x) {
			f.Bits[x/32] |= 1 << (x % 32)
		}
	}
	if f.empty() {
		return errInval
	}
	*p.mask(paramFormat) = f
	if !intersect(p.interval(paramChannels), d.chMin, d.chMax) {
		return errInval
	}
	r := p.interval(paramRate)
	var in []uint32
	for _, x := range d.rates {
		if r.contains(x) {
			in = append(in, x)
		}
	}
	if len(in) == 0 {
		return errInval
	}
	*r = interval{Min: slices.Min(in), Max: slices.Max(in)}
	if !intersect(p.interval(paramPeriodSize), d.perMin, d.perMax) {
		return errInval
	}
	if !intersect(p.interval(paramBufferTime), 1000, 2000000) {
		return errInval
	}
	return nil
}

func TestChoose(t *testing.T) {
	usb := fakeDev{formats: []uint{formatS16LE, formatS32LE}, chMin: 1, chMax: 16, rates: []uint32{16000, 44100, 48000}, perMin: 16, perMax: 65536}
	tests := []struct {
		name   string
		dev    fakeDev
		cfg    Config
		format Format
		ch     uint32
		rate   uint32
		period [2]uint32 // allowed period range left for the kernel
		bad    bool
	}{
		{name: "auto on a rich device", dev: usb, format: S32LE, ch: 8, rate: 48000, period: [2]uint32{480, 480}},
		{name: "explicit", dev: usb, cfg: Config{Channels: 4, Rate: 16000, Format: S16LE}, format: S16LE, ch: 4, rate: 16000, period: [2]uint32{160, 160}},
		{name: "S16 only", dev: fakeDev{formats: []uint{formatS16LE}, chMin: 2, chMax: 6, rates: []uint32{16000}, perMin: 1, perMax: 4096},
			format: S16LE, ch: 6, rate: 16000, period: [2]uint32{160, 160}},
		{name: "44.1 kHz only", dev: fakeDev{formats: []uint{formatS32LE}, chMin: 2, chMax: 2, rates: []uint32{44100}, perMin: 1, perMax: 4096},
			format: S32LE, ch: 2, rate: 44100, period: [2]uint32{441, 441}},
		{name: "mono device, auto channels", dev: fakeDev{formats: []uint{formatS16LE}, chMin: 1, chMax: 1, rates: []uint32{48000}, perMin: 1, perMax: 4096},
			format: S16LE, ch: 1, rate: 48000, period: [2]uint32{480, 480}},
		{name: "period range fallback", dev: fakeDev{formats: []uint{formatS32LE}, chMin: 8, chMax: 8, rates: []uint32{48000}, perMin: 1024, perMax: 1024},
			format: S32LE, ch: 8, rate: 48000, period: [2]uint32{1024, 1024}},
		{name: "period between 10 and 25 ms", dev: fakeDev{formats: []uint{formatS32LE}, chMin: 8, chMax: 8, rates: []uint32{48000}, perMin: 512, perMax: 8192},
			format: S32LE, ch: 8, rate: 48000, period: [2]uint32{512, 1200}},
		{name: "too few channels", dev: fakeDev{formats: []uint{formatS16LE}, chMin: 1, chMax: 2, rates: []uint32{48000}, perMin: 1, perMax: 4096}, cfg: Config{Channels: 4}, bad: true},
		{name: "rate not offered", dev: fakeDev{formats: []uint{formatS16LE}, chMin: 2, chMax: 2, rates: []uint32{48000}, perMin: 1, perMax: 4096}, cfg: Config{Rate: 16000}, bad: true},
		{name: "format not offered", dev: fakeDev{formats: []uint{formatS16LE}, chMin: 2, chMax: 2, rates: []uint32{48000}, perMin: 1, perMax: 4096}, cfg: Config{Format: S32LE}, bad: true},
		{name: "no usable format", dev: fakeDev{formats: []uint{6 /* S24_LE */}, chMin: 2, chMax: 2, rates: []uint32{48000}, perMin: 1, perMax: 4096}, bad: true},
		{name: "no usable rate", dev: fakeDev{formats: []uint{formatS16LE}, chMin: 2, chMax: 2, rates: []uint32{11025}, perMin: 1, perMax: 4096}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dev
			p, f, caps, err := choose(tt.cfg, d.refine)
			if tt.bad {
				if !errors.Is(err, ErrNotSupportedByDevice) {
					t.Fatalf("choose = %v, want ErrNotSupportedByDevice", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if caps.MinChannels != int(d.chMin) || caps.MaxChannels != int(d.chMax) || caps.MinRate != int(slices.Min(d.rates)) {
				t.Errorf("caps %+v", caps)
			}
			ch, chOK := p.interval(paramChannels).value(), p.interval(paramChannels).Min == p.interval(paramChannels).Max
			rate := p.interval(paramRate).value()
			if f != tt.format || ch != tt.ch || !chOK || rate != tt.rate || !p.mask(paramFormat).test(f.kernel()) {
				t.Errorf("got %v %d ch %d Hz, want %v %d ch %d Hz", f, ch, rate, tt.format, tt.ch, tt.rate)
			}
			per := p.interval(paramPeriodSize)
			if per.Min != tt.period[0] || per.Max != tt.period[1] {
				t.Errorf("period range [%d, %d], want %v", per.Min, per.Max, tt.period)
			}
			if bt := p.interval(paramBufferTime); bt.Min != 100000 || bt.Max != 500000 {
				t.Errorf("buffer time [%d, %d] us", bt.Min, bt.Max)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	s16 := []byte{0x00, 0x80, 0xff, 0x7f, 0x00, 0x00, 0x00, 0x40, 0xff, 0xff}
	want16 := []float32{-1, 32767.0 / 32768, 0, 0.5, -1.0 / 32768}
	s32 := []byte{0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 1, 0}
	want32 := []float32{-1, 1, 0, -0.5, 65536.0 / (1 << 31)}
	for _, c := range []struct {
		f    Format
		raw  []byte
		want []float32
	}{{S16LE, s16, want16}, {S32LE, s32, want32}} {
		dst := make([]float32, len(c.want)+3)
		n := convert(dst, c.raw, c.f)
		if n != len(c.want) {
			t.Fatalf("%v: %d samples, want %d", c.f, n, len(c.want))
		}
		for i, w := range c.want {
			if math.Abs(float64(dst[i]-w)) > 1e-9 || dst[i] < -1 || dst[i] > 1 {
				t.Errorf("%v sample %d = %v, want %v", c.f, i, dst[i], w)
			}
		}
		// A short destination bounds the conversion.
		if n := convert(dst[:2], c.raw, c.f); n != 2 {
			t.Errorf("%v: short dst converted %d", c.f, n)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Channels: 2, Rate: 16000, Format: S16LE}, true},
		{Config{Channels: 8, Rate: 48000, Format: S32LE}, true},
		{Config{Channels: 1}, false},
		{Config{Channels: 9}, false},
		{Config{Rate: 100}, false},
		{Config{Format: Format(7)}, false},
	} {
		if err := c.cfg.validate(); (err == nil) != c.ok {
			t.Errorf("validate(%+v) = %v", c.cfg, err)
		}
	}
	for s, want := range map[string]Format{"": FormatAuto, "auto": FormatAuto, "S16_LE": S16LE, "s32_le": S32LE} {
		if f, err := ParseFormat(s); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("FLOAT_LE"); err == nil {
		t.Error("ParseFormat(FLOAT_LE) succeeded")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	src := []float32{0, 0.5, -0.5, 1, -1, 0.123456, 2, -3, float32(math.NaN())}
	want := []float32{0, 0.5, -0.5, 1, -1, 0.123456, 1, -1, 0}
	for _, c := range []struct {
		f   Format
		tol float64
	}{{S16LE, 1.0 / 32767}, {S32LE, 1e-7}} {
		raw := make([]byte, len(src)*c.f.bytes())
		encode(raw, src, c.f)
		got := make([]float32, len(src))
		if n := convert(got, raw, c.f); n != len(src) {
			t.Fatalf("%v: %d samples back", c.f, n)
		}
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > c.tol {
				t.Errorf("%v: %v came back as %v", c.f, src[i], got[i])
			}
		}
	}
}
