package alsa

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors wrapped by New and Run.
var (
	// ErrUnsupported: this platform has no ALSA support in this package.
	ErrUnsupported = errors.New("alsa capture is not supported on this platform")
	// ErrDeviceLost: the device went away (unplugged, driver unloaded)
	// while capturing; Run may be called again once it is back.
	ErrDeviceLost = errors.New("capture device lost")
	// ErrStalled: the device stopped delivering frames without an error.
	ErrStalled = errors.New("capture device stalled")
	// ErrNotSupportedByDevice: the device cannot capture in the requested
	// or in any acceptable configuration.
	ErrNotSupportedByDevice = errors.New("configuration not supported by the device")
	// ErrRunning: Run was called while another Run is active.
	ErrRunning = errors.New("capture already running")
)

// Format is a sample format.
type Format int

// Sample formats. FormatAuto picks S32_LE when the device offers it, else
// S16_LE.
const (
	FormatAuto Format = iota
	S16LE
	S32LE
)

func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case S16LE:
		return "S16_LE"
	case S32LE:
		return "S32_LE"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses "S16_LE", "S32_LE" or "" / "auto" (case-insensitive).
func ParseFormat(s string) (Format, error) {
	switch strings.ToUpper(s) {
	case "", "AUTO":
		return FormatAuto, nil
	case "S16_LE", "S16":
		return S16LE, nil
	case "S32_LE", "S32":
		return S32LE, nil
	}
	return 0, fmt.Errorf("sample format %q: want S16_LE or S32_LE", s)
}

// bytes returns the size of one sample.
func (f Format) bytes() int {
	if f == S16LE {
		return 2
	}
	return 4
}

func (f Format) kernel() uint {
	if f == S16LE {
		return formatS16LE
	}
	return formatS32LE
}

// Limits and defaults of a configuration.
const (
	MinChannels = 1 // accepted only when the device has no more (Channels 0)
	MaxChannels = 8
	// BlockDuration is the default duration of one PCM block handed to
	// the sink (Config.Block).
	BlockDuration = 10 * time.Millisecond
	// MaxBlock is the longest Config.Block.
	MaxBlock = 200 * time.Millisecond
	// StallTimeout is how long Run waits for frames before ErrStalled.
	StallTimeout = 2 * time.Second
)

// Config configures a Mic.
type Config struct {
	// Device is an alsa-lib style hw name: "hw:1,0",
	// "hw:CARD=Loopback,DEV=1", "hw:Loopback,1,0".
	Device string
	// Channels is the number of channels to capture, 2-8, or 0 for the
	// device's maximum up to 8 (1 if the device has only one).
	Channels int
	// Rate in Hz; 0 picks 48000, else 16000, else the first of 44100,
	// 32000, 96000, 24000, 22050 and 8000 the device supports.
	Rate int
	// Format; FormatAuto prefers S32_LE over S16_LE.
	Format Format
	// Epoch is the zero of the PTS timeline; the zero Time means the start
	// of the first Run.
	Epoch time.Time
	// Block is how much audio each block handed to the sink holds, and so
	// how long the reader sleeps between reads (the device wakes it once
	// a block is ready, not every period): longer blocks cost fewer
	// wake-ups and add their length to the latency. 0 means BlockDuration.
	Block time.Duration

	// ProcRoot and DevRoot default to "/proc/asound" and "/dev/snd".
	ProcRoot, DevRoot string
}

func (c Config) withDefaults() Config {
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc/asound"
	}
	if c.DevRoot == "" {
		c.DevRoot = "/dev/snd"
	}
	if c.Block == 0 {
		c.Block = BlockDuration
	}
	return c
}

func (c Config) validate() error {
	if c.Channels != 0 && (c.Channels < 2 || c.Channels > MaxChannels) {
		return fmt.Errorf("channels %d: want 2-%d, or 0 for the device's maximum", c.Channels, MaxChannels)
	}
	if c.Rate != 0 && (c.Rate < 8000 || c.Rate > 192000) {
		return fmt.Errorf("rate %d Hz: want 8000-192000, or 0 for automatic", c.Rate)
	}
	if c.Block != 0 && (c.Block < time.Millisecond || c.Block > MaxBlock) {
		return fmt.Errorf("block %v: want 1ms-%v, or 0 for %v", c.Block, MaxBlock, BlockDuration)
	}
	switch c.Format {
	case FormatAuto, S16LE, S32LE:
	default:
		return fmt.Errorf("sample format %v: want S16_LE or S32_LE", c.Format)
	}
	return nil
}

