package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/array/room"
	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/device/sim"
	"github.com/classcap/classcap/provisioning/config"
)

// decodeSound returns a lesson's sound as ffmpeg decodes it (mono, 48 kHz).
func decodeSound(t *testing.T, file string) []float32 {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", file, "-map", "0:a", "-f", "f32le", "-ac", "1", "-ar", "48000", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg cannot decode %s: %v %s", file, err, stderr.String())
	}
	out := make([]float32, stdout.Len()/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(stdout.Bytes()[4*i:]))
	}
	return out
}

// TestArrayProcessingThroughDaemon records a lesson with the running sim
// daemon three times: with the array processing bypassed ([audio.array]
// enabled = false), on (the default, delay-and-sum), and on with the MVDR
// beam, the simulated capsules each adding noise at -30 dBFS. Every lesson
// decodes; the processed ones have the higher SNR against the clean speech
// the simulated talker plays (rendered again here from the same seed and
// found in the recording by cross-correlation).
func TestArrayProcessingThroughDaemon(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/install-deps.sh)")
	}
	snr := map[string]float64{}
	for _, mode := range []string{"off", "delay-and-sum", "mvdr"} {
		on := mode != "off"
		extra := "[audio.array]\nenabled = false\n"
		if on {
			extra = fmt.Sprintf("[audio.array]\nbeam = %q\n", mode)
		}
		b := newBox(t, extra)
		editConfig(t, b.cfg, "fps = 30\n", "fps = 30\nmic_noise_dbfs = -30\n", "")
		cfg, err := config.LoadBox(b.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Hardware.Sim.MicNoiseDBFS != -30 || cfg.Audio.Array.Enabled != on {
			t.Fatalf("config edits did not take: %+v %+v", cfg.Hardware.Sim, cfg.Audio.Array)
		}
		started := time.Now()
		b.start()
		id := lessonFromStart(t, b.ctl(false, "record", "start"))
		b.waitFor("8 s of lesson", 90*time.Second, func() bool { return b.meta(id).Duration >= 8 })
		b.ctl(false, "record", "stop")
		b.signal(syscall.SIGTERM)
		elapsed := time.Since(started)
		m := b.meta(id)
		if p := m.Audio.Processing; p == nil || (p.Chain == "array") != on || on && p.Beam != mode {
			t.Fatalf("processing %s: lesson.json says %+v", mode, p)
		}
		mediatest.DecodeClean(t, filepath.Join(b.lessonDir(id), lesson.PlaylistName))
		dec := decodeSound(t, mediatest.Concat(t, b.lessonDir(id)))
		dec = dec[len(dec)/8:] // past the lesson's first second
		// The talker's clean speech since the daemon started.
		mic := sim.NewMicArray(simMicConfig(cfg, time.Time{}))
		_, clean := mic.RenderClean(int((elapsed + 2*time.Second).Seconds() * media.AudioRate))
		cleanF := make([]float64, len(clean))
		for i, v := range clean {
			cleanF[i] = float64(v)
		}
		at, err := room.Locate(cleanF, dec)
		if err != nil {
			t.Fatal(err)
		}
		const pad = 1000 // Measure wants the recording late
		if at < 0 || at+len(dec) > len(cleanF) {
			t.Fatalf("processing %s: recording found at sample %d of %d", mode, at, len(cleanF))
		}
		res, err := room.Measure(cleanF[at:], append(make([]float32, pad), dec...), media.AudioRate)
		if err != nil {
			t.Fatalf("processing %s: %v", mode, err)
		}
		t.Logf("processing %s: %.2f s measured from sample %d, SNR %.2f dB, segmental %.2f dB", mode,
			float64(len(dec))/media.AudioRate, at, res.SNRDB, res.SegSNRDB)
		snr[mode] = res.SNRDB
	}
	for _, mode := range []string{"delay-and-sum", "mvdr"} {
		if snr[mode] < snr["off"]+3 {
			t.Errorf("SNR with processing (%s) %.2f dB, without %.2f dB: want at least 3 dB better", mode, snr[mode], snr["off"])
		}
	}
}
