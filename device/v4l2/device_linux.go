package v4l2

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl issues one V4L2 request, retrying on EINTR.
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

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// lost reports whether err means the device went away.
func lost(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EIO) ||
		errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ESHUTDOWN)
}

// wrapLost adds ErrDeviceLost to errors that mean the device went away.
func wrapLost(op string, err error) error {
	if lost(err) {
		return fmt.Errorf("%s: %w: %w", op, ErrDeviceLost, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// openDevice opens path and checks that it is a streaming capture device;
// it returns the buffer type to use.
func openDevice(path string) (fd int, cap capability, bufType uint32, err error) {
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, cap, 0, wrapLost(fmt.Sprintf("v4l2 open %s", path), err)
	}
	if err := ioctl(fd, vidiocQueryCap, unsafe.Pointer(&cap)); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return -1, cap, 0, fmt.Errorf("v4l2 %s: query capabilities: %w (%w)", path, ErrNotCapture, err)
		}
		return -1, cap, 0, wrapLost(fmt.Sprintf("v4l2 %s: query capabilities", path), err)
	}
	bufType, err = captureType(cap)
	if err != nil {
		unix.Close(fd)
		return -1, cap, 0, fmt.Errorf("v4l2 %s (%s): %w", path, cString(cap.Card[:]), err)
	}
	return fd, cap, bufType, nil
}

// captureType picks the buffer type from the capabilities: single-planar
// when the device has it, multi-planar otherwise.
func captureType(c capability) (uint32, error) {
	caps := c.Capabilities
	if caps&capDeviceCaps != 0 {
		caps = c.DeviceCaps
	}
	if caps&(capVideoM2M|capVideoM2MMPlane) != 0 {
		return 0, fmt.Errorf("memory-to-memory device: %w", ErrNotCapture)
	}
	if caps&capStreaming == 0 {
		return 0, fmt.Errorf("no streaming I/O: %w", ErrNotCapture)
	}
	switch {
	case caps&capVideoCapture != 0:
		return bufTypeVideoCapture, nil
	case caps&capVideoCaptureMPlane != 0:
		return bufTypeVideoCaptureMPlane, nil
	}
	return 0, fmt.Errorf("capabilities %#x: %w", caps, ErrNotCapture)
}

// Probe opens the capture device at path and lists what it offers.
func Probe(path string) (DeviceInfo, error) {
	fd, cap, bufType, err := openDevice(path)
	if err != nil {
		return DeviceInfo{}, err
	}
	defer unix.Close(fd)
	info := DeviceInfo{
		Path:        path,
		Driver:      cString(cap.Driver[:]),
		Card:        cString(cap.Card[:]),
		BusInfo:     cString(cap.BusInfo[:]),
		MultiPlanar: bufType == bufTypeVideoCaptureMPlane,
	}
	info.Formats, err = enumFormats(fd, bufType)
	if err != nil {
		return info, wrapLost(fmt.Sprintf("v4l2 %s: list formats", path), err)
	}
	return info, nil
}

// maxEnum bounds every enumeration, against drivers that never say EINVAL.
const maxEnum = 256

// eachFormat calls f with every format the queue bufType offers.
func eachFormat(fd int, bufType uint32, f func(fmtDesc) error) error {
	for i := uint32(0); i < maxEnum; i++ {
		d := fmtDesc{Index: i, Type: bufType}
		if err := ioctl(fd, vidiocEnumFmt, unsafe.Pointer(&d)); err != nil {
			if errors.Is(err, unix.EINVAL) {
				return nil
			}
			return err
		}
		if err := f(d); err != nil {
			return err
		}
	}
	return nil
}

func enumFormats(fd int, bufType uint32) ([]FormatInfo, error) {
	var out []FormatInfo
	err := eachFormat(fd, bufType, func(d fmtDesc) error {
		f := FormatInfo{
			Format:      PixelFormat(d.PixelFormat),
			Description: cString(d.Description[:]),
			Compressed:  d.Flags&fmtFlagCompressed != 0,
		}
		if err := enumSizes(fd, &f); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

func enumSizes(fd int, f *FormatInfo) error {
	for i := uint32(0); i < maxEnum; i++ {
		s := frmSizeEnum{Index: i, PixelFormat: uint32(f.Format)}
		if err := ioctl(fd, vidiocEnumFrameSizes, unsafe.Pointer(&s)); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
				return nil
			}
			return err
		}
		if s.Type != frmsizeTypeDiscrete {
			u := s.Union
			f.Range = &SizeRange{MinWidth: int(u[0]), MaxWidth: int(u[1]), StepWidth: int(u[2]),
				MinHeight: int(u[3]), MaxHeight: int(u[4]), StepHeight: int(u[5])}
			return nil
		}
		fs := FrameSize{Width: int(s.Union[0]), Height: int(s.Union[1])}
		var err error
		if fs.FPS, err = enumRates(fd, f.Format, s.Union[0], s.Union[1]); err != nil {
			return err
		}
		f.Sizes = append(f.Sizes, fs)
	}
	return nil
}

func enumRates(fd int, pf PixelFormat, w, h uint32) ([]float64, error) {
	var out []float64
	for i := uint32(0); i < maxEnum; i++ {
		e := frmIvalEnum{Index: i, PixelFormat: uint32(pf), Width: w, Height: h}
		if err := ioctl(fd, vidiocEnumFrameIntervals, unsafe.Pointer(&e)); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) {
				return out, nil
			}
			return out, err
		}
		if e.Type != frmivalTypeDiscrete {
			return nil, nil // a range: any rate can be asked for
		}
		if iv := e.Union[0]; iv.Numerator > 0 && iv.Denominator > 0 {
			out = append(out, float64(iv.Denominator)/float64(iv.Numerator))
		}
	}
	return out, nil
}

// List probes /dev/video* in numeric order and returns the capture devices.
// Nodes that are not capture devices (metadata nodes, codecs) are skipped;
// other failures (permissions, a device going away) are joined into the
// error, next to the devices that were found.
func List() ([]DeviceInfo, error) {
	paths, err := filepath.Glob("/dev/video*")
	if err != nil {
		return nil, fmt.Errorf("list /dev/video*: %w", err)
	}
	num := func(p string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(p, "/dev/video"))
		if err != nil {
			return 1 << 30
		}
		return n
	}
	sort.Slice(paths, func(i, j int) bool { return num(paths[i]) < num(paths[j]) })
	var out []DeviceInfo
	var errs []error
	for _, p := range paths {
		info, err := Probe(p)
		switch {
		case err == nil:
			out = append(out, info)
		case !errors.Is(err, ErrNotCapture):
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}
