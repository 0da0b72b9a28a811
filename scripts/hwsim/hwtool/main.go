// Command hwtool does what the whole-daemon VM test (cmd/classcapd
// TestHWSimDaemon) needs inside the throw-away VM of scripts/hwsim/run-vm.sh
// and busybox cannot: play known audio into a loopback sound card, and press
// a V4L2 control button such as vivid's "Disconnect".
//
// Usage:
//
//	hwtool play -device hw:Loopback,0,0 -freqs 300,500,700,900 [-seconds N] [-amp A]
//	        one sine per channel (the channel count is the number of frequencies)
//	hwtool ctrl -device /dev/video0 -name Disconnect [-value V]
//	        find a control by name and set it (a button control is pressed)
//	hwtool lesson -socket S -out REPORT [-seconds N] [-disconnect-at T]
//	        wait until classcapd delivers, tap the gpio-sim button, record N s
//	        (pressing the camera's Disconnect control T s in and waiting for
//	        pictures to come back), tap again; write what status and the LED
//	        line showed to REPORT (JSON)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/device/alsa"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hwtool play|ctrl [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "play":
		err = play(os.Args[2:])
	case "ctrl":
		err = ctrl(os.Args[2:])
	case "lesson":
		err = lessonCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want play or ctrl)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hwtool:", err)
		os.Exit(1)
	}
}

// parseFreqs parses a comma list of positive frequencies in Hz.
func parseFreqs(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			return nil, fmt.Errorf("frequency %q: want a positive number of Hz", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// sines fills pcm (interleaved, len(freqs) channels) with one sine per
// channel, continuing from sample frame n.
func sines(pcm []float32, freqs []float64, rate int, n int64, amp float64) {
	ch := len(freqs)
	for i := 0; i < len(pcm)/ch; i++ {
		t := float64(n+int64(i)) / float64(rate)
		for c, f := range freqs {
			pcm[i*ch+c] = float32(amp * math.Sin(2*math.Pi*f*t))
		}
	}
}

func play(args []string) error {
	fs := flag.NewFlagSet("play", flag.ContinueOnError)
	dev := fs.String("device", "hw:Loopback,0,0", "ALSA playback device")
	freqList := fs.String("freqs", "300,500,700,900", "one frequency (Hz) per channel")
	seconds := fs.Float64("seconds", 0, "stop after this long (0: until killed)")
	amp := fs.Float64("amp", 0.5, "amplitude (0..1)")
	rate := fs.Int("rate", 48000, "sample rate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	freqs, err := parseFreqs(*freqList)
	if err != nil {
		return err
	}
	if len(freqs) < 2 || len(freqs) > alsa.MaxChannels {
		return fmt.Errorf("%d frequencies: want 2-%d (one per channel)", len(freqs), alsa.MaxChannels)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *seconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*seconds*float64(time.Second)))
		defer cancel()
	}
	p, err := alsa.NewPlayback(alsa.Config{Device: *dev, Channels: len(freqs), Rate: *rate}, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	prm := p.Params()
	fmt.Printf("hwtool: playing %v Hz on %s (%d ch, %d Hz, %v)\n", freqs, *dev, prm.Channels, prm.Rate, prm.Format)
	block := prm.Rate / 50 // 20 ms
	pcm := media.PCM{Samples: make([]float32, block*len(freqs)), Channels: len(freqs), Rate: prm.Rate}
	var n int64
	for {
		sines(pcm.Samples, freqs, prm.Rate, n, *amp)
		if err := p.Write(ctx, pcm); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		n += int64(block)
	}
}

func ctrl(args []string) error {
	fs := flag.NewFlagSet("ctrl", flag.ContinueOnError)
	dev := fs.String("device", "/dev/video0", "V4L2 device")
	name := fs.String("name", "", "control name, e.g. Disconnect")
	value := fs.Int("value", 0, "value to set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("ctrl: -name is required")
	}
	return ctrlSet(*dev, *name, int32(*value))
}

// ctrlSet sets the control called name on device dev.
func ctrlSet(dev, name string, value int32) error {
	fd, err := syscall.Open(dev, syscall.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer syscall.Close(fd)
	id, err := findControl(fd, name)
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	if err := setControl(fd, id, value); err != nil {
		return fmt.Errorf("%s: set %q: %w", dev, name, err)
	}
	fmt.Printf("hwtool: %s: control %q (0x%x) set to %d\n", dev, name, id, value)
	return nil
}
