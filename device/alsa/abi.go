package alsa

import "unsafe"

// Kernel ABI of the PCM interface (include/uapi/sound/asound.h). C
// "unsigned long" and pointers map to Go uint and uintptr, which have the
// same size and alignment as in C on every supported architecture; the
// sizes are checked at compile time in abi_64.go and abi_32.go.

// Hardware parameter indexes (SNDRV_PCM_HW_PARAM_*).
const (
	paramAccess    = 0 // mask
	paramFormat    = 1 // mask
	paramSubformat = 2 // mask
	paramFirstMask = paramAccess
	paramLastMask  = paramSubformat

	paramSampleBits    = 8 // intervals from here on
	paramFrameBits     = 9
	paramChannels      = 10
	paramRate          = 11
	paramPeriodTime    = 12
	paramPeriodSize    = 13
	paramPeriodBytes   = 14
	paramPeriods       = 15
	paramBufferTime    = 16
	paramBufferSize    = 17
	paramBufferBytes   = 18
	paramTickTime      = 19
	paramFirstInterval = paramSampleBits
	paramLastInterval  = paramTickTime
)

// Access types (SNDRV_PCM_ACCESS_*).
const accessRWInterleaved = 3

// Sample formats (SNDRV_PCM_FORMAT_*).
const (
	formatS16LE = 2
	formatS32LE = 10
)

// Subformat (SNDRV_PCM_SUBFORMAT_STD).
const subformatStd = 0

// mask is struct snd_mask: a bit set of 256 values.
type mask struct {
	Bits [8]uint32
}

// interval is struct snd_interval. Flags holds the bit fields openmin
// (bit 0), openmax (1), integer (2) and empty (3) as the little-endian C
// compilers of the supported architectures lay them out.
type interval struct {
	Min, Max uint32
	Flags    uint32
}

const (
	intervalOpenMin = 1 << 0
	intervalOpenMax = 1 << 1
	intervalInteger = 1 << 2
	intervalEmpty   = 1 << 3
)

// hwParams is struct snd_pcm_hw_params.
type hwParams struct {
	Flags     uint32
	Masks     [paramLastMask - paramFirstMask + 1]mask
	MRes      [5]mask
	Intervals [paramLastInterval - paramFirstInterval + 1]interval
	IRes      [9]interval
	RMask     uint32
	CMask     uint32
	Info      uint32
	MSBits    uint32
	RateNum   uint32
	RateDen   uint32
	FIFOSize  uint // snd_pcm_uframes_t (unsigned long)
	Reserved  [64]byte
}

// swParams is struct snd_pcm_sw_params.
type swParams struct {
	TstampMode       int32
	PeriodStep       uint32
	SleepMin         uint32
	AvailMin         uint
	XferAlign        uint
	StartThreshold   uint
	StopThreshold    uint
	SilenceThreshold uint
	SilenceSize      uint
	Boundary         uint
	Proto            uint32
	TstampType       uint32
	Reserved         [56]byte
}

// xferi is struct snd_xferi.
type xferi struct {
	Result int // snd_pcm_sframes_t (long)
	Buf    unsafe.Pointer
	Frames uint // snd_pcm_uframes_t
}

// pcmInfo is struct snd_pcm_info.
type pcmInfo struct {
	Device          uint32
	Subdevice       uint32
	Stream          int32
	Card            int32
	ID              [64]byte
	Name            [80]byte
	Subname         [32]byte
	DevClass        int32
	DevSubclass     int32
	SubdevicesCount uint32
	SubdevicesAvail uint32
	Sync            [16]byte
	Reserved        [64]byte
}

// ioctl request encoding (asm-generic/ioctl.h, used by x86, arm and arm64):
// direction in bits 30-31, argument size in 16-29, type in 8-15, number in
// 0-7.
const (
	iocWrite = 1 << 30
	iocRead  = 2 << 30
	pcmType  = 'A' << 8 // PCM ioctls
	ctlType  = 'U' << 8 // control ioctls
)

// PCM ioctl requests (SNDRV_PCM_IOCTL_*).
const (
	ioctlPVersion     = iocRead | unsafe.Sizeof(int32(0))<<16 | pcmType | 0x00
	ioctlInfo         = iocRead | unsafe.Sizeof(pcmInfo{})<<16 | pcmType | 0x01
	ioctlHWRefine     = iocRead | iocWrite | unsafe.Sizeof(hwParams{})<<16 | pcmType | 0x10
	ioctlHWParams     = iocRead | iocWrite | unsafe.Sizeof(hwParams{})<<16 | pcmType | 0x11
	ioctlHWFree       = pcmType | 0x12
	ioctlSWParams     = iocRead | iocWrite | unsafe.Sizeof(swParams{})<<16 | pcmType | 0x13
	ioctlPrepare      = pcmType | 0x40
	ioctlStart        = pcmType | 0x42
	ioctlDrop         = pcmType | 0x43
	ioctlDrain        = pcmType | 0x44
	ioctlWriteIFrames = iocWrite | unsafe.Sizeof(xferi{})<<16 | pcmType | 0x50
	ioctlReadIFrames  = iocRead | unsafe.Sizeof(xferi{})<<16 | pcmType | 0x51

	// SNDRV_CTL_IOCTL_PCM_PREFER_SUBDEVICE on /dev/snd/controlC<card>.
	ioctlCtlPreferSubdevice = iocWrite | unsafe.Sizeof(int32(0))<<16 | ctlType | 0x32
)

// newHWParams returns parameters that allow everything (alsa-lib's
// snd_pcm_hw_params_any before the refine).
func newHWParams() *hwParams {
	p := &hwParams{RMask: ^uint32(0), Info: ^uint32(0)}
	for i := range p.Masks {
		for j := range p.Masks[i].Bits {
			p.Masks[i].Bits[j] = ^uint32(0)
		}
	}
	for i := range p.Intervals {
		p.Intervals[i] = interval{Min: 0, Max: ^uint32(0)}
	}
	return p
}

func (p *hwParams) mask(param int) *mask { return &p.Masks[param-paramFirstMask] }

func (p *hwParams) interval(param int) *interval { return &p.Intervals[param-paramFirstInterval] }

// test reports whether v is in the mask.
func (m *mask) test(v uint) bool { return v < 256 && m.Bits[v/32]&(1<<(v%32)) != 0 }

// only restricts the mask to the single value v.
func (m *mask) only(v uint) {
	m.Bits = [8]uint32{}
	if v < 256 {
		m.Bits[v/32] = 1 << (v % 32)
	}
}

// empty reports whether no value is in the mask.
func (m *mask) empty() bool { return m.Bits == [8]uint32{} }

// set restricts the interval to exactly v.
func (iv *interval) set(v uint32) { *iv = interval{Min: v, Max: v, Flags: intervalInteger} }

// setRange restricts the interval to [lo, hi].
func (iv *interval) setRange(lo, hi uint32) { *iv = interval{Min: lo, Max: hi} }

// contains reports whether the integer v lies in the interval.
func (iv interval) contains(v uint32) bool {
	if iv.Flags&intervalEmpty != 0 {
		return false
	}
	lo, hi := iv.Min, iv.Max
	if iv.Flags&intervalOpenMin != 0 && v == lo {
		return false
	}
	if iv.Flags&intervalOpenMax != 0 && v == hi {
		return false
	}
	return v >= lo && v <= hi
}

// value returns the smallest integer in the interval: after HW_PARAMS the
// kernel has narrowed every interval to one value.
func (iv interval) value() uint32 {
	if iv.Flags&intervalOpenMin != 0 && iv.Min < iv.Max {
		return iv.Min + 1
	}
	return iv.Min
}
