package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/mediatest"
)

// TestFeed checks that feed hands over both files whole (every access
// unit, every sample, the WAV header left out) and no faster than real
// time.
func TestFeed(t *testing.T) {
	dir := t.TempDir()
	aus, _ := mediatest.H264(t, 1, 30, 30)
	var annexB []byte
	for _, au := range aus {
		for _, n := range au.NALUs {
			annexB = append(append(annexB, 0, 0, 1), n...)
		}
	}
	video := filepath.Join(dir, "in.h264")
	samples := make([]byte, 2*48000/5) // 200 ms of 16-bit mono
	for i := range samples {
		samples[i] = byte(i * 7)
	}
	audio := filepath.Join(dir, "in.wav")
	if err := os.WriteFile(video, annexB, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(audio, append(wavHeader(48000, 1, len(samples)), samples...), 0o644); err != nil {
		t.Fatal(err)
	}
	videoTo, audioTo := filepath.Join(dir, "v.fifo"), filepath.Join(dir, "a.fifo")
	for _, p := range []string{videoTo, audioTo} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type got struct {
		b   []byte
		err error
	}
	read := func(p string) chan got {
		c := make(chan got, 1)
		go func() { b, err := os.ReadFile(p); c <- got{b, err} }()
		return c
	}
	vc, ac := read(videoTo), read(audioTo)
	start := time.Now()
	if err := feed(context.Background(), video, audio, videoTo, audioTo, 100, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	v, a := <-vc, <-ac
	if v.err != nil || a.err != nil {
		t.Fatalf("read the pipes: %v, %v", v.err, a.err)
	}
	if !bytes.Equal(a.b, samples) {
		t.Errorf("audio: %d bytes came out, want the file's %d samples bytes", len(a.b), len(samples))
	}
	out := filepath.Join(dir, "out.h264")
	if err := os.WriteFile(out, v.b, 0o644); err != nil {
		t.Fatal(err)
	}
	gotAUs := mediatest.AccessUnits(t, out)
	if len(gotAUs) != len(aus) {
		t.Fatalf("video: %d access units came out, want %d", len(gotAUs), len(aus))
	}
	for i, au := range aus {
		if !slices.EqualFunc(gotAUs[i], au.NALUs, bytes.Equal) {
			t.Fatalf("video: access unit %d differs", i)
		}
	}
	// 30 access units at 100 a second, 20 blocks of 10 ms: the last ones
	// leave no earlier than 290 and 190 ms after the start.
	if took < 290*time.Millisecond {
		t.Errorf("fed in %v: faster than real time", took)
	}
}

func TestFeedErrors(t *testing.T) {
	dir := t.TempDir()
	err := feed(context.Background(), filepath.Join(dir, "none.h264"), filepath.Join(dir, "none.wav"),
		filepath.Join(dir, "v"), filepath.Join(dir, "a"), 30, 60*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "none.h264") || !strings.Contains(err.Error(), "none.wav") {
		t.Errorf("missing inputs: %v, want an error naming both", err)
	}
	if err := feed(context.Background(), "v", "a", "x", "y", 0, time.Millisecond); err == nil {
		t.Error("fps 0 accepted")
	}
}

// wavHeader is the 44-byte header of a 16-bit PCM WAV file.
func wavHeader(rate, channels, dataBytes int) []byte {
	h := make([]byte, 44)
	le := binary.LittleEndian
	copy(h, "RIFF")
	le.PutUint32(h[4:], uint32(36+dataBytes))
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], 1)
	le.PutUint16(h[22:], uint16(channels))
	le.PutUint32(h[24:], uint32(rate))
	le.PutUint32(h[28:], uint32(rate*channels*2))
	le.PutUint16(h[32:], uint16(channels*2))
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], uint32(dataBytes))
	return h
}
