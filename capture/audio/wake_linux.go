//go:build cgo

package audio

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

var wakeByte = [1]byte{1}

// wakeWorker writes a byte into the encoder thread's wake pipe. The raw
// system call is not announced to the runtime, so it does not wake the
// runtime's monitor thread as a plain one (or a cgo call) would; it never
// blocks (the pipe is non-blocking, and a full pipe has wake-ups enough).
func wakeWorker(fd int32) {
	unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&wakeByte[0])), 1)
}

// errWouldBlock says that the done pipe is empty.
var errWouldBlock = errors.New("would block")

// drainPipe empties the non-blocking pipe fd with raw reads: nil when it
// read something, errWouldBlock when it was empty.
func drainPipe(fd uintptr) error {
	var buf [64]byte
	for {
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return errWouldBlock
		}
		return fmt.Errorf("read done pipe: %w", e)
	}
}
