package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"unsafe"
)

// struct v4l2_queryctrl and struct v4l2_control of <linux/videodev2.h>.
type queryCtrl struct {
	ID           uint32
	Type         uint32
	Name         [32]byte
	Minimum      int32
	Maximum      int32
	Step         int32
	DefaultValue int32
	Flags        uint32
	Reserved     [2]uint32
}

type v4l2Control struct {
	ID    uint32
	Value int32
}

const (
	ctrlFlagNextCtrl  = 0x80000000
	ctrlTypeCtrlClass = 6
)

func iowr(nr, size uintptr) uintptr { return 3<<30 | size<<16 | 'V'<<8 | nr }

var (
	vidiocQueryCtrl = iowr(36, unsafe.Sizeof(queryCtrl{}))
	vidiocSCtrl     = iowr(28, unsafe.Sizeof(v4l2Control{}))
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// findControl walks the device's controls and returns the id of the one
// called name (case-insensitive).
func findControl(fd int, name string) (uint32, error) {
	var names []string
	q := queryCtrl{ID: ctrlFlagNextCtrl}
	for {
		if err := ioctl(fd, vidiocQueryCtrl, unsafe.Pointer(&q)); err != nil {
			if errors.Is(err, syscall.EINVAL) {
				break
			}
			return 0, fmt.Errorf("query controls: %w", err)
		}
		n := string(q.Name[:])
		if i := strings.IndexByte(n, 0); i >= 0 {
			n = n[:i]
		}
		if q.Type != ctrlTypeCtrlClass {
			if strings.EqualFold(n, name) {
				return q.ID, nil
			}
			names = append(names, n)
		}
		q = queryCtrl{ID: q.ID | ctrlFlagNextCtrl}
	}
	return 0, fmt.Errorf("no control %q (have %q)", name, names)
}

func setControl(fd int, id uint32, v int32) error {
	c := v4l2Control{ID: id, Value: v}
	return ioctl(fd, vidiocSCtrl, unsafe.Pointer(&c))
}
