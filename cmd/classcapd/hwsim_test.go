//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/device/led"
)

// The frequencies played into the four channels of the loopback card.
var hwsimTones = []float64{300, 500, 700, 900}

// hwsimConfig is classcapd's configuration inside the VM: every device
// found and opened by profile auto; the gpio-sim chip's name is filled in
// by the VM script. Small pictures: the VM is emulated (TCG).
const hwsimConfig = `[device]
id = "vm-box"
data_dir = "/tmp/data"
[hardware]
profile = "auto"
camera_width = 320
camera_height = 180
camera_fps = 15
microphone = "hw:Loopback,1,0"
button = "@CHIP@:0"
button_active_low = true
button_bias = "none"
led = "@CHIP@:1"
[video]
bitrate_kbps = 300
keyframe_seconds = 1
[audio]
complexity = 2
[recording]
segment_seconds = 2
min_free_mb = 10
`

// hwsimScript runs inside the VM: known audio into the loopback card, the
// real classcapd, then two lessons driven through the gpio-sim button (the
// second with the camera disconnected halfway); the lessons go back to the
// host through the 9p share.
const hwsimScript = `set -u
echo pull-up > $HWSIM_GPIOSYS/sim_gpio0/pull
sed "s/@CHIP@/$HWSIM_GPIOCHIP/" /etc/box.toml.in > /tmp/box.toml
hwtool play -device hw:Loopback,0,0 -freqs @TONES@ > /host/play.log 2>&1 &
sleep 0.3
classcapd -config /tmp/box.toml > /host/classcapd.log 2>&1 &
D=$!
hwtool lesson -socket /tmp/data/classcapd.sock -seconds 10 -out /host/report1.json; r1=$?
hwtool lesson -socket /tmp/data/classcapd.sock -seconds 12 -disconnect-at 4 -out /host/report2.json; r2=$?
kill $D; wait $D
cp -r /tmp/data/lessons /host/
[ $r1 = 0 ] && [ $r2 = 0 ]
`

// hwsimReport is what hwtool lesson writes (scripts/hwsim/hwtool).
type hwsimReport struct {
	Lesson                          string
	LEDIdle, LEDRecording, LEDAfter string
	LEDDuringFault, CameraFault     string
	VideoGap                        bool
	Levels                          []struct{ Peak, RMS float64 }
	Encoder                         string
	Log                             []string
}

