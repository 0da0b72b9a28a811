package pacer

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysPacer is a one-shot timerfd registered with the runtime's poller.
type sysPacer struct {
	f    *os.File
	fd   uintptr // f's descriptor (f.Fd would make it blocking)
	rc   syscall.RawConn
	stop func() bool // unregisters the context hook
	spec unix.ItimerSpec
	buf  [8]byte
	err  error // set by the read callback
}

func newSys(ctx context.Context) (*sysPacer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	s := &sysPacer{f: f, fd: uintptr(fd), rc: rc}
	// A read deadline in the past ends a sleep in progress and every later
	// one; it is set once, when ctx ends, rather than per sleep.
	s.stop = context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	return s, nil
}

// sleep arms the timer d from now and waits for it to fire.
func (s *sysPacer) sleep(d time.Duration) error {
	s.spec.Value = unix.NsecToTimespec(int64(d))
	// Raw calls: neither can block, and a plain system call would wake the
	// runtime's monitor thread on every frame.
	if _, _, e := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, s.fd, 0,
		uintptr(unsafe.Pointer(&s.spec)), 0, 0, 0); e != 0 {
		return fmt.Errorf("timerfd_settime: %w", e)
	}
	s.err = nil
	err := s.rc.Read(s.drain)
	if err == nil {
		err = s.err
	}
	return err
}

// drain reads the expiry count; false means "not yet, wait for the poller".
func (s *sysPacer) drain(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
	switch {
	case e == 0:
		return true
	case e == unix.EAGAIN:
		return false
	case e == unix.EINTR:
		return s.drain(fd)
	}
	s.err = fmt.Errorf("read timerfd: %w", e)
	return true
}

func (s *sysPacer) close() {
	s.stop()
	s.f.Close()
}
