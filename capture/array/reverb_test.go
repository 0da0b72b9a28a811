package array_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/array/room"
)

// afftdn runs ffmpeg's afftdn on the best capsule of s, with its defaults
// and with noise tracking and a deeper reduction (the bench's peer), and
// returns the better of the two measured.
func afftdn(t *testing.T, s *scene) room.Result {
	t.Helper()
	bestMic(t, s)
	m := len(s.room.Mics)
	buf := make([]byte, 4*len(s.mics)/m)
	for i := range len(s.mics) / m {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(s.mics[i*m+s.bestCh]))
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.f32"), filepath.Join(dir, "out.f32")
	if err := os.WriteFile(in, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	best := room.Result{SNRDB: math.Inf(-1)}
	for _, af := range []string{"afftdn", "afftdn=nr=20:nf=-40:tn=1"} {
		cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
			"-f", "f32le", "-ar", fmt.Sprint(s.room.Rate), "-ac", "1", "-i", in, "-af", af, "-f", "f32le", out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ffmpeg -af %s: %v: %s", af, err, stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		if r := measure(t, s, x); r.SNRDB > best.SNRDB {
			best = r
		}
	}
	return best
}

// In the reverberant classroom (RT60 0.6 s) the whole chain still gains
// over the best capsule, measured against the direct path and 50 ms of
// early reflections (late reverberation counts as noise), and beats
// ffmpeg's afftdn on that capsule. The floors sit about 1 dB under the
// measured figures (8 s rooms: gains 5.48 and 4.71 dB, segmental 4.82 and
// 4.06 dB, 5.0 and 4.3 dB over afftdn). The gains are smaller than in the
// free-field rooms of TestChainGains: the late reverberation is speech,
// which the suppressor does not remove, and it and the diffuse noise are
// nearly the same at every capsule of a 10.5 cm array below about 1.6 kHz,
// so the beam alone gains about 1 dB whether it steers by its own
// estimate (biased 15-20° toward broadside by the reverberation) or at
// the talker's true azimuth; the test logs both.
func TestChainGainsReverberant(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed (scripts/install-deps.sh)")
	}
	mics := preset(t, "linear4")
	for _, tc := range []struct {
		noise       string
		snr, segSNR float64 // the chain's gains over the best capsule
		overPeer    float64 // the chain's SNR over afftdn's
	}{
		{room.ReverbDiffuse, 4.5, 3.8, 4.0},
		{room.ReverbDirectional, 3.7, 3.0, 3.3},
	} {
		t.Run(tc.noise, func(t *testing.T) {
			s := render(t, room.Room{Mics: mics, Rate: rate, TalkerDeg: 60, Noise: tc.noise,
				InterfererDeg: 150, SNRDB: 5, Seed: 11}, 8)
			base := bestMic(t, s)
			c := newChain(t, array.Defaults(mics))
			got := measure(t, s, run(t, c, s))
			l, _ := c.Levels()
			peer := afftdn(t, s)
			beam := measure(t, s, run(t, newChain(t, beamOnly(mics)), s))
			steered := beamOnly(mics)
			steered.SteerDeg = 60
			oracle := measure(t, s, run(t, newChain(t, steered), s))
			g, sg := got.SNRDB-base.SNRDB, got.SegSNRDB-base.SegSNRDB
			t.Logf("best capsule %.2f/%.2f dB; chain %.2f/%.2f dB: gain %.2f dB, segmental %.2f dB; afftdn gain %.2f dB, segmental %.2f dB; beam alone gain %.2f dB (%.2f dB steered at 60°); direction %.1f°",
				base.SNRDB, base.SegSNRDB, got.SNRDB, got.SegSNRDB, g, sg, peer.SNRDB-base.SNRDB, peer.SegSNRDB-base.SegSNRDB, beam.SNRDB-base.SNRDB, oracle.SNRDB-base.SNRDB, l.AzimuthDeg)
			if g < tc.snr || sg < tc.segSNR {
				t.Errorf("gain %.2f dB (segmental %.2f dB), want at least %.1f (%.1f)", g, sg, tc.snr, tc.segSNR)
			}
			if got.SNRDB-peer.SNRDB < tc.overPeer {
				t.Errorf("chain %.2f dB, afftdn %.2f dB: want the chain %.1f dB over", got.SNRDB, peer.SNRDB, tc.overPeer)
			}
		})
	}
}
