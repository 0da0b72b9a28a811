//go:build linux && (amd64 || arm64 || arm)

package alsa

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/classcap/classcap/capture/media"
)

// pollInterval bounds how long Run waits in poll before it looks at ctx.
const pollInterval = 50 * time.Millisecond

// device is an open PCM capture device.
type device struct {
	fd     int
	path   string
	params Params
	period int
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// New opens and configures the capture device named by cfg.Device. The
// device stays open (and is held) until Run returns or Close is called.
func New(cfg Config, log *slog.Logger) (*Mic, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("alsa %s: %w", cfg.Device, err)
	}
	n, err := ParseName(cfg.Device)
	if err != nil {
		return nil, err
	}
	addr, err := n.Resolve(cfg.ProcRoot)
	if err != nil {
		return nil, err
	}
	m := &Mic{cfg: cfg, log: log}
	d, err := openDevice(cfg, addr, 'c')
	if err != nil {
		return nil, named(cfg.Device, addr, err)
	}
	m.cnt.opens.Add(1)
	d.params.CardID = cardID(cfg.ProcRoot, addr.Card)
	m.params, m.dev = d.params, d
	// Later opens ask for exactly what was negotiated, resolving the name
	// again (a USB array plugged back in may get another card number).
	m.cfg.Channels, m.cfg.Rate, m.cfg.Format = d.params.Channels, d.params.Rate, d.params.Format
	log.Info("microphone opened", "device", cfg.Device, "path", d.path, "name", d.params.Name,
		"channels", d.params.Channels, "rate", d.params.Rate, "format", d.params.Format.String(),
		"period_frames", d.params.PeriodFrames, "buffer_frames", d.params.BufferFrames, "avail_min", d.params.AvailMin)
	return m, nil
}

// Probe reports what the named device can capture, without configuring it.
func Probe(name string) (Caps, error) {
	cfg := Config{Device: name}.withDefaults()
	n, err := ParseName(name)
	if err != nil {
		return Caps{}, err
	}
	addr, err := n.Resolve(cfg.ProcRoot)
	if err != nil {
		return Caps{}, err
	}
	fd, path, err := openPCM(cfg.DevRoot, addr, 'c')
	if err != nil {
		return Caps{}, named(name, addr, err)
	}
	defer unix.Close(fd)
	_, caps, err := probe(refiner(fd))
	if err != nil {
		return Caps{}, fmt.Errorf("probe %s: %w", path, err)
	}
	return caps, nil
}

func refiner(fd int) refineFunc {
	return func(p *hwParams) error {
		err := ioctl(fd, ioctlHWRefine, unsafe.Pointer(p))
		runtime.KeepAlive(p)
		return err
	}
}

