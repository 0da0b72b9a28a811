package replay

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/pacer"
)

// WAV format tags (mmreg.h) that the parser accepts.
const (
	wavTagPCM        = 0x0001
	wavTagFloat      = 0x0003
	wavTagExtensible = 0xFFFE
)

// WAVFormat describes the sample data of a WAV file.
type WAVFormat struct {
	Channels   int   // 1 to 32
	Rate       int   // samples per second per channel
	Bits       int   // bits per sample: 16, 24 or 32
	Float      bool  // IEEE float (32-bit) rather than signed integer
	DataOffset int64 // byte offset of the first sample in the file
	DataBytes  int64 // length of the sample data in bytes; -1 if the header does not say
}

// FrameBytes returns the size of one sample frame (all channels).
func (f WAVFormat) FrameBytes() int { return f.Channels * f.Bits / 8 }

// ParseWAV reads a RIFF/WAVE header from r up to the start of the sample
// data: PCM 16, 24 or 32-bit integer or 32-bit float, plain or
// WAVE_FORMAT_EXTENSIBLE, 1 to 32 channels. Unknown chunks are skipped.
// name appears in errors. ParseWAV reads no more than it must and allocates
// nothing whose size comes from the file.
func ParseWAV(name string, r io.Reader) (WAVFormat, error) {
	var f WAVFormat
	fail := func(format string, args ...any) (WAVFormat, error) {
		return WAVFormat{}, fmt.Errorf("wav %s: "+format, append([]any{name}, args...)...)
	}
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return fail("read RIFF header: %w", err)
	}
	switch {
	case string(riff[:4]) == "RF64":
		return fail("RF64 (WAV over 4 GiB) is not supported")
	case string(riff[:4]) != "RIFF":
		return fail("not a RIFF file (starts with %q)", riff[:4])
	case string(riff[8:]) != "WAVE":
		return fail("RIFF type %q, want WAVE", riff[8:])
	}
	off := int64(12)
	haveFmt := false
	for {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if !haveFmt {
					return fail("no fmt chunk")
				}
				return fail("no data chunk")
			}
			return fail("read chunk header at %d: %w", off, err)
		}
		off += 8
		id, size := string(h[:4]), int64(binary.LittleEndian.Uint32(h[4:]))
		switch id {
		case "fmt ":
			if size < 16 {
				return fail("fmt chunk of %d bytes, want at least 16", size)
			}
			var b [40]byte
			n := min(size, int64(len(b)))
			if _, err := io.ReadFull(r, b[:n]); err != nil {
				return fail("read fmt chunk: %w", err)
			}
			if err := parseFmt(&f, b[:n]); err != nil {
				return fail("%w", err)
			}
			if err := skip(r, size-n+size&1); err != nil {
				return fail("read fmt chunk: %w", err)
			}
			off += size + size&1
			haveFmt = true
		case "data":
			if !haveFmt {
				return fail("data chunk before fmt chunk")
			}
			f.DataOffset = off
			f.DataBytes = -1
			if size != math.MaxUint32 { // streaming writers leave it at -1
				fb := int64(f.FrameBytes())
				f.DataBytes = size / fb * fb
			}
			return f, nil
		default:
			if err := skip(r, size+size&1); err != nil {
				return fail("skip %q chunk at %d: %w", id, off-8, err)
			}
			off += size + size&1
		}
	}
}

