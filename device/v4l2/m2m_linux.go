package v4l2

import (
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	bufTypeVideoOutput       = 2
	bufTypeVideoOutputMPlane = 10
	fieldNone                = 1

	bufFlagKeyframe = 0x00000008
	bufFlagLast     = 0x00100000

	encCmdStop = 1

	selTgtCrop = 0
)

// struct v4l2_selection
type selection struct {
	Type, Target, Flags uint32
	Left, Top           int32
	Width, Height       uint32
	Reserved            [9]uint32
}

// struct v4l2_control
type control struct {
	ID    uint32
	Value int32
}

// struct v4l2_encoder_cmd
type encoderCmd struct {
	Cmd   uint32
	Flags uint32
	Raw   [8]uint32
}

var (
	vidiocSCtrl      = ioc(iocRead|iocWrite, 28, unsafe.Sizeof(control{}))
	vidiocEncoderCmd = ioc(iocRead|iocWrite, 77, unsafe.Sizeof(encoderCmd{}))
	vidiocSSelection = ioc(iocRead|iocWrite, 95, unsafe.Sizeof(selection{}))
)

const (
	_ uintptr = unsafe.Sizeof(control{}) - 8
	_ uintptr = 8 - unsafe.Sizeof(control{})
	_ uintptr = unsafe.Sizeof(encoderCmd{}) - 40
	_ uintptr = 40 - unsafe.Sizeof(encoderCmd{})
	_ uintptr = unsafe.Sizeof(selection{}) - 64
	_ uintptr = 64 - unsafe.Sizeof(selection{})
)

// m2mCaps reports whether the capabilities are those of a memory-to-memory
// device, and whether it speaks the multi-planar API.
func m2mCaps(c capability) (m2m, mplane bool) {
	caps := c.Capabilities
	if caps&capDeviceCaps != 0 {
		caps = c.DeviceCaps
	}
	if caps&capStreaming == 0 {
		return false, false
	}
	switch {
	case caps&capVideoM2MMPlane != 0:
		return true, true
	case caps&capVideoM2M != 0:
		return true, false
	}
	return false, false
}

func queueTypes(mplane bool) (raw, coded uint32) {
	if mplane {
		return bufTypeVideoOutputMPlane, bufTypeVideoCaptureMPlane
	}
	return bufTypeVideoOutput, bufTypeVideoCapture
}

func enumFourCCs(fd int, bufType uint32) ([]PixelFormat, error) {
	var out []PixelFormat
	err := eachFormat(fd, bufType, func(d fmtDesc) error {
		out = append(out, PixelFormat(d.PixelFormat))
		return nil
	})
	return out, err
}

// openM2M opens path and checks that it is a streaming memory-to-memory
// device.
func openM2M(path string) (int, M2MInfo, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, M2MInfo{}, wrapLost(fmt.Sprintf("v4l2 m2m open %s", path), err)
	}
	var c capability
	if err := ioctl(fd, vidiocQueryCap, unsafe.Pointer(&c)); err != nil {
		unix.Close(fd)
		return -1, M2MInfo{}, wrapLost(fmt.Sprintf("v4l2 m2m %s: query capabilities", path), err)
	}
	info := M2MInfo{Path: path, Driver: cString(c.Driver[:]), Card: cString(c.Card[:])}
	m2m, mplane := m2mCaps(c)
	if !m2m {
		unix.Close(fd)
		return -1, info, fmt.Errorf("v4l2 m2m %s (%s): not a memory-to-memory device: %w", path, info.Card, ErrNoEncoder)
	}
	info.MultiPlanar = mplane
	raw, coded := queueTypes(mplane)
	if info.Raw, err = enumFourCCs(fd, raw); err == nil {
		info.Coded, err = enumFourCCs(fd, coded)
	}
	if err != nil {
		unix.Close(fd)
		return -1, info, wrapLost(fmt.Sprintf("v4l2 m2m %s: list formats", path), err)
	}
	return fd, info, nil
}

// ProbeM2M describes the memory-to-memory device at path.
func ProbeM2M(path string) (M2MInfo, error) {
	fd, info, err := openM2M(path)
	if err != nil {
		return info, err
	}
	unix.Close(fd)
	return info, nil
}