// cardID reads the card's id from /proc/asound/card<N>/id ("" if unknown).
func cardID(procRoot string, card int) string {
	b, err := os.ReadFile(fmt.Sprintf("%s/card%d/id", procRoot, card))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// named prefixes err with the name the user gave when it differs from the
// resolved address that err names.
func named(name string, addr Addr, err error) error {
	if name == addr.String() {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

// openPCM opens the node of addr for stream ('c' capture, 'p' playback)
// non-blocking, asking the control device for the subdevice first when one
// is named.
func openPCM(devRoot string, addr Addr, stream byte) (int, string, error) {
	path := addr.node(devRoot, stream)
	flags := unix.O_RDWR | unix.O_NONBLOCK | unix.O_CLOEXEC
	if addr.Subdevice < 0 {
		fd, err := unix.Open(path, flags, 0)
		if err != nil {
			return -1, path, fmt.Errorf("open %s (%s): %w", addr, path, err)
		}
		return fd, path, nil
	}
	// The preference is kept per control file and matched against the
	// opening thread: hold the thread until the PCM is open.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctlPath := fmt.Sprintf("%s/controlC%d", devRoot, addr.Card)
	ctl, err := unix.Open(ctlPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, path, fmt.Errorf("open %s (%s): %w", addr, ctlPath, err)
	}
	defer unix.Close(ctl)
	sub := int32(addr.Subdevice)
	if err := ioctl(ctl, ioctlCtlPreferSubdevice, unsafe.Pointer(&sub)); err != nil {
		return -1, path, fmt.Errorf("prefer subdevice %s: %w", addr, err)
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return -1, path, fmt.Errorf("open %s (%s): %w", addr, path, err)
	}
	return fd, path, nil
}

// openDevice opens addr for stream ('c' or 'p') and configures it from cfg
// (hardware and software parameters), leaving it prepared.
func openDevice(cfg Config, addr Addr, stream byte) (d *device, err error) {
	fd, path, err := openPCM(cfg.DevRoot, addr, stream)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	d = &device{fd: fd, path: path}
	var ver int32
	if err := ioctl(fd, ioctlPVersion, unsafe.Pointer(&ver)); err != nil {
		return nil, fmt.Errorf("pcm version %s: %w", path, err)
	}
	if ver>>16 != 2 {
		return nil, fmt.Errorf("pcm version %s: protocol %d.%d.%d, want 2.x", path, ver>>16, ver>>8&0xff, ver&0xff)
	}
	var info pcmInfo
	if err := ioctl(fd, ioctlInfo, unsafe.Pointer(&info)); err != nil {
		return nil, fmt.Errorf("pcm info %s: %w", path, err)
	}
	if addr.Subdevice >= 0 && int(info.Subdevice) != addr.Subdevice {
		return nil, fmt.Errorf("open %s: got subdevice %d (the one asked for is busy)", addr, info.Subdevice)
	}
	p, format, _, err := choose(cfg, refiner(fd))
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", path, err)
	}
	if err := ioctl(fd, ioctlHWParams, unsafe.Pointer(p)); err != nil {
		return nil, fmt.Errorf("hw params %s: %w", path, err)
	}
	d.params = Params{
		Addr:         Addr{Card: int(info.Card), Device: int(info.Device), Subdevice: int(info.Subdevice)},
		Name:         cString(info.Name[:]),
		Channels:     int(p.interval(paramChannels).value()),
		Rate:         int(p.interval(paramRate).value()),
		Format:       format,
		PeriodFrames: int(p.interval(paramPeriodSize).value()),
		BufferFrames: int(p.interval(paramBufferSize).value()),
		Protocol:     uint32(ver),
	}
	if d.params.PeriodFrames <= 0 || d.params.BufferFrames < d.params.PeriodFrames {
		return nil, fmt.Errorf("hw params %s: period %d frames, buffer %d frames", path, d.params.PeriodFrames, d.params.BufferFrames)
	}
	d.params.AvailMin = d.params.PeriodFrames
	if stream == 'c' {
		d.params.AvailMin = availMin(blockFrames(d.params.Rate, cfg.Block), d.params.PeriodFrames, d.params.BufferFrames)
	}
	sw := swParams{
		AvailMin:       uint(d.params.AvailMin),
		StartThreshold: uint(d.params.BufferFrames), // capture is started explicitly
		StopThreshold:  uint(d.params.BufferFrames), // a full buffer is an overrun
	}
	if stream == 'p' {
		// Playback starts by itself once two periods are queued and
		// underruns when the buffer runs empty.
		sw.StartThreshold = uint(min(2*d.params.PeriodFrames, d.params.BufferFrames))
	}
	if err := ioctl(fd, ioctlSWParams, unsafe.Pointer(&sw)); err != nil {
		return nil, fmt.Errorf("sw params %s: %w", path, err)
	}
	if err := ioctl(fd, ioctlPrepare, nil); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	return d, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (d *device) close() error {
	_ = ioctl(d.fd, ioctlDrop, nil)
	_ = ioctl(d.fd, ioctlHWFree, nil)
	if err := unix.Close(d.fd); err != nil {
		return fmt.Errorf("close %s: %w", d.path, err)
	}
	return nil
}

// isLost reports whether err means the device is gone.
func isLost(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EBADFD) || errors.Is(err, unix.EIO) ||
		errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ESHUTDOWN)
}

// Run captures until ctx ends (returning ctx.Err()) or the device fails.
// Blocks of Config.Block are handed to sink as float32 PCM; their Samples
// are reused once sink returns. The PTS of a block is the time Run started
// the device (measured against the epoch) plus the frames read since; after
// an overrun the device is restarted and the PTS re-anchored to the clock,
// so the frames lost show as a gap. Device loss returns an error wrapping
// ErrDeviceLost and naming the device; Run may then be called again.
func (m *Mic) Run(ctx context.Context, sink func(media.PCM)) error {
	if !m.running.CompareAndSwap(false, true) {
		return fmt.Errorf("run %s: %w", m.cfg.Device, ErrRunning)
	}
	defer m.running.Store(false)
	epoch := m.takeEpoch()

	m.mu.Lock()
	d := m.dev
	m.dev = nil
	m.mu.Unlock()
	if d == nil {
		n, err := ParseName(m.cfg.Device)
		if err != nil {
			return err
		}
		addr, err := n.Resolve(m.cfg.ProcRoot)
		if err != nil {
			return err
		}
		if d, err = openDevice(m.cfg, addr, 'c'); err != nil {
			return named(m.cfg.Device, addr, err)
		}
		m.cnt.opens.Add(1)
		if got := d.params; got.Channels != m.params.Channels || got.Rate != m.params.Rate || got.Format != m.params.Format {
			d.close()
			return fmt.Errorf("reopen %s: got %d channels %d Hz %v, was %d channels %d Hz %v", m.cfg.Device,
				got.Channels, got.Rate, got.Format, m.params.Channels, m.params.Rate, m.params.Format)
		}
		m.log.Info("microphone reopened", "device", m.cfg.Device, "path", d.path)
	}
	defer d.close()
	return m.capture(ctx, d, epoch, sink)
}

// pcmIO is what the capture loop needs from a prepared device.
type pcmIO interface {
	start() error
	prepare() error
	// readi reads up to len(buf)/frameBytes frames without blocking
	// (EAGAIN when none are ready).
	readi(buf []byte, frames int) (int, error)
	// wait blocks until frames are ready, an error is pending or the
	// timeout passes (ready false).
	wait(timeout time.Duration) (ready bool, err error)
}

func (d *device) start() error   { return ioctl(d.fd, ioctlStart, nil) }
func (d *device) prepare() error { return ioctl(d.fd, ioctlPrepare, nil) }

func (d *device) readi(buf []byte, frames int) (int, error) {
	x := xferi{Buf: unsafe.Pointer(&buf[0]), Frames: uint(frames)}
	err := ioctl(d.fd, ioctlReadIFrames, unsafe.Pointer(&x))
	runtime.KeepAlive(buf)
	if err != nil {
		return 0, err
	}
	return x.Result, nil // READI stores the frames read in result
}

func (d *device) wait(timeout time.Duration) (bool, error) {
	pfd := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, int(timeout/time.Millisecond))
	if err != nil && !errors.Is(err, unix.EINTR) {
		return false, err
	}
	return n > 0, nil
}

