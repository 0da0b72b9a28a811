// Command arraybench measures the microphone-array chain (capture/array)
// on synthetic rooms built from real speech, against ffmpeg's afftdn
// denoiser on the best single microphone, and prints `bench ...` lines
// (see scripts/bench-array.sh).
//
//	arraybench -speech speech.f32 [-seconds 20] [-snr 5] [-work DIR]
//
// The speech is raw 32-bit float little-endian mono at 48 kHz (ffmpeg -f
// f32le). Progress and the detailed figures go to stderr.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/room"
	"github.com/classcap/classcap/capture/media"
)

const rate = media.AudioRate

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "arraybench:", err)
		os.Exit(1)
	}
}

func run() error {
	speechPath := flag.String("speech", "", "speech, raw f32le mono 48 kHz")
	seconds := flag.Float64("seconds", 20, "length of each room")
	snr := flag.Float64("snr", 5, "speech-to-noise ratio at each microphone, dB")
	work := flag.String("work", os.TempDir(), "directory for ffmpeg's input and output")
	geometry := flag.String("geometry", "linear4", "array preset")
	cpuSeconds := flag.Float64("cpu-seconds", 60, "seconds of 4-channel audio timed for the CPU figure")
	ablate := flag.Bool("ablate", false, "also log the gain of the chain with each stage left out")
	flag.Parse()
	if *speechPath == "" {
		return errors.New("-speech is required")
	}
	raw, err := os.ReadFile(*speechPath)
	if err != nil {
		return err
	}
	speech := make([]float64, len(raw)/4)
	for i := range speech {
		speech[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	n := int(*seconds * rate)
	if len(speech) < rate {
		return fmt.Errorf("%s: %d samples of speech, want at least 1 s", *speechPath, len(speech))
	}
	clean := make([]float64, n) // the speech looped to the room's length
	for i := range clean {
		clean[i] = speech[i%len(speech)]
	}
	mics, err := array.LookupPreset(*geometry)
	if err != nil {
		return err
	}
	logf("geometry %s, %d microphones; talker at 60°, interferers at 150°; %.0f s per room at %.1f dB SNR per microphone",
		*geometry, len(mics), *seconds, *snr)

	for _, kind := range room.Kinds {
		r := room.Room{Mics: mics, Rate: rate, TalkerDeg: 60, Noise: kind, InterfererDeg: 150, SNRDB: *snr, Seed: 1}
		sp, np, err := room.RenderParts(r, clean)
		if err != nil {
			return err
		}
		x := make([]float32, len(sp))
		for i := range x {
			x[i] = sp[i] + np[i]
		}
		// Each microphone is measured against its own reference (for a
		// reverberant room, the direct path and 50 ms of reflections at
		// that microphone); the best one's reference is the one every
		// output of this room is measured against.
		best, bestCh := room.Result{SNRDB: math.Inf(-1)}, 0
		var ref []float64
		for c := range mics {
			rc, err := room.Reference(r, clean, c)
			if err != nil {
				return err
			}
			res, err := room.Measure(rc, channel(x, len(mics), c), rate)
			if err != nil {
				return err
			}
			if res.SNRDB > best.SNRDB {
				best, bestCh, ref = res, c, rc
			}
		}
		if room.Reverberant(kind) {
			dry, err := room.Measure(ref, channel(sp, len(mics), bestCh), rate)
			if err != nil {
				return err
			}
			logf("%s: the speech alone at microphone %d: SNR %.2f dB, segmental %.2f dB (its late reverberation, after %d ms, against the rest)",
				kind, bestCh, dry.SNRDB, dry.SegSNRDB, room.EarlyMS)
		}
		cfg := array.Defaults(mics)
		ours, az, err := processAz(cfg, x, len(mics))
		if err != nil {
			return err
		}
		logf("%s: the chain's talker direction %.1f° (talker at 60°)", kind, az)
		o, err := room.Measure(ref, ours, rate)
		if err != nil {
			return err
		}
		// The same chain with the adaptive (MVDR) beam.
		mcfg := array.Defaults(mics)
		mcfg.Beam = array.BeamMVDR
		mout, err := process(mcfg, x, len(mics))
		if err != nil {
			return err
		}
		mo, err := room.Measure(ref, mout, rate)
		if err != nil {
			return err
		}
		// Peer: afftdn with its defaults, and with noise tracking and a
		// deeper reduction; the better of the two counts.
		var peer room.Result
		peerName := ""
		for i, af := range []string{"afftdn", "afftdn=nr=20:nf=-40:tn=1"} {
			out, err := ffmpeg(*work, af, channel(x, len(mics), bestCh))
			if err != nil {
				return err
			}
			p, err := room.Measure(ref, out, rate)
			if err != nil {
				return fmt.Errorf("measure %s: %w", af, err)
			}
			logf("%s: %s on microphone %d: SNR %.2f dB (gain %+.2f), segmental %.2f dB (gain %+.2f)",
				kind, af, bestCh, p.SNRDB, p.SNRDB-best.SNRDB, p.SegSNRDB, p.SegSNRDB-best.SegSNRDB)
			if i == 0 || p.SNRDB > peer.SNRDB {
				peer, peerName = p, af
			}
		}
		logf("%s: best microphone %d: SNR %.2f dB, segmental %.2f dB; chain: SNR %.2f dB (gain %+.2f), segmental %.2f dB (gain %+.2f); peer %s",
			kind, bestCh, best.SNRDB, best.SegSNRDB, o.SNRDB, o.SNRDB-best.SNRDB, o.SegSNRDB, o.SegSNRDB-best.SegSNRDB, peerName)
		line("array_gain_db_"+kind, o.SNRDB-best.SNRDB, peer.SNRDB-best.SNRDB, true, "dB")
		line("array_segsnr_gain_db_"+kind, o.SegSNRDB-best.SegSNRDB, peer.SegSNRDB-best.SegSNRDB, true, "dB")
		logf("%s: chain with the MVDR beam: SNR %.2f dB (gain %+.2f), segmental %.2f dB (gain %+.2f)",
			kind, mo.SNRDB, mo.SNRDB-best.SNRDB, mo.SegSNRDB, mo.SegSNRDB-best.SegSNRDB)
		line("mvdr_array_gain_db_"+kind, mo.SNRDB-best.SNRDB, o.SNRDB-best.SNRDB, true, "dB")

		if *ablate {
			for _, v := range []struct {
				name string
				mod  func(*array.Config)
			}{
				{"no high-pass", func(c *array.Config) { c.HighPassHz = 0 }},
				{"no calibration", func(c *array.Config) { c.AutoCalibrate = false }},
				{"no beam", func(c *array.Config) { c.Beamform = false }},
				{"no suppression", func(c *array.Config) { c.Suppress = false }},
				{"suppression 10 dB", func(c *array.Config) { c.SuppressDB = 10 }},
				{"suppression 20 dB", func(c *array.Config) { c.SuppressDB = 20 }},
				{"no AGC", func(c *array.Config) { c.AGC = false }},
			} {
				cfg := array.Defaults(mics)
				v.mod(&cfg)
				out, err := process(cfg, x, len(mics))
				if err != nil {
					return err
				}
				a, err := room.Measure(ref, out, rate)
				if err != nil {
					return err
				}
				logf("%s: chain with %s: gain %+.2f dB, segmental %+.2f dB", kind, v.name, a.SNRDB-best.SNRDB, a.SegSNRDB-best.SegSNRDB)
			}
		}
		// What the direction estimate costs: the chain and the
		// delay-and-sum beam alone steered at the talker's azimuth.
		for _, alone := range []bool{false, true} {
			scfg := array.Defaults(mics)
			if alone {
				scfg.HighPassHz, scfg.AutoCalibrate, scfg.Suppress, scfg.AGC = 0, false, false, false
			}
			scfg.SteerDeg = r.TalkerDeg
			out, err := process(scfg, x, len(mics))
			if err != nil {
				return err
			}
			a, err := room.Measure(ref, out, rate)
			if err != nil {
				return err
			}
			what := "chain"
			if alone {
				what = "delay-and-sum beam alone"
			}
			logf("%s: %s steered at the talker's azimuth: gain %+.2f dB, segmental %+.2f dB", kind, what, a.SNRDB-best.SNRDB, a.SegSNRDB-best.SegSNRDB)
		}
		// The beamformers alone (their own direction estimate, every
		// other stage off): delay-and-sum, then MVDR against it.
		var dsGain float64
		for _, beam := range []string{array.BeamDelaySum, array.BeamMVDR} {
			bcfg := array.Defaults(mics)
			bcfg.HighPassHz, bcfg.AutoCalibrate, bcfg.Suppress, bcfg.AGC = 0, false, false, false
			bcfg.Beam = beam
			out, err := process(bcfg, x, len(mics))
			if err != nil {
				return err
			}
			b, err := room.Measure(ref, out, rate)
			if err != nil {
				return err
			}
			logf("%s: %s beam alone: SNR %.2f dB (gain %+.2f), segmental %.2f dB (gain %+.2f)",
				kind, beam, b.SNRDB, b.SNRDB-best.SNRDB, b.SegSNRDB, b.SegSNRDB-best.SegSNRDB)
			if beam == array.BeamDelaySum {
				dsGain = b.SNRDB - best.SNRDB
				line("beam_gain_db_"+kind, dsGain, 0, false, "dB")
			} else {
				line("mvdr_beam_gain_db_"+kind, b.SNRDB-best.SNRDB, dsGain, true, "dB")
			}
		}
	}

	// CPU: the whole chain on 4 channels at 48 kHz in 10 ms blocks, user
	// plus system time of this single-threaded loop over the audio's
	// duration.
	mics4, _ := array.LookupPreset("linear4")
	r := room.Room{Mics: mics4, Rate: rate, TalkerDeg: 60, Noise: room.Diffuse, SNRDB: *snr, Seed: 2}
	x, err := room.Render(r, clean[:min(len(clean), 10*rate)])
	if err != nil {
		return err
	}
	var dsCPU float64
	for _, beam := range []string{array.BeamDelaySum, array.BeamMVDR} {
		cfg := array.Defaults(mics4)
		cfg.Beam = beam
		c, err := array.New(cfg)
		if err != nil {
			return err
		}
		total := int(*cpuSeconds * rate)
		block := rate / 100
		frames := len(x) / 4
		t0, w0 := cpuTime(), time.Now()
		for done := 0; done < total; done += block {
			i := done % (frames - block)
			if _, err := c.Process(media.PCM{Samples: x[4*i : 4*(i+block)], Channels: 4, Rate: rate}); err != nil {
				return err
			}
		}
		cpu := cpuTime() - t0
		pct := 100 * cpu.Seconds() / *cpuSeconds
		logf("CPU (%s): %.3f s user+sys (%.3f s wall) for %.0f s of 4-channel audio", beam, cpu.Seconds(), time.Since(w0).Seconds(), *cpuSeconds)
		if beam == array.BeamDelaySum {
			dsCPU = pct
			line("array_cpu_percent_4ch_48k", pct, 0, false, "percent_of_one_core")
		} else {
			line("mvdr_array_cpu_percent_4ch_48k", pct, dsCPU, true, "percent_of_one_core")
		}
	}
	return nil
}

func channel(x []float32, m, c int) []float32 {
	out := make([]float32, len(x)/m)
	for i := range out {
		out[i] = x[i*m+c]
	}
	return out
}

func process(cfg array.Config, x []float32, m int) ([]float32, error) {
	out, _, err := processAz(cfg, x, m)
	return out, err
}

// processAz is process that also returns the chain's last talker
// direction (NaN if it had none).
func processAz(cfg array.Config, x []float32, m int) ([]float32, float64, error) {
	c, err := array.New(cfg)
	if err != nil {
		return nil, 0, err
	}
	out := make([]float32, 0, len(x)/m)
	block := rate / 100
	for i := 0; i < len(x)/m; i += block {
		e := min(i+block, len(x)/m)
		p, err := c.Process(media.PCM{Samples: x[i*m : e*m], Channels: m, Rate: rate})
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p.Samples...)
	}
	az := math.NaN()
	if l, ok := c.Levels(); ok {
		az = l.AzimuthDeg
	}
	return out, az, nil
}

// ffmpeg runs one audio filter over x (mono, 48 kHz) and returns its
// output.
func ffmpeg(dir, filter string, x []float32) ([]float32, error) {
	in := filepath.Join(dir, "peer-in.f32")
	out := filepath.Join(dir, "peer-out.f32")
	buf := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(in, buf, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "f32le", "-ar", fmt.Sprint(rate), "-ac", "1", "-i", in, "-af", filter, "-f", "f32le", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg -af %s: %w: %s", filter, err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	res := make([]float32, len(b)/4)
	for i := range res {
		res[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return res, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func line(name string, ours, peer float64, hasPeer bool, unit string) {
	if !hasPeer {
		fmt.Printf("bench %s ours=%.2f unit=%s\n", name, ours, unit)
		return
	}
	ratio := "inf"
	if peer != 0 {
		ratio = fmt.Sprintf("%.3f", ours/peer)
	}
	fmt.Printf("bench %s ours=%.2f peer=%.2f ratio=%s unit=%s\n", name, ours, peer, ratio, unit)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-array: "+format+"\n", args...)
}
