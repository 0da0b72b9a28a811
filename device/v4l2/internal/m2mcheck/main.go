// Command m2mcheck drives the kernel's vicodec encoder through package
// v4l2's memory-to-memory code, inside the hwsim VM (see m2m_vm_test.go):
// finding the encoder, format negotiation, buffers, streaming N frames
// with their sequence numbers and key frames, a keyframe request, drain,
// and the errors after the device is removed. It prints "m2mcheck: ok"
// when every check passed.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"time"

	"github.com/classcap/classcap/device/v4l2"
)

const (
	cidGOPSize    = 0x009909cb // V4L2_CID_MPEG_VIDEO_GOP_SIZE
	fwhtIFrame    = 1 << 10    // V4L2_FWHT_FL_I_FRAME
	fwhtMagic1    = 0x4f4f4f4f
	fwhtHeaderLen = 44
	timeout       = 3 * time.Second
)

func main() {
	mplane := flag.Bool("mplane", true, "expect the multi-planar API (vicodec multiplanar=1)")
	frames := flag.Int("frames", 12, "frames to encode")
	gop := flag.Int("gop", 4, "GOP size to set")
	vanish := flag.Bool("vanish", false, "then unbind the driver and check the errors")
	flag.Parse()
	if err := run(*mplane, *frames, *gop, *vanish); err != nil {
		fmt.Println("m2mcheck: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("m2mcheck: ok")
}

// picture is a gradient moved by i pixels: consecutive frames differ a
// little, as a camera's do, so the encoder codes them as P-frames.
func picture(w, h, i int) *image.YCbCr {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Y[y*img.YStride+x] = uint8((x + y + 2*i) & 0xff)
		}
	}
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			img.Cb[y*img.CStride+x] = uint8(64 + (x+i)&0x7f)
			img.Cr[y*img.CStride+x] = uint8(192 - (y+i)&0x7f)
		}
	}
	return img
}

// header checks a FWHT frame header and returns whether it is an I-frame.
func header(p v4l2.Packet, w, h int) (bool, error) {
	d := p.Data
	if len(d) < fwhtHeaderLen {
		return false, fmt.Errorf("packet of %d bytes is shorter than a FWHT header", len(d))
	}
	if m := binary.LittleEndian.Uint32(d[0:]); m != fwhtMagic1 {
		return false, fmt.Errorf("magic %#x", m)
	}
	if gw, gh := binary.BigEndian.Uint32(d[12:]), binary.BigEndian.Uint32(d[16:]); int(gw) != w || int(gh) != h {
		return false, fmt.Errorf("header says %dx%d, want %dx%d", gw, gh, w, h)
	}
	return binary.BigEndian.Uint32(d[20:])&fwhtIFrame != 0, nil
}

func run(mplane bool, frames, gop int, vanish bool) error {
	info, err := v4l2.FindEncoder(v4l2.FormatFWHT)
	if err != nil {
		return err
	}
	fmt.Printf("m2mcheck: found %s driver=%s mplane=%v raw=%v coded=%v\n", info.Path, info.Driver, info.MultiPlanar, info.Raw, info.Coded)
	if info.Driver != "vicodec" || info.MultiPlanar != mplane {
		return fmt.Errorf("found %s (%s, multi-planar %v), want vicodec with multi-planar %v", info.Path, info.Driver, info.MultiPlanar, mplane)
	}
	if _, err := v4l2.FindEncoder(v4l2.FormatH264); !errors.Is(err, v4l2.ErrNoEncoder) {
		return fmt.Errorf("FindEncoder(H264) = %v, want ErrNoEncoder", err)
	}

	for _, raw := range []v4l2.PixelFormat{v4l2.FormatYU12, v4l2.FormatNV12} {
		if err := session(info.Path, raw, 640, 360, frames, gop); err != nil {
			return fmt.Errorf("%v: %w", raw, err)
		}
	}
	// A size the driver changes (vicodec's smallest is 640x360) is
	// refused, not mangled.
	if _, err := v4l2.OpenM2M(v4l2.M2MConfig{Device: info.Path, Width: 320, Height: 180, Raw: v4l2.FormatYU12, Coded: v4l2.FormatFWHT}); !errors.Is(err, v4l2.ErrFormatUnsupported) {
		return fmt.Errorf("open with 320x180: %v, want ErrFormatUnsupported", err)
	} else {
		fmt.Println("m2mcheck: bad size refused:", err)
	}
	if vanish {
		return removal(info.Path)
	}
	return nil
}