// parseFmt fills f from the first (up to 40) bytes of a fmt chunk.
func parseFmt(f *WAVFormat, b []byte) error {
	le := binary.LittleEndian
	tag := int(le.Uint16(b[0:]))
	f.Channels = int(le.Uint16(b[2:]))
	f.Rate = int(le.Uint32(b[4:]))
	blockAlign := int(le.Uint16(b[12:]))
	f.Bits = int(le.Uint16(b[14:]))
	if tag == wavTagExtensible {
		if len(b) < 40 {
			return fmt.Errorf("WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes, want 40", len(b))
		}
		guid := [12]byte{0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71}
		if [12]byte(b[28:40]) != guid {
			return fmt.Errorf("WAVE_FORMAT_EXTENSIBLE with a non-standard sub-format GUID")
		}
		tag = int(le.Uint32(b[24:]))
	}
	switch tag {
	case wavTagPCM:
		if f.Bits != 16 && f.Bits != 24 && f.Bits != 32 {
			return fmt.Errorf("unsupported %d-bit integer PCM (want 16, 24 or 32)", f.Bits)
		}
	case wavTagFloat:
		if f.Bits != 32 {
			return fmt.Errorf("unsupported %d-bit float PCM (want 32)", f.Bits)
		}
		f.Float = true
	default:
		return fmt.Errorf("unsupported format tag 0x%x (%s)", tag, wavTagName(tag))
	}
	if f.Channels < 1 || f.Channels > 32 {
		return fmt.Errorf("%d channels, want 1 to 32", f.Channels)
	}
	if f.Rate < 1 || f.Rate > 768000 {
		return fmt.Errorf("sample rate %d Hz out of range 1-768000", f.Rate)
	}
	if blockAlign != f.FrameBytes() {
		return fmt.Errorf("block align %d, want %d for %d channels of %d bits",
			blockAlign, f.FrameBytes(), f.Channels, f.Bits)
	}
	return nil
}

// wavTagName names the common non-PCM format tags for error messages.
func wavTagName(tag int) string {
	switch tag {
	case 0x0002:
		return "Microsoft ADPCM"
	case 0x0006:
		return "A-law"
	case 0x0007:
		return "mu-law"
	case 0x0011:
		return "IMA ADPCM"
	case 0x0031:
		return "GSM 6.10"
	case 0x0050:
		return "MPEG audio"
	case 0x0055:
		return "MP3"
	case 0x00ff, 0x1610:
		return "AAC"
	case 0x0161, 0x0162, 0x0163:
		return "WMA"
	case 0xf1ac:
		return "FLAC"
	}
	return "unknown"
}

// skip discards n bytes of r, seeking when r can.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekCurrent)
		return err
	}
	m, err := io.CopyN(io.Discard, r, n)
	if err == io.EOF && m < n {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Decode converts the whole frames in src to float32 samples in [-1, 1]
// into dst and returns the number of frames converted, limited by the
// room in dst.
func (f WAVFormat) Decode(dst []float32, src []byte) int {
	fb := f.FrameBytes()
	if fb == 0 || f.Channels == 0 {
		return 0
	}
	frames := min(len(src)/fb, len(dst)/f.Channels)
	n := frames * f.Channels
	le := binary.LittleEndian
	switch {
	case f.Float:
		for i := range n {
			v := math.Float32frombits(le.Uint32(src[4*i:]))
			switch {
			case v > 1:
				v = 1
			case v < -1:
				v = -1
			case v != v:
				v = 0
			}
			dst[i] = v
		}
	case f.Bits == 16:
		for i := range n {
			dst[i] = float32(int16(le.Uint16(src[2*i:]))) / (1 << 15)
		}
	case f.Bits == 24:
		for i := range n {
			b := src[3*i : 3*i+3]
			v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
			dst[i] = float32(v) / (1 << 23)
		}
	case f.Bits == 32:
		for i := range n {
			dst[i] = float32(float64(int32(le.Uint32(src[4*i:]))) / (1 << 31))
		}
	default:
		return 0
	}
	return frames
}

// AudioConfig configures a WAV file standing in for the microphone array.
type AudioConfig struct {
	Path  string
	Pace  Pace          // PaceRealtime (the zero value) or PaceFast
	Epoch time.Time     // zero of the PTS timeline; default the start of Run
	Block time.Duration // samples per delivered block; default 10ms
}

// Audio streams a WAV file as PCM blocks, looping forever.
type Audio struct {
	cfg         AudioConfig
	format      WAVFormat
	blockFrames int
}

// audioMaxLag is how far behind real time Run may fall before it skips
// ahead, as a real device overruns.
const audioMaxLag = 500 * time.Millisecond

// NewAudio opens cfg.Path, checks its header and that it holds samples.
func NewAudio(cfg AudioConfig) (*Audio, error) {
	if cfg.Block <= 0 {
		cfg.Block = 10 * time.Millisecond
	}
	f, err := os.Open(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("open audio: %w", err)
	}
	defer f.Close()
	format, err := ParseWAV(cfg.Path, f)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", cfg.Path, err)
	}
	// A truncated file (or a streamed one with no size) ends at EOF.
	fb := int64(format.FrameBytes())
	avail := max(0, st.Size()-format.DataOffset) / fb * fb
	if format.DataBytes < 0 || format.DataBytes > avail {
		format.DataBytes = avail
	}
	if format.DataBytes == 0 {
		return nil, fmt.Errorf("wav %s: no samples", cfg.Path)
	}
	a := &Audio{cfg: cfg, format: format}
	a.blockFrames = max(1, int(int64(cfg.Block)*int64(format.Rate)/int64(time.Second)))
	return a, nil
}

