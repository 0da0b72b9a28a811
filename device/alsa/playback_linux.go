//go:build linux && (amd64 || arm64 || arm)

package alsa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/classcap/classcap/capture/media"
)

// Playback writes PCM to an ALSA playback device. It exists to feed the
// other end of a loopback card (snd-aloop: frames written to
// hw:Loopback,0,N come out of hw:Loopback,1,N) so that tests and hardware
// simulations can drive a Mic; on snd-aloop the capture side must then use
// the playback side's format, rate and channels. Methods must not be called
// concurrently, except Underruns.
type Playback struct {
	name      string
	d         *device
	raw       []byte
	underruns atomic.Uint64
}

// NewPlayback opens and configures the playback device named by
// cfg.Device (Epoch is unused). The stream starts once two periods are
// written.
func NewPlayback(cfg Config, log *slog.Logger) (*Playback, error) {
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
	d, err := openDevice(cfg, addr, 'p')
	if err != nil {
		return nil, named(cfg.Device, addr, err)
	}
	d.params.CardID = cardID(cfg.ProcRoot, addr.Card)
	log.Info("playback opened", "device", cfg.Device, "path", d.path, "channels", d.params.Channels,
		"rate", d.params.Rate, "format", d.params.Format.String())
	return &Playback{name: fmt.Sprintf("%s (%s)", cfg.Device, d.path), d: d}, nil
}

// Params returns the negotiated configuration.
func (p *Playback) Params() Params { return p.d.params }

// Underruns counts the times the device ran dry and was restarted.
func (p *Playback) Underruns() uint64 { return p.underruns.Load() }

// Write queues all frames of pcm, blocking while the device buffer is full.
// pcm must have the device's channel count; its rate and PTS are not
// looked at. Samples are clamped to [-1, 1].
func (p *Playback) Write(ctx context.Context, pcm media.PCM) error {
	if p.d == nil {
		return fmt.Errorf("write %s: closed", p.name)
	}
	ch, format := p.d.params.Channels, p.d.params.Format
	if pcm.Channels != ch {
		return fmt.Errorf("write %s: %d channels, device has %d", p.name, pcm.Channels, ch)
	}
	frames := pcm.Frames()
	if need := frames * ch * format.bytes(); cap(p.raw) < need {
		p.raw = make([]byte, need)
	}
	raw := p.raw[:frames*ch*format.bytes()]
	encode(raw, pcm.Samples[:frames*ch], format)
	fb := ch * format.bytes()
	pfd := []unix.PollFd{{Fd: int32(p.d.fd), Events: unix.POLLOUT}}
	for done := 0; done < frames; {
		if err := ctx.Err(); err != nil {
			return err
		}
		x := xferi{Buf: unsafe.Pointer(&raw[done*fb]), Frames: uint(frames - done)}
		err := ioctl(p.d.fd, ioctlWriteIFrames, unsafe.Pointer(&x))
		runtime.KeepAlive(raw)
		switch {
		case err == nil:
			done += x.Result
		case errors.Is(err, unix.EAGAIN):
			if _, err := unix.Poll(pfd, int(pollInterval/time.Millisecond)); err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("poll %s: %w", p.name, err)
			}
		case errors.Is(err, unix.EPIPE), errors.Is(err, unix.ESTRPIPE):
			p.underruns.Add(1)
			if err := ioctl(p.d.fd, ioctlPrepare, nil); err != nil {
				return fmt.Errorf("prepare %s after underrun: %w", p.name, err)
			}
		case isLost(err):
			return fmt.Errorf("write %s: %w: %w", p.name, ErrDeviceLost, err)
		default:
			return fmt.Errorf("write %s: %w", p.name, err)
		}
	}
	return nil
}

// Close stops the stream (what is queued is dropped) and closes the device.
func (p *Playback) Close() error {
	if p.d == nil {
		return nil
	}
	d := p.d
	p.d = nil
	return d.close()
}
