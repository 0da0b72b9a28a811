//go:build !linux

package pacer

import (
	"context"
	"errors"
	"time"
)

type sysPacer struct{}

func newSys(context.Context) (*sysPacer, error) { return nil, errors.New("no timerfd") }

func (*sysPacer) sleep(time.Duration) error { return errors.New("no timerfd") }

func (*sysPacer) close() {}
