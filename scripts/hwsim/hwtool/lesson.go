package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/classcap/classcap/uplink/control"
)

// Report is what `hwtool lesson` writes: what it saw of the daemon, for the
// host side of the test to judge.
type Report struct {
	Lesson string `json:"lesson"`
	// LED line level (gpio-sim's sim_gpioN/value) before the first tap,
	// while recording, and after the second tap.
	LEDIdle, LEDRecording, LEDAfter string
	// LEDDuringFault is the LED pattern in status while the camera was
	// away (disconnect runs only).
	LEDDuringFault string
	CameraFault    string  // the fault status showed while the camera was away
	VideoGap       bool    // status showed the lesson recording sound alone
	Levels         []Level `json:"levels"` // microphone levels while recording
	Encoder        string  `json:"encoder"`
	Log            []string
}

// Level is one channel's level as status showed it.
type Level struct{ Peak, RMS float64 }

type scenario struct {
	c       *control.Client
	sysDir  string // gpio-sim sysfs directory of the chip
	button  int
	led     int
	rep     Report
	started time.Time
}

func (s *scenario) logf(format string, args ...any) {
	line := fmt.Sprintf("%6.2fs ", time.Since(s.started).Seconds()) + fmt.Sprintf(format, args...)
	fmt.Println("hwtool:", line)
	s.rep.Log = append(s.rep.Log, line)
}

func (s *scenario) status() (control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.c.Status(ctx)
}

// loudest returns each channel's loudest meter window among n status
// reads 100 ms apart (from st on). An emulated machine under load lets the
// loopback player fall behind, and the windows it left silent would read
// low; the loudest is the level of the sound played.
func (s *scenario) loudest(st control.Status, n int) []Level {
	var out []Level
	for i := 0; i < n; i++ {
		if i > 0 {
			time.Sleep(100 * time.Millisecond) // the next meter window
			next, err := s.status()
			if err != nil {
				continue
			}
			st = next
		}
		for c, l := range st.Microphone.Levels {
			if c == len(out) {
				out = append(out, Level{Peak: l.PeakDBFS, RMS: l.RMSDBFS})
			}
			out[c].Peak, out[c].RMS = max(out[c].Peak, l.PeakDBFS), max(out[c].RMS, l.RMSDBFS)
		}
	}
	return out
}

// waitFor polls status until cond holds.
func (s *scenario) waitFor(what string, d time.Duration, cond func(control.Status) bool) (control.Status, error) {
	deadline := time.Now().Add(d)
	var last control.Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := s.status()
		if err == nil && cond(st) {
			return st, nil
		}
		last, lastErr = st, err
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.Marshal(last)
	return last, fmt.Errorf("no %s within %v (status %s, err %v)", what, d, b, lastErr)
}

func (s *scenario) line(n int) string { return filepath.Join(s.sysDir, fmt.Sprintf("sim_gpio%d", n)) }

// tap presses the active-low button through gpio-sim's simulated pull:
// pull-down is pressed, pull-up released.
func (s *scenario) tap() error {
	pull := filepath.Join(s.line(s.button), "pull")
	if err := os.WriteFile(pull, []byte("pull-down"), 0); err != nil {
		return err
	}
	time.Sleep(250 * time.Millisecond)
	s.logf("tap")
	return os.WriteFile(pull, []byte("pull-up"), 0)
}