// FindEncoder probes /dev/video* in numeric order for a memory-to-memory
// device that encodes YU12 or NV12 into coded (the Pi 4's bcm2835-codec
// encoder for FormatH264 is /dev/video11). It returns ErrNoEncoder when
// there is none.
func FindEncoder(coded PixelFormat) (M2MInfo, error) {
	paths, err := filepath.Glob("/dev/video*")
	if err != nil {
		return M2MInfo{}, fmt.Errorf("list /dev/video*: %w", err)
	}
	num := func(p string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(p, "/dev/video"))
		if err != nil {
			return 1 << 30
		}
		return n
	}
	sort.Slice(paths, func(i, j int) bool { return num(paths[i]) < num(paths[j]) })
	for _, p := range paths {
		info, err := ProbeM2M(p)
		if err != nil {
			continue
		}
		if _, ok := info.PreferredRaw(); ok && hasFormat(info.Coded, coded) {
			return info, nil
		}
	}
	return M2MInfo{}, fmt.Errorf("%v encoder among %d video devices: %w", coded, len(paths), ErrNoEncoder)
}

// M2M is an open memory-to-memory encoder: raw pictures go into its output
// queue, coded packets come out of its capture queue. It is used from one
// goroutine. Every error names the device; errors that mean the device
// went away wrap ErrDeviceLost.
type M2M struct {
	cfg    M2MConfig
	info   M2MInfo
	fd     int
	mplane bool
	layout rawLayout

	rawType, codedType uint32
	rawBufs, codedBufs [][]byte
	free               []uint32 // raw buffers that we own
	planes             [1]plane // plane array of QBUF/DQBUF; heap, does not move

	ready    []Packet
	on       bool
	draining bool
	drained  bool
}

// OpenM2M opens and configures the encoder at cfg.Device, maps its buffers
// and starts streaming.
func OpenM2M(cfg M2MConfig) (_ *M2M, err error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("v4l2 m2m %s: %w", cfg.Device, err)
	}
	if cfg.RawBuffers == 0 {
		cfg.RawBuffers = 4
	}
	if cfg.CodedBuffers == 0 {
		cfg.CodedBuffers = 4
	}
	fd, info, err := openM2M(cfg.Device)
	if err != nil {
		return nil, err
	}
	m := &M2M{cfg: cfg, info: info, fd: fd, mplane: info.MultiPlanar}
	m.rawType, m.codedType = queueTypes(m.mplane)
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if !info.Has(cfg.Raw, cfg.Coded) {
		return nil, fmt.Errorf("v4l2 m2m %s (%s): does not encode %v into %v (offers %v into %v): %w",
			cfg.Device, info.Card, cfg.Raw, cfg.Coded, info.Raw, info.Coded, ErrFormatUnsupported)
	}
	// The stateful encoder interface: coded format first, then raw.
	if _, _, _, err := m.setFormat(m.codedType, cfg.Coded); err != nil {
		return nil, err
	}
	lines, stride, size, err := m.setFormat(m.rawType, cfg.Raw)
	if err != nil {
		return nil, err
	}
	if m.layout, err = newRawLayout(cfg.Raw, cfg.Width, cfg.Height, lines, stride, size); err != nil {
		return nil, fmt.Errorf("v4l2 m2m %s: %w", cfg.Device, err)
	}
	if lines > cfg.Height {
		// The driver aligned the height: encode only the picture (the
		// selection API takes the single-planar type for both APIs).
		sel := selection{Type: bufTypeVideoOutput, Target: selTgtCrop, Width: uint32(cfg.Width), Height: uint32(cfg.Height)}
		_ = ioctl(m.fd, vidiocSSelection, unsafe.Pointer(&sel))
	}
	if cfg.FPS > 0 {
		p := streamParm{Type: m.rawType}
		p.Capture.TimePerFrame = fpsFract(cfg.FPS) // v4l2_outputparm has the same layout
		_ = ioctl(m.fd, vidiocSParm, unsafe.Pointer(&p))
	}
	for _, c := range cfg.Controls {
		if err := m.SetControl(c.ID, c.Value); err != nil {
			if c.Optional && !errors.Is(err, ErrDeviceLost) {
				continue
			}
			return nil, fmt.Errorf("v4l2 m2m %s: control %s: %w", cfg.Device, c.Name, err)
		}
	}
	if m.rawBufs, err = m.mapBuffers(m.rawType, cfg.RawBuffers); err != nil {
		return nil, err
	}
	for i := range m.rawBufs {
		if len(m.rawBufs[i]) < m.layout.Size {
			return nil, fmt.Errorf("v4l2 m2m %s: raw buffer %d has %d bytes, picture needs %d", cfg.Device, i, len(m.rawBufs[i]), m.layout.Size)
		}
		m.free = append(m.free, uint32(i))
	}
	if m.codedBufs, err = m.mapBuffers(m.codedType, cfg.CodedBuffers); err != nil {
		return nil, err
	}
	for i := range m.codedBufs {
		if err := m.queueCoded(uint32(i)); err != nil {
			return nil, err
		}
	}
	for _, t := range []uint32{m.rawType, m.codedType} {
		tt := int32(t)
		if err := ioctl(m.fd, vidiocStreamOn, unsafe.Pointer(&tt)); err != nil {
			return nil, wrapLost(fmt.Sprintf("v4l2 m2m %s: stream on", cfg.Device), err)
		}
		m.on = true
	}
	return m, nil
}

