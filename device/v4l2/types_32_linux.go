//go:build linux && (arm || 386 || mips || mipsle)

package v4l2

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// struct v4l2_format on 32-bit targets: the union follows the type directly.
type format struct {
	Type uint32
	Fmt  [200]byte
}

// struct v4l2_buffer on 32-bit targets with a 32-bit time_t (the layout of
// golang.org/x/sys/unix's Timeval and of the kernel's plain VIDIOC_*BUF
// numbers): 8-byte timeval and a 4-byte union m.
type buffer struct {
	Index     uint32
	Type      uint32
	BytesUsed uint32
	Flags     uint32
	Field     uint32
	Timestamp unix.Timeval
	Timecode  timecode
	Sequence  uint32
	Memory    uint32
	M         uint32
	Length    uint32
	Reserved2 uint32
	RequestFD int32
}

// struct v4l2_plane on 32-bit targets.
type plane struct {
	BytesUsed  uint32
	Length     uint32
	M          uint32
	DataOffset uint32
	Reserved   [11]uint32
}

func (b *buffer) offset() uint32     { return b.M }
func (b *buffer) setPlanes(p *plane) { b.M = uint32(uintptr(unsafe.Pointer(p))) }
func (p *plane) memOffset() uint32   { return p.M }

const (
	_ uintptr = unsafe.Sizeof(format{}) - 204
	_ uintptr = 204 - unsafe.Sizeof(format{})
	_ uintptr = unsafe.Sizeof(buffer{}) - 68
	_ uintptr = 68 - unsafe.Sizeof(buffer{})
	_ uintptr = unsafe.Offsetof(buffer{}.Timestamp) - 20
	_ uintptr = 20 - unsafe.Offsetof(buffer{}.Timestamp)
	_ uintptr = unsafe.Offsetof(buffer{}.M) - 52
	_ uintptr = 52 - unsafe.Offsetof(buffer{}.M)
	_ uintptr = unsafe.Sizeof(plane{}) - 60
	_ uintptr = 60 - unsafe.Sizeof(plane{})
)