// TestHWSimDaemon runs the real classcapd under profile = "auto" against
// kernel drivers in a throw-away QEMU VM (scripts/hwsim/): vivid is the
// camera, snd-aloop the microphone array (four channels of known tones),
// gpio-sim the button and the LED. The button is tapped through gpio-sim's
// simulated pull; the lessons come back to the host, where ffprobe and
// ffmpeg judge them: pictures from vivid, the tones in the sound, the LED
// line on while recording, and a camera disconnected mid-lesson leaving a
// playable lesson with a gap. CLASSCAP_HWSIM=0 skips it.
func TestHWSimDaemon(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the VM test runs on linux/amd64")
	}
	if os.Getenv("CLASSCAP_HWSIM") == "0" {
		t.Skip("CLASSCAP_HWSIM=0")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	hwsim := filepath.Join(root, "scripts", "hwsim")
	if out, err := exec.Command(filepath.Join(hwsim, "prepare.sh")).CombinedOutput(); err != nil {
		if _, lerr := exec.LookPath("qemu-system-x86_64"); lerr != nil {
			t.Skipf("qemu-system-x86_64 missing and prepare.sh failed: %v\n%s", err, out)
		}
		t.Fatalf("scripts/hwsim/prepare.sh: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 missing")
	}

	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	for _, b := range []struct{ out, pkg, cgo string }{
		{"classcapd", "./cmd/classcapd", "1"}, // openh264 and opus are linked in; run-vm.sh takes its libraries along
		{"hwtool", "./scripts/hwsim/hwtool", "0"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo, "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	cfg := filepath.Join(work, "box.toml.in")
	if err := os.WriteFile(cfg, []byte(hwsimConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	share := filepath.Join(work, "share")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	var tones []string
	for _, f := range hwsimTones {
		tones = append(tones, strconv.FormatFloat(f, 'f', -1, 64))
	}
	script := strings.ReplaceAll(hwsimScript, "@TONES@", strings.Join(tones, ","))
	console := filepath.Join(work, "console.log")
	vm := exec.Command(filepath.Join(hwsim, "run-vm.sh"), "-q", "-l", console,
		"-m", "vivid,snd-aloop,gpio-sim,9p,9pnet_virtio,virtio_pci", "-p", "vivid n_devs=1 node_types=0x1",
		"-M", "1G", "-t", "270", "-s", share,
		"-b", filepath.Join(bin, "classcapd"), "-b", filepath.Join(bin, "hwtool"), "-f", cfg+":/etc/box.toml.in",
		"--", script)
	var stderr bytes.Buffer
	vm.Stderr = &stderr
	start := time.Now()
	err = vm.Run()
	dump := func() {
		c, _ := os.ReadFile(console)
		d, _ := os.ReadFile(filepath.Join(share, "classcapd.log"))
		t.Logf("console:\n%s\nclasscapd log:\n%s", c, d)
	}
	if err != nil {
		dump()
		t.Fatalf("run-vm.sh: %v\n%s", err, stderr.Bytes())
	}
	t.Logf("VM run took %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
	defer func() {
		if t.Failed() {
			dump()
		}
	}()

	// Lesson 1: tap, about 10 s, tap.
	r1 := readReport(t, filepath.Join(share, "report1.json"))
	if r1.LEDIdle != "0" || r1.LEDRecording != "1" || r1.LEDAfter != "0" {
		t.Errorf("LED line: idle %q, recording %q, after the stop %q; want 0, 1, 0 (one-colour LED on while recording)",
			r1.LEDIdle, r1.LEDRecording, r1.LEDAfter)
	}
	if r1.Encoder != "openh264" {
		t.Errorf("encoder %q, want openh264 (vivid delivers raw pictures)", r1.Encoder)
	}
	if len(r1.Levels) != len(hwsimTones) {
		t.Errorf("levels of %d channels, want %d", len(r1.Levels), len(hwsimTones))
	}
	for i, l := range r1.Levels {
		// A sine of amplitude 0.5: peak -6 dBFS, RMS -9 dBFS.
		if math.Abs(l.Peak+6.02) > 1 || math.Abs(l.RMS+9.03) > 1 {
			t.Errorf("channel %d: peak %.2f dBFS, RMS %.2f dBFS; want -6 and -9", i, l.Peak, l.RMS)
		}
	}
	m1 := checkHWSimLesson(t, share, r1.Lesson, 10)
	for _, g := range m1.Gaps {
		if g.Media == lesson.GapVideo {
			t.Errorf("lesson 1 has a video gap: %+v", g)
		}
	}

	// Lesson 2: the camera is disconnected 4 s in and comes back.
	r2 := readReport(t, filepath.Join(share, "report2.json"))
	if !r2.VideoGap || !strings.Contains(r2.CameraFault, "/dev/video0") || r2.LEDDuringFault != led.Error.Name {
		t.Errorf("while the camera was away: video gap %v, camera fault %q, LED %q; want a gap, a fault naming /dev/video0, LED %s",
			r2.VideoGap, r2.CameraFault, r2.LEDDuringFault, led.Error.Name)
	}
	if r2.LEDRecording != "1" || r2.LEDAfter != "0" {
		t.Errorf("LED line: recording %q, after the stop %q", r2.LEDRecording, r2.LEDAfter)
	}
	m2 := checkHWSimLesson(t, share, r2.Lesson, 12)
	var vgaps []lesson.Gap
	for _, g := range m2.Gaps {
		if g.Media == lesson.GapVideo {
			vgaps = append(vgaps, g)
		}
	}
	if len(vgaps) != 1 || !strings.Contains(vgaps[0].Reason, "camera") || vgaps[0].Duration <= 0 {
		t.Fatalf("video gaps %+v, want one for the disconnect", vgaps)
	}
	gapEnd := vgaps[0].At + vgaps[0].Duration
	disc := 0
	for _, s := range m2.Segments {
		if s.Discontinuity {
			disc++
		}
	}
	playlist, _ := os.ReadFile(filepath.Join(share, "lessons", r2.Lesson, lesson.PlaylistName))
	if disc != 1 || strings.Count(string(playlist), "#EXT-X-DISCONTINUITY") != 1 {
		t.Errorf("%d segments after a discontinuity, playlist:\n%s", disc, playlist)
	}
	// Pictures before and after the gap.
	pts := videoPTS(t, mediatest.Concat(t, filepath.Join(share, "lessons", r2.Lesson)))
	before, after := 0, 0
	for _, p := range pts {
		switch {
		case p < vgaps[0].At:
			before++
		case p >= gapEnd-0.01:
			after++
		default:
			t.Errorf("a picture at %.3f s, inside the gap %.3f..%.3f", p, vgaps[0].At, gapEnd)
		}
	}
	if before < 5 || after < 5 {
		t.Errorf("%d pictures before the gap and %d after, want some on both sides", before, after)
	}
}

func readReport(t *testing.T, path string) hwsimReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r hwsimReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r.Lesson == "" {
		t.Fatalf("%s: no lesson recorded: %s", path, b)
	}
	return r
}

// checkHWSimLesson judges one lesson brought back from the VM: complete,
// started and stopped by the button, decodable as a playlist and as one
// file, pictures of the configured size from vivid, and the tones in the
// sound.
func checkHWSimLesson(t *testing.T, share, id string, seconds float64) lesson.Meta {
	t.Helper()
	dir := filepath.Join(share, "lessons", id)
	b, err := os.ReadFile(filepath.Join(dir, lesson.MetaName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := lesson.ParseMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != lesson.StateComplete || m.StartedBy != "button" || m.Stop == nil || m.Stop.By != "button" {
		t.Errorf("lesson %s: state %s, started by %s, stop %+v; want complete, by the button", id, m.State, m.StartedBy, m.Stop)
	}
	if m.Video.Width != 320 || m.Video.Height != 180 {
		t.Errorf("lesson %s: pictures %dx%d, want 320x180", id, m.Video.Width, m.Video.Height)
	}
	if m.Duration < seconds/2 {
		t.Errorf("lesson %s: %.2f s of media for about %.0f s recorded", id, m.Duration, seconds)
	}
	playlist := filepath.Join(dir, lesson.PlaylistName)
	mediatest.DecodeClean(t, playlist)
	all := mediatest.Concat(t, dir)
	decodeVFR(t, all)
	if n := len(videoPTS(t, all)); n < 20 {
		t.Errorf("lesson %s: %d pictures", id, n)
	}
	tonesIn(t, id, all)
	return m
}

// decodeVFR decodes file with ffmpeg, keeping every picture at its own
// time, and fails on anything ffmpeg prints. The emulated VM delivers
// pictures at uneven intervals (as a real camera does in poor light); with
// its default output time base (from the average rate) ffmpeg's null muxer
// would complain that two pictures round to one tick, which says nothing
// about the file.
func decodeVFR(t *testing.T, file string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decode %s: %v\n%s", file, err, out)
	}
}

// videoPTS returns the presentation times of the pictures of file.
func videoPTS(t *testing.T, file string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
		"-of", "csv=p=0", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, out)
	}
	var pts []float64
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64); err == nil {
			pts = append(pts, v)
		}
	}
	return pts
}

// tonesIn decodes the sound of file and checks that each played tone stands
// well above the frequencies between them.
func tonesIn(t *testing.T, id, file string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-map", "0:a:0", "-ac", "1", "-ar", "48000",
		"-f", "f32le", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode sound of %s: %v", file, err)
	}
	pcm := make([]float32, len(out)/4)
	if err := binary.Read(bytes.NewReader(out[:len(pcm)*4]), binary.LittleEndian, pcm); err != nil {
		t.Fatal(err)
	}
	if len(pcm) < 48000 {
		t.Fatalf("lesson %s: %d samples of sound", id, len(pcm))
	}
	// Each tone against the strongest frequency between and around them,
	// block by block, and the median over the blocks: sound lost to an
	// overrun joins two pieces of a tone out of phase, which smears the
	// block holding the join (an emulated machine under load loses
	// often), while the blocks between joins show the tones as they are.
	others := []float64{200, 400, 600, 800, 1000, 1500}
	var report []string
	for _, f := range hwsimTones {
		tone := blockPowers(pcm, 48000, f)
		var ratios []float64
		for b := range tone {
			noise := 1e-20
			for _, o := range others {
				noise = max(noise, blockPowers(pcm[b*4800:(b+1)*4800], 48000, o)[0])
			}
			ratios = append(ratios, 10*math.Log10(tone[b]/noise))
		}
		sort.Float64s(ratios)
		db := ratios[len(ratios)/2]
		report = append(report, fmt.Sprintf("%.0f Hz %+.1f dB", f, db))
		// A tone that did not arrive (or a channel lost in the mix) is near
		// 0 dB; Opus at a low bitrate keeps the rest about 25 dB below the
		// tones here.
		if db < 15 {
			t.Errorf("lesson %s: the %.0f Hz tone is only %.1f dB above the strongest other frequency", id, f, db)
		}
	}
	t.Logf("lesson %s: %.1f s of sound; tones over the rest: %s", id, float64(len(pcm))/48000, strings.Join(report, ", "))
}

// blockPowers returns the power of frequency f in each 100 ms block of x,
// Hann-windowed.
func blockPowers(x []float32, rate, f float64) []float64 {
	n := int(rate / 10)
	win := make([]float64, n)
	for i := range win {
		win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
	}
	w := 2 * math.Pi * f / rate
	c := 2 * math.Cos(w)
	var out []float64
	for off := 0; off+n <= len(x); off += n {
		var s1, s2 float64
		for i, v := range x[off : off+n] {
			s := float64(v)*win[i] + c*s1 - s2
			s2, s1 = s1, s
		}
		out = append(out, s1*s1+s2*s2-c*s1*s2)
	}
	return out
}
