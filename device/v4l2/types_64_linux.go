//go:build linux && !(arm || 386 || mips || mipsle)

package v4l2

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// struct v4l2_format on 64-bit targets: the union holds pointers (struct
// v4l2_window), so it is 8-byte aligned after the 4-byte type.
type format struct {
	Type uint32
	_    uint32
	Fmt  [200]byte
}

// struct v4l2_buffer on 64-bit targets: 64-bit timeval and an 8-byte union
// m {offset, userptr, planes, fd}.
type buffer struct {
	Index     uint32
	Type      uint32
	BytesUsed uint32
	Flags     uint32
	Field     uint32
	_         uint32
	Timestamp unix.Timeval
	Timecode  timecode
	Sequence  uint32
	Memory    uint32
	M         uint64
	Length    uint32
	Reserved2 uint32
	RequestFD int32
	_         uint32
}

// struct v4l2_plane on 64-bit targets.
type plane struct {
	BytesUsed  uint32
	Length     uint32
	M          uint64
	DataOffset uint32
	Reserved   [11]uint32
}

func (b *buffer) offset() uint32     { return uint32(b.M) }
func (b *buffer) setPlanes(p *plane) { b.M = uint64(uintptr(unsafe.Pointer(p))) }
func (p *plane) memOffset() uint32   { return uint32(p.M) }

const (
	_ uintptr = unsafe.Sizeof(format{}) - 208
	_ uintptr = 208 - unsafe.Sizeof(format{})
	_ uintptr = unsafe.Sizeof(buffer{}) - 88
	_ uintptr = 88 - unsafe.Sizeof(buffer{})
	_ uintptr = unsafe.Offsetof(buffer{}.Timestamp) - 24
	_ uintptr = 24 - unsafe.Offsetof(buffer{}.Timestamp)
	_ uintptr = unsafe.Offsetof(buffer{}.M) - 64
	_ uintptr = 64 - unsafe.Offsetof(buffer{}.M)
	_ uintptr = unsafe.Sizeof(plane{}) - 64
	_ uintptr = 64 - unsafe.Sizeof(plane{})
)
