package v4l2

import "unsafe"

// Kernel ABI of <linux/videodev2.h>. The layouts that differ between 64-bit
// and 32-bit targets (v4l2_format, v4l2_buffer, v4l2_plane) are in
// types_64_linux.go and types_32_linux.go; sizes are asserted at compile
// time below and in those files (checked against the C headers for amd64,
// arm64 and armv7).

const (
	bufTypeVideoCapture       = 1
	bufTypeVideoCaptureMPlane = 9
	memoryMMAP                = 1
	fieldAny                  = 0

	capVideoCapture       = 0x00000001
	capVideoCaptureMPlane = 0x00001000
	capVideoM2MMPlane     = 0x00004000
	capVideoM2M           = 0x00008000
	capStreaming          = 0x04000000
	capDeviceCaps         = 0x80000000

	fmtFlagCompressed = 0x0001

	bufFlagError              = 0x00000040
	bufFlagTimestampMask      = 0x0000e000
	bufFlagTimestampMonotonic = 0x00002000

	frmsizeTypeDiscrete = 1
	frmivalTypeDiscrete = 1

	captureCapTimePerFrame = 0x1000
)

// ioctl request numbers (asm-generic _IOC: dir<<30 | size<<16 | type<<8 | nr).
const (
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'V'<<8 | nr }

var (
	vidiocQueryCap           = ioc(iocRead, 0, unsafe.Sizeof(capability{}))
	vidiocEnumFmt            = ioc(iocRead|iocWrite, 2, unsafe.Sizeof(fmtDesc{}))
	vidiocGFmt               = ioc(iocRead|iocWrite, 4, unsafe.Sizeof(format{}))
	vidiocSFmt               = ioc(iocRead|iocWrite, 5, unsafe.Sizeof(format{}))
	vidiocReqBufs            = ioc(iocRead|iocWrite, 8, unsafe.Sizeof(requestBuffers{}))
	vidiocQueryBuf           = ioc(iocRead|iocWrite, 9, unsafe.Sizeof(buffer{}))
	vidiocQBuf               = ioc(iocRead|iocWrite, 15, unsafe.Sizeof(buffer{}))
	vidiocDQBuf              = ioc(iocRead|iocWrite, 17, unsafe.Sizeof(buffer{}))
	vidiocStreamOn           = ioc(iocWrite, 18, unsafe.Sizeof(int32(0)))
	vidiocStreamOff          = ioc(iocWrite, 19, unsafe.Sizeof(int32(0)))
	vidiocGParm              = ioc(iocRead|iocWrite, 21, unsafe.Sizeof(streamParm{}))
	vidiocSParm              = ioc(iocRead|iocWrite, 22, unsafe.Sizeof(streamParm{}))
	vidiocEnumFrameSizes     = ioc(iocRead|iocWrite, 74, unsafe.Sizeof(frmSizeEnum{}))
	vidiocEnumFrameIntervals = ioc(iocRead|iocWrite, 75, unsafe.Sizeof(frmIvalEnum{}))
)

// struct v4l2_capability
type capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

// struct v4l2_fmtdesc
type fmtDesc struct {
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]byte
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

// struct v4l2_frmsizeenum; Union holds discrete {width, height} or
// stepwise {min_width, max_width, step_width, min_height, max_height,
// step_height}.
type frmSizeEnum struct {
	Index       uint32
	PixelFormat uint32
	Type        uint32
	Union       [6]uint32
	Reserved    [2]uint32
}

// struct v4l2_fract
type fract struct {
	Numerator, Denominator uint32
}

// struct v4l2_frmivalenum; Union holds discrete (a fract) or stepwise
// {min, max, step}.
type frmIvalEnum struct {
	Index       uint32
	PixelFormat uint32
	Width       uint32
	Height      uint32
	Type        uint32
	Union       [3]fract
	Reserved    [2]uint32
}

// struct v4l2_pix_format
type pixFormat struct {
	Width        uint32
	Height       uint32
	PixelFormat  uint32
	Field        uint32
	BytesPerLine uint32
	SizeImage    uint32
	Colorspace   uint32
	Priv         uint32
	Flags        uint32
	YcbcrEnc     uint32
	Quantization uint32
	XferFunc     uint32
}

// struct v4l2_plane_pix_format
type planePixFormat struct {
	SizeImage    uint32
	BytesPerLine uint32
	Reserved     [6]uint16
}

// struct v4l2_pix_format_mplane (packed in C; this layout has no padding)
type pixFormatMPlane struct {
	Width        uint32
	Height       uint32
	PixelFormat  uint32
	Field        uint32
	Colorspace   uint32
	PlaneFmt     [8]planePixFormat
	NumPlanes    uint8
	Flags        uint8
	YcbcrEnc     uint8
	Quantization uint8
	XferFunc     uint8
	Reserved     [7]uint8
}

// struct v4l2_requestbuffers
type requestBuffers struct {
	Count        uint32
	Type         uint32
	Memory       uint32
	Capabilities uint32
	Flags        uint8
	Reserved     [3]uint8
}

// struct v4l2_timecode
type timecode struct {
	Type     uint32
	Flags    uint32
	Frames   uint8
	Seconds  uint8
	Minutes  uint8
	Hours    uint8
	UserBits [4]uint8
}

// struct v4l2_captureparm
type captureParm struct {
	Capability   uint32
	CaptureMode  uint32
	TimePerFrame fract
	ExtendedMode uint32
	ReadBuffers  uint32
	Reserved     [4]uint32
}

// struct v4l2_streamparm: type and a 200-byte union (capture is used).
type streamParm struct {
	Type    uint32
	Capture captureParm
	_       [200 - 40]byte
}

// Sizes that are the same on every target.
const (
	_ uintptr = unsafe.Sizeof(capability{}) - 104
	_ uintptr = 104 - unsafe.Sizeof(capability{})
	_ uintptr = unsafe.Sizeof(fmtDesc{}) - 64
	_ uintptr = 64 - unsafe.Sizeof(fmtDesc{})
	_ uintptr = unsafe.Sizeof(frmSizeEnum{}) - 44
	_ uintptr = 44 - unsafe.Sizeof(frmSizeEnum{})
	_ uintptr = unsafe.Sizeof(frmIvalEnum{}) - 52
	_ uintptr = 52 - unsafe.Sizeof(frmIvalEnum{})
	_ uintptr = unsafe.Sizeof(pixFormat{}) - 48
	_ uintptr = 48 - unsafe.Sizeof(pixFormat{})
	_ uintptr = unsafe.Sizeof(pixFormatMPlane{}) - 192
	_ uintptr = 192 - unsafe.Sizeof(pixFormatMPlane{})
	_ uintptr = unsafe.Sizeof(requestBuffers{}) - 20
	_ uintptr = 20 - unsafe.Sizeof(requestBuffers{})
	_ uintptr = unsafe.Sizeof(streamParm{}) - 204
	_ uintptr = 204 - unsafe.Sizeof(streamParm{})
	_ uintptr = unsafe.Sizeof(captureParm{}) - 40
	_ uintptr = 40 - unsafe.Sizeof(captureParm{})
)

// pix returns the single-planar view of the format union.
func (f *format) pix() *pixFormat { return (*pixFormat)(unsafe.Pointer(&f.Fmt[0])) }

// pixMP returns the multi-planar view of the format union.
func (f *format) pixMP() *pixFormatMPlane { return (*pixFormatMPlane)(unsafe.Pointer(&f.Fmt[0])) }