func (m *Mic) capture(ctx context.Context, d *device, epoch time.Time, sink func(media.PCM)) error {
	return m.loop(ctx, d, d.params, fmt.Sprintf("%s (%s)", m.cfg.Device, d.path), epoch, sink)
}

// loop reads blocks from io until ctx ends or the device fails.
func (m *Mic) loop(ctx context.Context, io pcmIO, params Params, name string, epoch time.Time, sink func(media.PCM)) error {
	ch, rate, format := params.Channels, params.Rate, params.Format
	blockDur := cmp.Or(m.cfg.Block, BlockDuration)
	block := blockFrames(rate, blockDur)
	// Poll wakes the reader once a block is ready; the timeout only
	// bounds how late a cancelled ctx is seen.
	waitFor := max(pollInterval, 2*blockDur)
	frameBytes := ch * format.bytes()
	raw := make([]byte, block*frameBytes)
	out := make([]float32, block*ch)

	var (
		anchor time.Duration // PTS of frame 0 since the last start
		n      int64         // frames delivered since the last start
		filled int           // frames in raw
	)
	start := func() error {
		if err := io.start(); err != nil {
			if isLost(err) {
				return fmt.Errorf("start %s: %w: %w", name, ErrDeviceLost, err)
			}
			return fmt.Errorf("start %s: %w", name, err)
		}
		m.mu.Lock()
		anchor = max(time.Since(epoch), m.last)
		m.mu.Unlock()
		n, filled = 0, 0
		return nil
	}
	deliver := func() {
		if filled == 0 {
			return
		}
		k := convert(out, raw[:filled*frameBytes], format)
		pts := anchor + media.FramesToDur(n, rate)
		sink(media.PCM{Samples: out[:k], Channels: ch, Rate: rate, PTS: pts})
		n += int64(filled)
		m.cnt.frames.Add(uint64(filled))
		m.cnt.blocks.Add(1)
		end := anchor + media.FramesToDur(n, rate)
		m.cnt.lag.Store(int64(time.Since(epoch) - end))
		m.mu.Lock()
		m.last = end
		m.mu.Unlock()
		filled = 0
	}
	if err := start(); err != nil {
		return err
	}
	idle := time.Duration(0)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		got, err := io.readi(raw[filled*frameBytes:], block-filled)
		switch {
		case err == nil:
			idle = 0
			filled += min(max(got, 0), block-filled)
			if filled == block {
				deliver()
			}
		case errors.Is(err, unix.EAGAIN):
			ready, err := io.wait(waitFor)
			if err != nil {
				return fmt.Errorf("poll %s: %w", name, err)
			}
			if !ready {
				idle += waitFor
				if idle >= StallTimeout {
					return fmt.Errorf("read %s: no frames for %v: %w", name, idle, ErrStalled)
				}
			}
		case errors.Is(err, unix.EPIPE), errors.Is(err, unix.ESTRPIPE):
			m.cnt.xruns.Add(1)
			deliver() // what was read before the overrun, at its true time
			m.log.Warn("microphone overrun: frames lost", "device", name, "xruns", m.cnt.xruns.Load())
			if err := io.prepare(); err != nil {
				if isLost(err) {
					return fmt.Errorf("prepare %s: %w: %w", name, ErrDeviceLost, err)
				}
				return fmt.Errorf("prepare %s after overrun: %w", name, err)
			}
			if err := start(); err != nil {
				return err
			}
		case isLost(err):
			return fmt.Errorf("read %s: %w: %w", name, ErrDeviceLost, err)
		default:
			return fmt.Errorf("read %s: %w", name, err)
		}
	}
}
