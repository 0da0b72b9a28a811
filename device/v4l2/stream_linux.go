package v4l2

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bufferCount is the number of mmap buffers requested.
const bufferCount = 4

// stream is an open, streaming capture device.
type stream struct {
	path    string
	fd      int
	efd     int // eventfd that wakes next
	bufType uint32
	bufs    [][]byte
	planes  [1]plane // DQBUF/QBUF plane array (multi-planar API); heap, does not move
	layout  frameLayout
	fps     float64
	on      bool
}

func (s *stream) mplane() bool { return s.bufType == bufTypeVideoCaptureMPlane }

// openStream opens path, sets the format and rate of ch, maps the buffers,
// queues them and starts streaming.
func openStream(path string, ch Choice) (_ *stream, err error) {
	fd, _, bufType, err := openDevice(path)
	if err != nil {
		return nil, err
	}
	s := &stream{path: path, fd: fd, efd: -1, bufType: bufType}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("v4l2 %s: eventfd: %w", path, err)
	}
	if err := s.setFormat(ch); err != nil {
		return nil, err
	}
	s.fps = s.setRate(ch.FPS)
	if err := s.mapBuffers(); err != nil {
		return nil, err
	}
	for i := range s.bufs {
		if err := s.queue(uint32(i)); err != nil {
			return nil, err
		}
	}
	t := int32(s.bufType)
	if err := ioctl(s.fd, vidiocStreamOn, unsafe.Pointer(&t)); err != nil {
		return nil, wrapLost(fmt.Sprintf("v4l2 %s: stream on", path), err)
	}
	s.on = true
	return s, nil
}

func (s *stream) setFormat(ch Choice) error {
	if ch.Width <= 0 || ch.Height <= 0 || ch.Width > 1<<14 || ch.Height > 1<<14 {
		return fmt.Errorf("v4l2 %s: set format: invalid size %dx%d", s.path, ch.Width, ch.Height)
	}
	f := format{Type: s.bufType}
	if s.mplane() {
		p := f.pixMP()
		p.Width, p.Height, p.PixelFormat, p.Field, p.NumPlanes = uint32(ch.Width), uint32(ch.Height), uint32(ch.Format), fieldAny, 1
	} else {
		p := f.pix()
		p.Width, p.Height, p.PixelFormat, p.Field = uint32(ch.Width), uint32(ch.Height), uint32(ch.Format), fieldAny
	}
	if err := ioctl(s.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		return wrapLost(fmt.Sprintf("v4l2 %s: set format %v", s.path, ch), err)
	}
	var l frameLayout
	if s.mplane() {
		p := f.pixMP()
		if p.NumPlanes != 1 {
			return fmt.Errorf("v4l2 %s: format %v has %d planes: %w", s.path, PixelFormat(p.PixelFormat), p.NumPlanes, ErrFormatUnsupported)
		}
		l = frameLayout{Format: PixelFormat(p.PixelFormat), Width: int(p.Width), Height: int(p.Height), Stride: int(p.PlaneFmt[0].BytesPerLine)}
	} else {
		p := f.pix()
		l = frameLayout{Format: PixelFormat(p.PixelFormat), Width: int(p.Width), Height: int(p.Height), Stride: int(p.BytesPerLine)}
	}
	if l.Format != ch.Format {
		return fmt.Errorf("v4l2 %s: asked for %v, driver set %v: %w", s.path, ch.Format, l.Format, ErrFormatUnsupported)
	}
	if l.Format.IsRaw() {
		if err := l.check(); err != nil {
			return fmt.Errorf("v4l2 %s: %w", s.path, err)
		}
	}
	s.layout = l
	return nil
}

// fpsFract turns a rate into a frame interval.
func fpsFract(fps float64) fract {
	if fps == math.Trunc(fps) && fps >= 1 && fps <= 1000 {
		return fract{Numerator: 1, Denominator: uint32(fps)}
	}
	return fract{Numerator: 1000, Denominator: uint32(math.Round(fps * 1000))}
}

// setRate asks for fps and returns the rate the driver set (0 when the
// driver cannot tell). A driver that cannot set the rate keeps its own.
func (s *stream) setRate(fps float64) float64 {
	p := streamParm{Type: s.bufType}
	if err := ioctl(s.fd, vidiocGParm, unsafe.Pointer(&p)); err != nil {
		return 0
	}
	if p.Capture.Capability&captureCapTimePerFrame != 0 && fps > 0 && fps <= 1000 {
		p.Capture.TimePerFrame = fpsFract(fps)
		if err := ioctl(s.fd, vidiocSParm, unsafe.Pointer(&p)); err != nil {
			_ = ioctl(s.fd, vidiocGParm, unsafe.Pointer(&p))
		}
	}
	if tpf := p.Capture.TimePerFrame; tpf.Numerator > 0 && tpf.Denominator > 0 {
		return float64(tpf.Denominator) / float64(tpf.Numerator)
	}
	return 0
}

func (s *stream) newBuffer(index uint32) buffer {
	b := buffer{Index: index, Type: s.bufType, Memory: memoryMMAP}
	if s.mplane() {
		s.planes = [1]plane{}
		b.Length = 1
		b.setPlanes(&s.planes[0])
	}
	return b
}

