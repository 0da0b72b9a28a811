// Package rawaudio keeps the microphones' own channels beside a lesson, for
// reprocessing: 24-bit PCM WAV files (WAVE_FORMAT_EXTENSIBLE), one per media
// segment, named after it (seg_NNNNNN.raw.wav beside seg_NNNNNN.m4s). A file
// is written under a temporary name (.part) whose header is brought up to
// date and fsynced about once a second, so what a crash leaves is readable
// as it is; Repair makes it exact and gives it its final name, and Close
// does the same for a file that ends normally. The header carries the
// media time of the file's first sample in a chunk of its own ("strt",
// nanoseconds as a little-endian int64), which players skip, so that a
// file repaired after a crash still says where it belongs.
package rawaudio

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/capture/media"
)

// PartSuffix ends the name of a file still being written.
const PartSuffix = ".part"

// Bits is the sample size of every file written.
const Bits = 24

// headerSize is the size of the header Create writes: RIFF, a 40-byte
// extensible fmt chunk, the start chunk and the data chunk's header.
const headerSize = 12 + 8 + 40 + 8 + 8 + 8

// StartChunk is the id of the chunk that holds the media time of a file's
// first sample.
const StartChunk = "strt"

// maxData keeps a file's data within what a RIFF size field can count.
const maxData = math.MaxUint32 - headerSize

// Name returns the file name of the raw audio beside segment n; k > 0
// names a further file for the same segment (a crash can leave one).
func Name(n, k int) string {
	if k == 0 {
		return fmt.Sprintf("seg_%06d.raw.wav", n)
	}
	return fmt.Sprintf("seg_%06d.raw%d.wav", n, k)
}

// ParseName returns the segment number of a raw audio file name, and false
// when name is not one.
func ParseName(name string) (int, bool) {
	var n, k int
	if !strings.HasPrefix(name, "seg_") || !strings.HasSuffix(name, ".wav") || len(name) < len("seg_000000.raw.wav") {
		return 0, false
	}
	rest := name[len("seg_000000"):]
	if _, err := fmt.Sscanf(name[:len("seg_000000")], "seg_%06d", &n); err != nil || n <= 0 {
		return 0, false
	}
	if rest != ".raw.wav" {
		if _, err := fmt.Sscanf(rest, ".raw%d.wav", &k); err != nil || k <= 0 {
			return 0, false
		}
	}
	if Name(n, k) != name {
		return 0, false
	}
	return n, true
}

// Info describes a closed raw audio file.
type Info struct {
	Name    string
	Segment int // the segment it lies beside
	// Start is the media time of its first sample, when the file says
	// (HasStart; files written before the start chunk do not).
	Start    time.Duration
	HasStart bool
	Channels int
	Rate     int
	Bits     int
	Frames   int64
	Bytes    int64
	SHA256   string
}

// Duration returns the playing time of the file.
func (i Info) Duration() time.Duration {
	if i.Rate <= 0 {
		return 0
	}
	return time.Duration(i.Frames) * time.Second / time.Duration(i.Rate)
}

// ErrFull is returned by Write when the file holds as much as a WAV file
// can; the caller starts another.
var ErrFull = errors.New("rawaudio: file full")

// SyncEvery is how much audio is written between header updates and
// background fsyncs.
const SyncEvery = time.Second

// File is a raw audio file being written. One goroutine owns it.
type File struct {
	path, final string
	segment     int
	channels    int
	rate        int
	start       time.Duration
	f           *os.File
	frames      int64
	sinceSync   int64
	buf         []byte
	sync        *durable.Syncer
}

// Create starts the file name (see Name) in dir under its temporary name;
// start is the media time of the first sample it will hold.
func Create(dir, name string, segment, channels, rate int, start time.Duration) (*File, error) {
	if channels < 1 || channels > 32 || rate < 1000 || rate > 768000 {
		return nil, fmt.Errorf("rawaudio: create %s: %d channels at %d Hz", name, channels, rate)
	}
	final := filepath.Join(dir, name)
	path := final + PartSuffix
	if _, err := os.Stat(final); err == nil {
		return nil, fmt.Errorf("rawaudio: create %s: %w", final, os.ErrExist)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("rawaudio: create: %w", err)
	}
	w := &File{path: path, final: final, segment: segment, channels: channels, rate: rate, start: start, f: f}
	if _, err := f.Write(Header(channels, rate, start, 0)); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("rawaudio: write %s: %w", path, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.sync = durable.NewSyncer(f)
	return w, nil
}

// Segment returns the number of the segment the file lies beside.
func (w *File) Segment() int { return w.segment }

// Frames returns the sample frames written so far.
func (w *File) Frames() int64 { return w.frames }

// Write appends a block of samples (p.Channels and p.Rate must be the
// file's). The header is rewritten and a background fsync asked for after
// every SyncEvery of audio.
func (w *File) Write(p media.PCM) error {
	if p.Channels != w.channels || p.Rate != w.rate {
		return fmt.Errorf("rawaudio: %s: block of %d channels at %d Hz, file of %d at %d", w.path, p.Channels, p.Rate, w.channels, w.rate)
	}
	if err := w.sync.Failed(); err != nil {
		return fmt.Errorf("rawaudio: fsync %s: %w", w.path, err)
	}
	n := p.Frames()
	fb := int64(w.channels * Bits / 8)
	if (w.frames+int64(n))*fb > maxData {
		return ErrFull
	}
	w.buf = Encode24(w.buf[:0], p.Samples[:n*w.channels])
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("rawaudio: write %s: %w", w.path, err)
	}
	w.frames += int64(n)
	w.sinceSync += int64(n)
	if w.sinceSync >= int64(SyncEvery)*int64(w.rate)/int64(time.Second) {
		w.sinceSync = 0
		if err := w.writeHeader(); err != nil {
			return err
		}
		w.sync.Kick()
	}
	return nil
}