// Params is the configuration negotiated with the device.
type Params struct {
	Addr         Addr   // card, device, subdevice opened (Subdevice as reported by the kernel)
	CardID       string // e.g. "Loopback"
	Name         string // PCM name reported by the driver
	Channels     int
	Rate         int
	Format       Format
	PeriodFrames int // the driver's interrupt period
	BufferFrames int // ring buffer size: how late the reader may be before an overrun
	AvailMin     int // frames ready before the reader is woken: a block, within the buffer
	Protocol     uint32
}

// Caps are what a device can capture, as reported by the kernel before any
// choice is made.
type Caps struct {
	Formats                  []Format // of those this package reads
	MinChannels, MaxChannels int
	MinRate, MaxRate         int
}

// Stats counts what a Mic has done over its lifetime.
type Stats struct {
	Frames uint64 // frames delivered to the sink
	Blocks uint64 // blocks delivered
	Xruns  uint64 // overruns recovered (frames were lost; PTS re-anchored)
	Opens  uint64 // times the device was opened
	// Lag is the clock time since the epoch minus the PTS of the end of
	// the last block, measured as the block was handed over: normally
	// between zero and a period or two. A steady trend over hours is the
	// drift between the device's sample clock and the system clock.
	Lag time.Duration
}

type counters struct {
	frames, blocks, xruns, opens atomic.Uint64
	lag                          atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{Frames: c.frames.Load(), Blocks: c.blocks.Load(), Xruns: c.xruns.Load(), Opens: c.opens.Load(), Lag: time.Duration(c.lag.Load())}
}

// Mic captures from one ALSA PCM device. New opens and configures it, so
// Format and Params are known as soon as New returns. Run may be called
// again after it returns (it reopens the device with the same parameters);
// it must not be called concurrently.
type Mic struct {
	cfg    Config
	log    *slog.Logger
	params Params
	cnt    counters

	running atomic.Bool

	mu    sync.Mutex
	epoch time.Time
	dev   *device // open and configured, not yet running; nil once Run took it
	last  time.Duration
}

// Format returns the channel count and rate negotiated in New.
func (m *Mic) Format() (channels, rate int) { return m.params.Channels, m.params.Rate }

// Params returns the configuration negotiated in New.
func (m *Mic) Params() Params { return m.params }

// Stats returns the counters; safe from any goroutine.
func (m *Mic) Stats() Stats { return m.cnt.stats() }

// Close releases the device if New opened it and Run has not taken it.
// A running Run releases the device itself when it returns.
func (m *Mic) Close() error {
	m.mu.Lock()
	d := m.dev
	m.dev = nil
	m.mu.Unlock()
	if d == nil {
		return nil
	}
	return d.close()
}

// takeEpoch returns the PTS zero, fixing it at the first call when the
// configuration left it zero.
func (m *Mic) takeEpoch() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epoch.IsZero() {
		m.epoch = m.cfg.Epoch
		if m.epoch.IsZero() {
			m.epoch = time.Now()
		}
	}
	return m.epoch
}

// encode writes the samples of src (clamped to [-1, 1]) to dst as
// interleaved little-endian samples of format f; dst must hold them all.
func encode(dst []byte, src []float32, f Format) {
	for i, v := range src {
		x := math.Max(-1, math.Min(1, float64(v)))
		if math.IsNaN(x) {
			x = 0
		}
		switch f {
		case S16LE:
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(int16(math.Round(x*32767))))
		default:
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(int32(math.Round(x*math.MaxInt32))))
		}
	}
}

// convert writes the samples of raw (interleaved, little-endian, format f)
// to dst as floats in [-1, 1) and returns the number written.
func convert(dst []float32, raw []byte, f Format) int {
	switch f {
	case S16LE:
		n := min(len(dst), len(raw)/2)
		for i := range n {
			dst[i] = float32(int16(binary.LittleEndian.Uint16(raw[2*i:]))) / 32768
		}
		return n
	default:
		n := min(len(dst), len(raw)/4)
		for i := range n {
			dst[i] = float32(float64(int32(binary.LittleEndian.Uint32(raw[4*i:]))) / (1 << 31))
		}
		return n
	}
}

// blockFrames returns the frames in one block of d at rate.
func blockFrames(rate int, d time.Duration) int {
	return max(int(int64(rate)*int64(d)/int64(time.Second)), 1)
}

// availMin is how many frames a capture device holds before it wakes the
// reader: one block, so that a read takes a whole block, but never more
// than half the buffer (the reader needs room to be late) nor less than a
// period (the device wakes no more often anyway).
func availMin(block, period, buffer int) int {
	return max(min(block, buffer/2), period)
}