func session(dev string, raw v4l2.PixelFormat, w, h, frames, gop int) error {
	m, err := v4l2.OpenM2M(v4l2.M2MConfig{Device: dev, Width: w, Height: h, Raw: raw, Coded: v4l2.FormatFWHT, FPS: 30,
		Controls: []v4l2.M2MControl{{Name: "gop size", ID: cidGOPSize, Value: int32(gop)}}})
	if err != nil {
		return err
	}
	defer m.Close()
	const base = 1_999_990 // sequence numbers cross a second of timestamp
	var iframes, pframes int
	for i := 0; i < frames; i++ {
		if err := m.Submit(picture(w, h, i), uint64(base+i), timeout); err != nil {
			return err
		}
		p, ok, err := m.Receive(timeout)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("frame %d: no packet within %v", i, timeout)
		}
		if p.Seq != uint64(base+i) {
			return fmt.Errorf("frame %d: packet carries seq %d, want %d", i, p.Seq, base+i)
		}
		intra, err := header(p, w, h)
		if err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		if i%gop == 0 && !intra {
			return fmt.Errorf("frame %d starts a GOP of %d but is not an I-frame", i, gop)
		}
		if intra {
			iframes++
		} else {
			pframes++
		}
	}
	if pframes == 0 {
		return fmt.Errorf("all %d frames are I-frames: the GOP control had no effect", frames)
	}
	// vicodec has no keyframe request: the error names the control.
	if err := m.SetControl(v4l2.CIDForceKeyFrame, 0); err == nil {
		return errors.New("force keyframe accepted by vicodec, which has no such control")
	} else {
		fmt.Println("m2mcheck: force keyframe unsupported:", err)
	}
	// Drain: one more frame in flight, then the last buffer.
	if err := m.Submit(picture(w, h, frames), uint64(base+frames), timeout); err != nil {
		return err
	}
	rest, err := m.Drain(timeout)
	if err != nil {
		return err
	}
	if len(rest) == 0 || !rest[len(rest)-1].Last {
		return fmt.Errorf("drain returned %d packets without the last one", len(rest))
	}
	got := 0
	for _, p := range rest {
		if len(p.Data) > 0 {
			if p.Seq != uint64(base+frames) {
				return fmt.Errorf("drained packet carries seq %d, want %d", p.Seq, base+frames)
			}
			got++
		}
	}
	if got != 1 {
		return fmt.Errorf("drain gave %d packets with data, want the 1 in flight", got)
	}
	if err := m.Submit(picture(w, h, 0), 0, timeout); !errors.Is(err, v4l2.ErrDrained) {
		return fmt.Errorf("submit after drain: %v, want ErrDrained", err)
	}
	fmt.Printf("m2mcheck: %v %dx%d: %d frames (%d I, %d P) and 1 drained\n", raw, w, h, frames, iframes, pframes)
	return m.Close()
}

// removal unbinds vicodec from its platform device while an encoder is
// open: every call must fail with ErrDeviceLost, and nothing is found.
func removal(dev string) error {
	m, err := v4l2.OpenM2M(v4l2.M2MConfig{Device: dev, Width: 640, Height: 360, Raw: v4l2.FormatYU12, Coded: v4l2.FormatFWHT})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Submit(picture(640, 360, 0), 1, timeout); err != nil {
		return err
	}
	if _, ok, err := m.Receive(timeout); err != nil || !ok {
		return fmt.Errorf("before removal: ok=%v err=%v", ok, err)
	}
	devs, _ := filepath.Glob("/sys/bus/platform/drivers/vicodec/vicodec*")
	if len(devs) != 1 {
		return fmt.Errorf("vicodec platform devices: %v", devs)
	}
	if err := os.WriteFile("/sys/bus/platform/drivers/vicodec/unbind", []byte(filepath.Base(devs[0])), 0); err != nil {
		return fmt.Errorf("unbind: %w", err)
	}
	err = m.Submit(picture(640, 360, 1), 2, timeout)
	if err == nil {
		_, _, err = m.Receive(timeout)
	}
	if !errors.Is(err, v4l2.ErrDeviceLost) {
		return fmt.Errorf("after removal: %v, want ErrDeviceLost", err)
	}
	fmt.Println("m2mcheck: after removal:", err)
	if _, err := m.Drain(timeout); !errors.Is(err, v4l2.ErrDeviceLost) {
		return fmt.Errorf("drain after removal: %v, want ErrDeviceLost", err)
	}
	if err := m.Close(); err != nil {
		fmt.Println("m2mcheck: close after removal:", err)
	}
	if _, err := v4l2.FindEncoder(v4l2.FormatFWHT); !errors.Is(err, v4l2.ErrNoEncoder) {
		return fmt.Errorf("FindEncoder after removal: %v, want ErrNoEncoder", err)
	}
	return nil
}