func (w *File) writeHeader() error {
	if _, err := w.f.WriteAt(Header(w.channels, w.rate, w.start, w.frames*int64(w.channels*Bits/8)), 0); err != nil {
		return fmt.Errorf("rawaudio: write header %s: %w", w.path, err)
	}
	return nil
}

// Close completes the header, fsyncs the file, renames it to its final
// name and returns what it holds.
func (w *File) Close() (Info, error) {
	err := w.writeHeader()
	if serr := w.sync.Stop(); err == nil && serr != nil {
		err = fmt.Errorf("rawaudio: fsync %s: %w", w.path, serr)
	}
	if err == nil {
		if err = w.f.Sync(); err != nil {
			err = fmt.Errorf("rawaudio: fsync %s: %w", w.path, err)
		}
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("rawaudio: close %s: %w", w.path, cerr)
	}
	if err != nil {
		return Info{}, err
	}
	if err := durable.Rename(w.path, w.final); err != nil {
		return Info{}, fmt.Errorf("rawaudio: %w", err)
	}
	return InfoFromFile(w.final)
}

// Abandon stops writing as a crash would, leaving the temporary file for
// Repair; what was written is fsynced first.
func (w *File) Abandon() error {
	err := w.writeHeader()
	w.sync.Stop()
	if serr := w.f.Sync(); err == nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Header returns the header of a 24-bit PCM file whose first sample is at
// media time start, with dataBytes of samples.
func Header(channels, rate int, start time.Duration, dataBytes int64) []byte {
	b := make([]byte, headerSize)
	le := binary.LittleEndian
	copy(b[0:], "RIFF")
	le.PutUint32(b[4:], uint32(headerSize-8+dataBytes))
	copy(b[8:], "WAVE")
	copy(b[12:], "fmt ")
	le.PutUint32(b[16:], 40)
	block := channels * Bits / 8
	le.PutUint16(b[20:], 0xFFFE) // WAVE_FORMAT_EXTENSIBLE
	le.PutUint16(b[22:], uint16(channels))
	le.PutUint32(b[24:], uint32(rate))
	le.PutUint32(b[28:], uint32(rate*block))
	le.PutUint16(b[32:], uint16(block))
	le.PutUint16(b[34:], Bits)
	le.PutUint16(b[36:], 22)   // extension size
	le.PutUint16(b[38:], Bits) // valid bits
	le.PutUint32(b[40:], 0)    // channel mask: none (microphones, not speakers)
	// KSDATAFORMAT_SUBTYPE_PCM 00000001-0000-0010-8000-00aa00389b71
	copy(b[44:], []byte{0x01, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71})
	copy(b[60:], StartChunk)
	le.PutUint32(b[64:], 8)
	le.PutUint64(b[68:], uint64(start))
	copy(b[76:], "data")
	le.PutUint32(b[80:], uint32(dataBytes))
	return b
}

// Encode24 appends samples in [-1, 1] as 24-bit little-endian integers
// (clamped; NaN counts as 0).
func Encode24(dst []byte, samples []float32) []byte {
	for _, v := range samples {
		var i int32
		switch {
		case v != v:
		case v >= 1:
			i = 1<<23 - 1
		case v <= -1:
			i = -1 << 23
		default:
			i = int32(math.Round(float64(v) * (1 << 23)))
			i = min(max(i, -1<<23), 1<<23-1)
		}
		dst = append(dst, byte(i), byte(i>>8), byte(i>>16))
	}
	return dst
}

// Format is what a file's header says.
type Format struct {
	Channels, Rate, Bits int
	DataOffset           int64
	DataBytes            int64 // as the header says
	// Start is the media time of the first sample, when a start chunk
	// says (HasStart).
	Start    time.Duration
	HasStart bool
}

// ParseHeader reads the header of a WAV file this package wrote (or any
// integer PCM WAV file): its format and where its samples start.
func ParseHeader(r io.Reader) (Format, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Format{}, fmt.Errorf("wav header: %w", err)
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return Format{}, errors.New("wav header: not RIFF/WAVE")
	}
	var f Format
	off := int64(12)
	haveFmt := false
	for range 64 {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return Format{}, fmt.Errorf("wav header: %w", err)
		}
		off += 8
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		switch string(ch[:4]) {
		case "fmt ":
			if size < 16 || size > 64 {
				return Format{}, fmt.Errorf("wav header: fmt chunk of %d bytes", size)
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(r, b); err != nil {
				return Format{}, fmt.Errorf("wav header: %w", err)
			}
			tag := binary.LittleEndian.Uint16(b)
			f.Channels = int(binary.LittleEndian.Uint16(b[2:]))
			f.Rate = int(binary.LittleEndian.Uint32(b[4:]))
			f.Bits = int(binary.LittleEndian.Uint16(b[14:]))
			if tag != 1 && tag != 0xFFFE {
				return Format{}, fmt.Errorf("wav header: format tag %#x is not PCM", tag)
			}
			if f.Channels < 1 || f.Channels > 32 || f.Rate < 1 || (f.Bits != 16 && f.Bits != 24 && f.Bits != 32) {
				return Format{}, fmt.Errorf("wav header: %d channels, %d Hz, %d bits", f.Channels, f.Rate, f.Bits)
			}
			haveFmt = true
			off += size
			if size%2 == 1 {
				if _, err := io.ReadFull(r, b[:1]); err != nil {
					return Format{}, fmt.Errorf("wav header: %w", err)
				}
				off++
			}
		case StartChunk:
			if size != 8 {
				return Format{}, fmt.Errorf("wav header: start chunk of %d bytes", size)
			}
			var b [8]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return Format{}, fmt.Errorf("wav header: %w", err)
			}
			f.Start, f.HasStart = time.Duration(binary.LittleEndian.Uint64(b[:])), true
			off += 8
		case "data":
			if !haveFmt {
				return Format{}, errors.New("wav header: data before fmt")
			}
			f.DataOffset, f.DataBytes = off, size
			return f, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return Format{}, fmt.Errorf("wav header: %w", err)
			}
			off += size + size%2
		}
	}
	return Format{}, errors.New("wav header: too many chunks")
}