func (s *scenario) ledValue() string {
	b, err := os.ReadFile(filepath.Join(s.line(s.led), "value"))
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

func lessonCmd(args []string) error {
	fs := flag.NewFlagSet("lesson", flag.ContinueOnError)
	socket := fs.String("socket", "", "classcapd control socket")
	sysDir := fs.String("gpiosys", os.Getenv("HWSIM_GPIOSYS"), "gpio-sim sysfs directory of the chip")
	button := fs.Int("button", 0, "button line")
	ledLine := fs.Int("led", 1, "LED line (one colour)")
	seconds := fs.Float64("seconds", 10, "how long to record")
	camera := fs.String("camera", "/dev/video0", "camera to disconnect")
	disconnectAt := fs.Float64("disconnect-at", 0, "seconds into the lesson to press the camera's Disconnect control (0: never)")
	out := fs.String("out", "", "write the report (JSON) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *socket == "" || *sysDir == "" || *out == "" {
		return errors.New("lesson: -socket, -gpiosys (or HWSIM_GPIOSYS) and -out are required")
	}
	s := &scenario{c: control.NewClient(*socket), sysDir: *sysDir, button: *button, led: *ledLine, started: time.Now()}
	err := s.run(*seconds, *camera, *disconnectAt)
	if err != nil {
		s.logf("FAILED: %v", err)
	}
	b, _ := json.MarshalIndent(s.rep, "", "  ")
	if werr := os.WriteFile(*out, b, 0o644); werr != nil && err == nil {
		err = werr
	}
	return err
}

func (s *scenario) run(seconds float64, camera string, disconnectAt float64) error {
	st, err := s.waitFor("pictures and sound", 90*time.Second, func(st control.Status) bool {
		return st.Camera.Frames > 10 && st.Microphone.Packets > 10 && st.Recorder.State == "idle"
	})
	if err != nil {
		return err
	}
	s.rep.Encoder = st.Camera.Encoder
	s.logf("daemon ready: %d pictures, %d packets, encoder %s, LED %s", st.Camera.Frames, st.Microphone.Packets,
		st.Camera.Encoder, st.LED.Pattern)
	s.rep.LEDIdle = s.ledValue()
	if err := s.tap(); err != nil {
		return err
	}
	st, err = s.waitFor("recording", 30*time.Second, func(st control.Status) bool {
		return st.Recorder.State == "recording" && st.Recorder.Lesson != ""
	})
	if err != nil {
		return err
	}
	s.rep.Lesson = st.Recorder.Lesson
	begin := time.Now()
	s.logf("recording lesson %s", s.rep.Lesson)
	s.rep.LEDRecording = s.ledValue()
	s.rep.Levels = s.loudest(st, 10)
	if disconnectAt > 0 {
		time.Sleep(time.Until(begin.Add(time.Duration(disconnectAt * float64(time.Second)))))
		if err := ctrlSet(camera, "Disconnect", 0); err != nil {
			return err
		}
		s.logf("camera disconnected")
		st, err = s.waitFor("the camera fault and a video gap", 30*time.Second, func(st control.Status) bool {
			return st.Camera.Fault != "" && st.Recorder.VideoGap
		})
		if err != nil {
			return err
		}
		s.rep.CameraFault, s.rep.VideoGap, s.rep.LEDDuringFault = st.Camera.Fault, true, st.LED.Pattern
		s.logf("status: camera fault %q, LED %s, state %s", st.Camera.Fault, st.LED.Pattern, st.Recorder.State)
		// vivid comes back by itself once its last user has closed it (the
		// daemon does on the error), as a camera plugged in again would.
		if _, err = s.waitFor("pictures in the lesson again", 60*time.Second, func(st control.Status) bool {
			return st.Camera.Fault == "" && !st.Recorder.VideoGap && st.Recorder.State == "recording"
		}); err != nil {
			return err
		}
		s.logf("lesson goes on with pictures")
	}
	time.Sleep(time.Until(begin.Add(time.Duration(seconds * float64(time.Second)))))
	if err := s.tap(); err != nil {
		return err
	}
	st, err = s.waitFor("idle after the second tap", 60*time.Second, func(st control.Status) bool {
		return st.Recorder.State == "idle" && st.Recorder.LastLesson == s.rep.Lesson
	})
	if err != nil {
		return err
	}
	s.logf("stopped: %.1f s recorded in %d segments", st.Recorder.Recorded, st.Recorder.Segments)
	s.rep.LEDAfter = s.ledValue()
	return nil
}