// Format returns the channel count and sample rate of the file.
func (a *Audio) Format() (channels, rate int) { return a.format.Channels, a.format.Rate }

// WAVFormat returns the parsed header, DataBytes being the bytes played
// per loop.
func (a *Audio) WAVFormat() WAVFormat { return a.format }

// Run streams the file to sink in blocks of cfg.Block until ctx ends, then
// returns ctx.Err(). At the end of the data it starts again from the first
// sample, the PTS running on (a block may span the loop point). With
// PaceRealtime the block whose first sample has PTS t is delivered at
// Epoch+t, not before, starting with the block holding the current time; a
// sink more than half a second late makes the PTS jump as a device overrun
// would. With PaceFast blocks follow each other without waiting. The
// block's Samples are reused after sink returns: sink must copy what it
// keeps.
func (a *Audio) Run(ctx context.Context, sink func(media.PCM)) error {
	f, err := os.Open(a.cfg.Path)
	if err != nil {
		return fmt.Errorf("open audio: %w", err)
	}
	defer f.Close()
	format := a.format
	br := bufio.NewReaderSize(f, readAhead)
	rewind := func() (*bufio.Reader, error) {
		if _, err := f.Seek(format.DataOffset, io.SeekStart); err != nil {
			return nil, fmt.Errorf("seek %s: %w", a.cfg.Path, err)
		}
		br.Reset(f)
		return br, nil
	}
	if _, err := rewind(); err != nil {
		return err
	}
	left := format.DataBytes
	fb := format.FrameBytes()
	raw := make([]byte, a.blockFrames*fb)
	buf := make([]float32, a.blockFrames*format.Channels)

	epoch := a.cfg.Epoch
	if epoch.IsZero() {
		epoch = time.Now()
	}
	rate, bf := int64(format.Rate), int64(a.blockFrames)
	pts := func(k int64) time.Duration {
		return media.FramesToDur(k*bf, int(rate))
	}
	blockAt := func(el time.Duration) int64 {
		if el <= 0 {
			return 0
		}
		s := int64(el / time.Second)
		return (s*rate + int64(el%time.Second)*rate/int64(time.Second)) / bf
	}
	k := blockAt(time.Since(epoch))
	pace := pacer.New(ctx)
	defer pace.Close()
	for ; ; k++ {
		for filled := 0; filled < len(raw); {
			if left == 0 {
				if _, err := rewind(); err != nil {
					return err
				}
				left = format.DataBytes
			}
			n := int(min(int64(len(raw)-filled), left))
			if _, err := io.ReadFull(br, raw[filled:filled+n]); err != nil {
				return fmt.Errorf("read %s: %w", a.cfg.Path, err)
			}
			filled += n
			left -= int64(n)
		}
		format.Decode(buf, raw)
		if a.cfg.Pace != PaceFast {
			due := epoch.Add(pts(k))
			if err := pace.Until(due); err != nil {
				return err
			}
			if time.Since(due) > audioMaxLag {
				k = blockAt(time.Since(epoch))
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sink(media.PCM{Samples: buf, Channels: format.Channels, Rate: format.Rate, PTS: pts(k)})
	}
}