// InfoFromFile describes a closed raw audio file from its content.
func InfoFromFile(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("rawaudio: %w", err)
	}
	defer f.Close()
	name := filepath.Base(path)
	seg, ok := ParseName(name)
	if !ok {
		return Info{}, fmt.Errorf("rawaudio: %s: not a raw audio name", path)
	}
	h := sha256.New()
	format, err := ParseHeader(io.TeeReader(f, h))
	if err != nil {
		return Info{}, fmt.Errorf("rawaudio: %s: %w", path, err)
	}
	n, err := io.Copy(h, f)
	if err != nil {
		return Info{}, fmt.Errorf("rawaudio: read %s: %w", path, err)
	}
	fb := int64(format.Channels * format.Bits / 8)
	return Info{Name: name, Segment: seg, Start: format.Start, HasStart: format.HasStart,
		Channels: format.Channels, Rate: format.Rate, Bits: format.Bits,
		Frames: min(n, format.DataBytes) / fb, Bytes: format.DataOffset + n,
		SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ErrEmpty is returned by Repair for a file with no whole sample frame;
// the file has been removed.
var ErrEmpty = errors.New("rawaudio: no samples")

// Repair closes a file left open by a crash: the .part file at path is
// cut to whole sample frames, its header made to count them, fsynced and
// renamed to its final name. A file without a sample is removed (ErrEmpty).
func Repair(path string) (Info, error) {
	if !strings.HasSuffix(path, PartSuffix) {
		return Info{}, fmt.Errorf("rawaudio: repair %s: not a %s file", path, PartSuffix)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Info{}, fmt.Errorf("rawaudio: repair: %w", err)
	}
	format, herr := ParseHeader(f)
	st, err := f.Stat()
	if herr != nil || err != nil {
		f.Close()
		if herr == nil {
			herr = err
		}
		if st != nil && st.Size() < headerSize {
			// Cut short before its header was whole: nothing to keep.
			return Info{}, removeEmpty(path)
		}
		return Info{}, fmt.Errorf("rawaudio: repair %s: %w", path, herr)
	}
	fb := int64(format.Channels * format.Bits / 8)
	data := min((st.Size()-format.DataOffset)/fb*fb, maxData/fb*fb)
	if data <= 0 {
		f.Close()
		return Info{}, removeEmpty(path)
	}
	le := binary.LittleEndian
	var sz [4]byte
	le.PutUint32(sz[:], uint32(format.DataOffset-8+data))
	_, err = f.WriteAt(sz[:], 4)
	if err == nil {
		le.PutUint32(sz[:], uint32(data))
		_, err = f.WriteAt(sz[:], format.DataOffset-4)
	}
	if err == nil {
		err = f.Truncate(format.DataOffset + data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Info{}, fmt.Errorf("rawaudio: repair %s: %w", path, err)
	}
	final := strings.TrimSuffix(path, PartSuffix)
	if err := durable.Rename(path, final); err != nil {
		return Info{}, fmt.Errorf("rawaudio: repair: %w", err)
	}
	return InfoFromFile(final)
}

func removeEmpty(path string) error {
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("rawaudio: repair: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return ErrEmpty
}
