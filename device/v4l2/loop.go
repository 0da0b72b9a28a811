package v4l2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// frame is one dequeued buffer.
type frame struct {
	index   uint32
	data    []byte        // the filled part of the buffer; valid until release
	corrupt bool          // the driver flagged the buffer as corrupt
	mono    time.Duration // capture time on CLOCK_MONOTONIC
}

// frameSource is a streaming capture device as the capture loop sees it.
type frameSource interface {
	frameLayout() frameLayout
	// next waits up to timeout for a filled buffer; ok is false when none
	// came (timeout, wake, interrupted wait). An error ends the stream.
	next(timeout time.Duration) (f frame, ok bool, err error)
	// release gives the buffer back to the driver.
	release(index uint32) error
	// wake makes a waiting next return; safe from any goroutine.
	wake()
	close()
}

// frameHandler takes one filled buffer; data is valid until it returns. An
// error means the frame was unusable (skipped).
type frameHandler func(data []byte, pts time.Duration, l frameLayout) error

// runLoop feeds the frames of src to handle until ctx ends (ctx.Err()), the
// source fails, or no usable frame came for stall (ErrDeviceLost). It closes
// src.
func runLoop(ctx context.Context, src frameSource, path string, epochMono, stall time.Duration, log *slog.Logger, handle frameHandler) error {
	defer src.close()
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		src.wake()
	})
	defer func() {
		if !stop() {
			<-woken // wake must be done before src closes
		}
	}()
	l := src.frameLayout()
	var lastErr error
	deadline := time.Now().Add(stall)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			if lastErr != nil {
				return fmt.Errorf("v4l2 %s: no usable frame for %v (last: %v): %w", path, stall, lastErr, ErrDeviceLost)
			}
			return fmt.Errorf("v4l2 %s: no frame for %v: %w", path, stall, ErrDeviceLost)
		}
		f, ok, err := src.next(wait)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch {
		case f.corrupt:
			lastErr = errors.New("driver flagged the buffer as corrupt")
		case len(f.data) == 0:
			lastErr = errors.New("empty buffer")
		default:
			if err := handle(f.data, f.mono-epochMono, l); err != nil {
				lastErr = err
				log.Debug("camera frame skipped", "device", path, "err", err)
			} else {
				lastErr = nil
				deadline = time.Now().Add(stall)
			}
		}
		if err := src.release(f.index); err != nil {
			return err
		}
	}
}