// Info describes the device.
func (m *M2M) Info() M2MInfo { return m.info }

// setFormat sets pf at the configured size on one queue and returns the
// height the driver set (it may align it up), the stride and the buffer
// size.
func (m *M2M) setFormat(typ uint32, pf PixelFormat) (lines, stride, size int, err error) {
	f := format{Type: typ}
	w, h := uint32(m.cfg.Width), uint32(m.cfg.Height)
	if m.mplane {
		p := f.pixMP()
		p.Width, p.Height, p.PixelFormat, p.Field, p.NumPlanes = w, h, uint32(pf), fieldNone, 1
	} else {
		p := f.pix()
		p.Width, p.Height, p.PixelFormat, p.Field = w, h, uint32(pf), fieldNone
	}
	if err := ioctl(m.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		return 0, 0, 0, wrapLost(fmt.Sprintf("v4l2 m2m %s: set format %v %dx%d", m.cfg.Device, pf, w, h), err)
	}
	var got PixelFormat
	var gw, gh uint32
	if m.mplane {
		p := f.pixMP()
		if p.NumPlanes != 1 {
			return 0, 0, 0, fmt.Errorf("v4l2 m2m %s: format %v has %d planes: %w", m.cfg.Device, pf, p.NumPlanes, ErrFormatUnsupported)
		}
		got, gw, gh = PixelFormat(p.PixelFormat), p.Width, p.Height
		stride, size = int(p.PlaneFmt[0].BytesPerLine), int(p.PlaneFmt[0].SizeImage)
	} else {
		p := f.pix()
		got, gw, gh = PixelFormat(p.PixelFormat), p.Width, p.Height
		stride, size = int(p.BytesPerLine), int(p.SizeImage)
	}
	if got != pf {
		return 0, 0, 0, fmt.Errorf("v4l2 m2m %s: asked for %v, driver set %v: %w", m.cfg.Device, pf, got, ErrFormatUnsupported)
	}
	// Drivers align the size up (vicodec to 8, bcm2835-codec to 16); a
	// width other than asked for, or a smaller height, cannot carry the
	// picture as it is.
	if typ == m.rawType && (gw != w || gh < h || gh > h+64) {
		return 0, 0, 0, fmt.Errorf("v4l2 m2m %s: asked for %dx%d, driver set %dx%d: %w", m.cfg.Device, w, h, gw, gh, ErrFormatUnsupported)
	}
	return int(gh), stride, size, nil
}

// SetControl sets a control (VIDIOC_S_CTRL); a button control such as
// V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME takes any value.
func (m *M2M) SetControl(id uint32, value int32) error {
	c := control{ID: id, Value: value}
	if err := ioctl(m.fd, vidiocSCtrl, unsafe.Pointer(&c)); err != nil {
		return wrapLost(fmt.Sprintf("v4l2 m2m %s: set control %#x = %d", m.cfg.Device, id, value), err)
	}
	return nil
}

func (m *M2M) newBuffer(typ, index uint32) buffer {
	b := buffer{Index: index, Type: typ, Memory: memoryMMAP}
	if m.mplane {
		m.planes = [1]plane{}
		b.Length = 1
		b.setPlanes(&m.planes[0])
	}
	return b
}

func (m *M2M) mapBuffers(typ uint32, count int) ([][]byte, error) {
	rb := requestBuffers{Count: uint32(count), Type: typ, Memory: memoryMMAP}
	if err := ioctl(m.fd, vidiocReqBufs, unsafe.Pointer(&rb)); err != nil {
		return nil, wrapLost(fmt.Sprintf("v4l2 m2m %s: request buffers", m.cfg.Device), err)
	}
	if rb.Count < 1 || rb.Count > 32 {
		return nil, fmt.Errorf("v4l2 m2m %s: request buffers: driver gave %d buffers", m.cfg.Device, rb.Count)
	}
	var out [][]byte
	for i := uint32(0); i < rb.Count; i++ {
		b := m.newBuffer(typ, i)
		if err := ioctl(m.fd, vidiocQueryBuf, unsafe.Pointer(&b)); err != nil {
			return out, wrapLost(fmt.Sprintf("v4l2 m2m %s: query buffer %d", m.cfg.Device, i), err)
		}
		off, n := b.offset(), b.Length
		if m.mplane {
			off, n = m.planes[0].memOffset(), m.planes[0].Length
		}
		if n == 0 || n > 1<<28 {
			return out, fmt.Errorf("v4l2 m2m %s: buffer %d has length %d", m.cfg.Device, i, n)
		}
		mem, err := unix.Mmap(m.fd, int64(off), int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return out, wrapLost(fmt.Sprintf("v4l2 m2m %s: map buffer %d", m.cfg.Device, i), err)
		}
		out = append(out, mem)
		// Kept in the struct at once, so Close unmaps what was mapped.
		if typ == m.rawType {
			m.rawBufs = out
		} else {
			m.codedBufs = out
		}
	}
	return out, nil
}

