package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/classcap/classcap/capture/h264"
	"github.com/classcap/classcap/device/replay"
)

// feed writes an H.264 Annex-B file to videoTo one access unit every
// 1/fps, and the samples of a WAV file to audioTo (raw, as in the file:
// the header is not written) one block at a time, each stream on its own
// real-time clock that starts when its reader opens it. It stands in for a
// camera and a microphone in front of a program that reads named pipes, so
// that the program does the same real-time job as the daemon: it wakes as
// the media arrives rather than reading it as fast as it can.
func feed(ctx context.Context, video, audio, videoTo, audioTo string, fps float64, block time.Duration) error {
	if fps <= 0 || block <= 0 {
		return fmt.Errorf("feed: fps %v and block %v must be positive", fps, block)
	}
	errs := make(chan error, 2)
	go func() { errs <- feedVideo(ctx, video, videoTo, fps) }()
	go func() { errs <- feedAudio(ctx, audio, audioTo, block) }()
	return errors.Join(<-errs, <-errs)
}

func feedVideo(ctx context.Context, from, to string, fps float64) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("feed video: %w", err)
	}
	defer in.Close()
	r := h264.NewAnnexBReader(bufio.NewReaderSize(in, 1<<20))
	return paced(ctx, to, time.Duration(float64(time.Second)/fps), func(dst []byte) ([]byte, error) {
		au, err := r.Next()
		if err != nil {
			return nil, err
		}
		for _, n := range au {
			dst = append(append(dst, 0, 0, 0, 1), n...)
		}
		return dst, nil
	})
}

func feedAudio(ctx context.Context, from, to string, block time.Duration) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("feed audio: %w", err)
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 1<<20)
	f, err := replay.ParseWAV(from, br)
	if err != nil {
		return fmt.Errorf("feed audio: %w", err)
	}
	frames := int(int64(f.Rate) * int64(block) / int64(time.Second))
	buf := make([]byte, frames*f.FrameBytes())
	return paced(ctx, to, block, func(dst []byte) ([]byte, error) {
		n, err := io.ReadFull(br, buf)
		if n > 0 {
			return append(dst, buf[:n]...), nil
		}
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		return nil, err
	})
}

// paced opens to (which blocks until a named pipe has a reader) and writes
// what next returns, the i-th chunk i periods after the open, until next
// returns io.EOF; then it closes to, which the reader sees as the end.
func paced(ctx context.Context, to string, period time.Duration, next func(dst []byte) ([]byte, error)) error {
	out, err := os.OpenFile(to, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("feed %s: %w", to, err)
	}
	t0 := time.Now()
	var chunk []byte
	for i := 0; ; i++ {
		chunk, err = next(chunk[:0])
		if err == io.EOF {
			break
		}
		if err != nil {
			out.Close()
			return fmt.Errorf("feed %s: %w", to, err)
		}
		t := time.NewTimer(time.Until(t0.Add(time.Duration(i) * period)))
		select {
		case <-ctx.Done():
			t.Stop()
			out.Close()
			return ctx.Err()
		case <-t.C:
		}
		if _, err := out.Write(chunk); err != nil {
			out.Close()
			return fmt.Errorf("feed %s: %w", to, err)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("feed %s: %w", to, err)
	}
	return nil
}
