//go:build cgo && !linux

package audio

import (
	"errors"
	"fmt"
	"syscall"
)

// wakeWorker writes a byte into the encoder thread's wake pipe (which is
// non-blocking: a full pipe has wake-ups enough).
func wakeWorker(fd int32) {
	syscall.Write(int(fd), []byte{1})
}

// errWouldBlock says that the done pipe is empty.
var errWouldBlock = errors.New("would block")

// drainPipe empties the non-blocking pipe fd: nil when it read something,
// errWouldBlock when it was empty.
func drainPipe(fd uintptr) error {
	var buf [64]byte
	for {
		_, err := syscall.Read(int(fd), buf[:])
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return errWouldBlock
		}
		return fmt.Errorf("read done pipe: %w", err)
	}
}