func (m *M2M) queueCoded(index uint32) error {
	b := m.newBuffer(m.codedType, index)
	if err := ioctl(m.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
		return wrapLost(fmt.Sprintf("v4l2 m2m %s: queue coded buffer %d", m.cfg.Device, index), err)
	}
	return nil
}

// Submit copies img into a free raw buffer and queues it, tagged with seq
// (Packet.Seq of what comes out of it). It waits up to timeout for a free
// buffer, collecting coded packets meanwhile (Receive returns them).
func (m *M2M) Submit(img *image.YCbCr, seq uint64, timeout time.Duration) error {
	if m.draining || m.drained {
		return fmt.Errorf("v4l2 m2m %s: submit: %w", m.cfg.Device, ErrDrained)
	}
	deadline := time.Now().Add(timeout)
	for len(m.free) == 0 {
		wait := time.Until(deadline)
		if wait <= 0 {
			return fmt.Errorf("v4l2 m2m %s: no raw buffer came back within %v: encoder stalled", m.cfg.Device, timeout)
		}
		if err := m.pump(wait); err != nil {
			return err
		}
	}
	idx := m.free[len(m.free)-1]
	if err := m.layout.fill(m.rawBufs[idx], img); err != nil {
		return fmt.Errorf("v4l2 m2m %s: frame %d: %w", m.cfg.Device, seq, err)
	}
	b := m.newBuffer(m.rawType, idx)
	b.Field = fieldNone
	sec, usec := seqTimestamp(seq)
	b.Timestamp = unix.NsecToTimeval(sec*1e9 + usec*1e3)
	if m.mplane {
		m.planes[0].BytesUsed = uint32(m.layout.Size)
		m.planes[0].Length = uint32(len(m.rawBufs[idx]))
	} else {
		b.BytesUsed = uint32(m.layout.Size)
		b.Length = uint32(len(m.rawBufs[idx]))
	}
	if err := ioctl(m.fd, vidiocQBuf, unsafe.Pointer(&b)); err != nil {
		return wrapLost(fmt.Sprintf("v4l2 m2m %s: queue raw buffer %d", m.cfg.Device, idx), err)
	}
	m.free = m.free[:len(m.free)-1]
	return nil
}

// Receive returns the next coded packet, waiting up to timeout; ok is
// false when none came.
func (m *M2M) Receive(timeout time.Duration) (p Packet, ok bool, err error) {
	deadline := time.Now().Add(timeout)
	for len(m.ready) == 0 {
		wait := time.Until(deadline)
		if wait <= 0 || m.drained {
			return Packet{}, false, nil
		}
		if err := m.pump(wait); err != nil {
			return Packet{}, false, err
		}
	}
	p = m.ready[0]
	m.ready = m.ready[1:]
	return p, true, nil
}

// Drain asks the encoder to finish the pictures it holds (V4L2_ENC_CMD_STOP)
// and returns the packets up to the last one, waiting up to timeout.
// Submit fails afterwards.
func (m *M2M) Drain(timeout time.Duration) ([]Packet, error) {
	if !m.draining && !m.drained {
		cmd := encoderCmd{Cmd: encCmdStop}
		if err := ioctl(m.fd, vidiocEncoderCmd, unsafe.Pointer(&cmd)); err != nil {
			return nil, wrapLost(fmt.Sprintf("v4l2 m2m %s: stop command", m.cfg.Device), err)
		}
		m.draining = true
	}
	deadline := time.Now().Add(timeout)
	for !m.drained {
		wait := time.Until(deadline)
		if wait <= 0 {
			return m.takeReady(), fmt.Errorf("v4l2 m2m %s: drain: no last buffer within %v", m.cfg.Device, timeout)
		}
		if err := m.pump(wait); err != nil {
			return m.takeReady(), err
		}
	}
	return m.takeReady(), nil
}