func (s *stream) mapBuffers() error {
	rb := requestBuffers{Count: bufferCount, Type: s.bufType, Memory: memoryMMAP}
	if err := ioctl(s.fd, vidiocReqBufs, unsafe.Pointer(&rb)); err != nil {
		return wrapLost(fmt.Sprintf("v4l2 %s: request buffers", s.path), err)
	}
	if rb.Count < 2 || rb.Count > 32 {
		return fmt.Errorf("v4l2 %s: request buffers: driver gave %d buffers", s.path, rb.Count)
	}
	for i := uint32(0); i < rb.Count; i++ {
		b := s.newBuffer(i)
		if err := ioctl(s.fd, vidiocQueryBuf, unsafe.Pointer(&b)); err != nil {
			return wrapLost(fmt.Sprintf("v4l2 %s: query buffer %d", s.path, i), err)
		}
		off, n := b.offset(), b.Length
		if s.mplane() {
			off, n = s.planes[0].memOffset(), s.planes[0].Length
		}
		if n == 0 || n > 1<<28 {
			return fmt.Errorf("v4l2 %s: buffer %d has length %d", s.path, i, n)
		}
		m, err := unix.Mmap(s.fd, int64(off), int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return wrapLost(fmt.Sprintf("v4l2 %s: map buffer %d", s.path, i), err)
		}
		s.bufs = append(s.bufs, m)
	}
	return nil
}

func (s *stream) queue(index uint32) error {
	b := s.newBuffer(index)
	if err := ioctl(s.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
		return wrapLost(fmt.Sprintf("v4l2 %s: queue buffer %d", s.path, index), err)
	}
	return nil
}

func (s *stream) close() {
	if s.on {
		t := int32(s.bufType)
		_ = ioctl(s.fd, vidiocStreamOff, unsafe.Pointer(&t))
		s.on = false
	}
	for _, m := range s.bufs {
		_ = unix.Munmap(m)
	}
	s.bufs = nil
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	if s.efd >= 0 {
		unix.Close(s.efd)
		s.efd = -1
	}
}

func monotonicNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("read CLOCK_MONOTONIC: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// epochMonotonic returns the CLOCK_MONOTONIC reading of epoch, measured
// once against time.Now (whose monotonic clock is CLOCK_MONOTONIC on Linux
// but not exported).
func epochMonotonic(epoch time.Time) (time.Duration, error) {
	m1, err := monotonicNow()
	if err != nil {
		return 0, err
	}
	now := time.Now()
	m2, err := monotonicNow()
	if err != nil {
		return 0, err
	}
	return m1 + (m2-m1)/2 - now.Sub(epoch), nil
}

// next waits up to timeout for a filled buffer (see frameSource).
func (s *stream) next(timeout time.Duration) (frame, bool, error) {
	fds := [2]unix.PollFd{
		{Fd: int32(s.fd), Events: unix.POLLIN},
		{Fd: int32(s.efd), Events: unix.POLLIN},
	}
	n, err := unix.Poll(fds[:], int(timeout/time.Millisecond)+1)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return frame{}, false, nil
		}
		return frame{}, false, fmt.Errorf("v4l2 %s: poll: %w", s.path, err)
	}
	if n == 0 || fds[1].Revents != 0 {
		return frame{}, false, nil
	}
	re := fds[0].Revents
	b := s.newBuffer(0)
	if err := ioctl(s.fd, vidiocDQBuf, unsafe.Pointer(&b)); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			if re&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				return frame{}, false, fmt.Errorf("v4l2 %s: poll events %#x: %w", s.path, re, ErrDeviceLost)
			}
			return frame{}, false, nil
		}
		return frame{}, false, wrapLost(fmt.Sprintf("v4l2 %s: dequeue buffer", s.path), err)
	}
	if int(b.Index) >= len(s.bufs) {
		return frame{}, false, fmt.Errorf("v4l2 %s: driver returned buffer %d of %d", s.path, b.Index, len(s.bufs))
	}
	used, off := b.BytesUsed, uint32(0)
	if s.mplane() {
		used, off = s.planes[0].BytesUsed, s.planes[0].DataOffset
	}
	mono, err := bufferTime(&b)
	if err != nil {
		return frame{}, false, fmt.Errorf("v4l2 %s: %w", s.path, err)
	}
	return frame{
		index:   b.Index,
		data:    frameData(s.bufs[b.Index], used, off),
		corrupt: b.Flags&bufFlagError != 0,
		mono:    mono,
	}, true, nil
}

func (s *stream) release(index uint32) error { return s.queue(index) }

func (s *stream) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(s.efd, one[:])
}

func (s *stream) frameLayout() frameLayout { return s.layout }

// openSource opens a capture stream and logs what it streams.
func openSource(path string, ch Choice, log *slog.Logger) (frameSource, error) {
	s, err := openStream(path, ch)
	if err != nil {
		return nil, err
	}
	log.Info("camera streaming", "device", path, "format", s.layout.Format.String(),
		"width", s.layout.Width, "height", s.layout.Height, "fps", s.fps, "buffers", len(s.bufs))
	return s, nil
}

// frameData returns the filled part of a mapped buffer, clamping what the
// driver says to the buffer.
func frameData(buf []byte, used, off uint32) []byte {
	end := min(uint64(used), uint64(len(buf)))
	start := min(uint64(off), end)
	return buf[start:end]
}

// bufferTime is the capture time of b on CLOCK_MONOTONIC: the kernel's
// timestamp when it is monotonic, else now.
func bufferTime(b *buffer) (time.Duration, error) {
	sec, nsec := b.Timestamp.Unix()
	if b.Flags&bufFlagTimestampMask == bufFlagTimestampMonotonic && (sec != 0 || nsec != 0) {
		return time.Duration(sec)*time.Second + time.Duration(nsec), nil
	}
	return monotonicNow()
}