func (m *M2M) takeReady() []Packet {
	out := m.ready
	m.ready = nil
	return out
}

// pump collects finished buffers of both queues, waiting up to timeout
// when none is finished yet.
func (m *M2M) pump(timeout time.Duration) error {
	n, err := m.dequeueAll()
	if err != nil || n > 0 {
		return err
	}
	fds := [1]unix.PollFd{{Fd: int32(m.fd), Events: unix.POLLIN | unix.POLLOUT}}
	r, err := unix.Poll(fds[:], int(timeout/time.Millisecond)+1)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return nil
		}
		return fmt.Errorf("v4l2 m2m %s: poll: %w", m.cfg.Device, err)
	}
	if r == 0 {
		return nil
	}
	n, err = m.dequeueAll()
	if err != nil || n > 0 {
		return err
	}
	if re := fds[0].Revents; re&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
		// Nothing finished and the driver reports an error: the device is
		// gone, or neither queue has work. Ask the device which.
		var c capability
		if err := ioctl(m.fd, vidiocQueryCap, unsafe.Pointer(&c)); err != nil {
			return wrapLost(fmt.Sprintf("v4l2 m2m %s: poll events %#x", m.cfg.Device, re), err)
		}
		if len(m.free) < len(m.rawBufs) {
			return fmt.Errorf("v4l2 m2m %s: poll events %#x with pictures queued: encoder stalled", m.cfg.Device, re)
		}
		time.Sleep(min(timeout, 10*time.Millisecond)) // nothing queued: nothing to wait for
	}
	return nil
}

// dequeueAll takes every finished buffer off both queues without waiting;
// coded buffers become packets and go back to the driver.
func (m *M2M) dequeueAll() (int, error) {
	n := 0
	for len(m.free) < len(m.rawBufs) {
		b := m.newBuffer(m.rawType, 0)
		if err := ioctl(m.fd, vidiocDQBuf, unsafe.Pointer(&b)); err != nil {
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			return n, wrapLost(fmt.Sprintf("v4l2 m2m %s: dequeue raw buffer", m.cfg.Device), err)
		}
		if int(b.Index) >= len(m.rawBufs) {
			return n, fmt.Errorf("v4l2 m2m %s: driver returned raw buffer %d of %d", m.cfg.Device, b.Index, len(m.rawBufs))
		}
		m.free = append(m.free, b.Index)
		n++
	}
	for !m.drained {
		b := m.newBuffer(m.codedType, 0)
		if err := ioctl(m.fd, vidiocDQBuf, unsafe.Pointer(&b)); err != nil {
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if errors.Is(err, unix.EPIPE) && m.draining { // the last buffer was dequeued before
				m.drained = true
				break
			}
			return n, wrapLost(fmt.Sprintf("v4l2 m2m %s: dequeue coded buffer", m.cfg.Device), err)
		}
		if int(b.Index) >= len(m.codedBufs) {
			return n, fmt.Errorf("v4l2 m2m %s: driver returned coded buffer %d of %d", m.cfg.Device, b.Index, len(m.codedBufs))
		}
		n++
		used, off := b.BytesUsed, uint32(0)
		if m.mplane {
			used, off = m.planes[0].BytesUsed, m.planes[0].DataOffset
		}
		sec, nsec := b.Timestamp.Unix()
		p := Packet{
			Data:     append([]byte(nil), frameData(m.codedBufs[b.Index], used, off)...),
			Seq:      timestampSeq(sec, nsec/1000),
			Keyframe: b.Flags&bufFlagKeyframe != 0,
			Last:     b.Flags&bufFlagLast != 0,
		}
		if b.Flags&bufFlagError != 0 {
			p.Data = nil // corrupt: only its flags count
		}
		if len(p.Data) > 0 || p.Last {
			m.ready = append(m.ready, p)
		}
		if p.Last {
			m.drained = true
			break
		}
		if err := m.queueCoded(b.Index); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Close stops streaming and releases the device.
func (m *M2M) Close() error {
	if m.fd < 0 {
		return nil
	}
	if m.on {
		for _, t := range []uint32{m.rawType, m.codedType} {
			tt := int32(t)
			_ = ioctl(m.fd, vidiocStreamOff, unsafe.Pointer(&tt))
		}
		m.on = false
	}
	for _, b := range append(m.rawBufs, m.codedBufs...) {
		_ = unix.Munmap(b)
	}
	m.rawBufs, m.codedBufs = nil, nil
	err := unix.Close(m.fd)
	m.fd = -1
	if err != nil {
		return fmt.Errorf("v4l2 m2m %s: close: %w", m.cfg.Device, err)
	}
	return nil
}
