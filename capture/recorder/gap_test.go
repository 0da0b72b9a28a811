package recorder

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/device/led"
)

func (g *rig) setFault(part, err string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.faults == nil {
		g.faults = map[string]string{}
	}
	if err == "" {
		delete(g.faults, part)
	} else {
		g.faults[part] = err
	}
}

func (g *rig) lastLED() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.leds) == 0 {
		return ""
	}
	return g.leds[len(g.leds)-1]
}

// pumpAudio delivers 20 ms packets from media time from up to to, as a
// microphone would while the camera is away, until cond holds (checked
// every packet) or to is reached.
func (g *rig) pumpAudio(from, to time.Duration, cond func() bool) time.Duration {
	a := from - from%(20*time.Millisecond)
	for ; a < to; a += 20 * time.Millisecond {
		g.audio <- media.AudioPacket{Data: mediatest.SilentOpus, PTS: a, Samples: 960, Channels: 1}
		if cond != nil && cond() {
			break
		}
		time.Sleep(2 * time.Millisecond) // about 10x real time: the recorder's ticker sees the fault
	}
	return a
}

// skip moves the rig's pictures forward by d without delivering them.
func (g *rig) skip(d time.Duration) { g.next += int(d * 30 / time.Second) }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The camera is unplugged in the middle of a lesson: sound goes on, the
// LED shows the error while the camera is away, pictures come back into
// the same lesson after a discontinuity, and lesson.json records the gap.
// ffmpeg plays the lesson (playlist and concatenated file) with sound
// throughout.
func TestCameraLossLeavesAGapInTheSameLesson(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "cli"})
	g.waitState(StateRecording)
	g.pump(120) // the lesson starts at picture 15 (the next keyframe)
	id := g.r.Status().Lesson
	if id == "" {
		t.Fatal("no lesson")
	}
	lostAt := time.Duration(g.next) * time.Second / 30
	g.setFault("camera", "dequeue /dev/video0: capture device lost: no such device")
	end := g.pumpAudio(lostAt, lostAt+20*time.Second, func() bool {
		return g.r.Status().VideoGap && g.r.Status().Fault != ""
	})
	if !g.r.Status().VideoGap {
		t.Fatal("no video gap after the camera fault")
	}
	if l := g.lastLED(); l != led.Error.Name {
		t.Fatalf("LED %s while the camera is away, want %s", l, led.Error.Name)
	}
	// Three more seconds of sound alone, then the camera is back.
	end = g.pumpAudio(end+20*time.Millisecond, end+3*time.Second, nil)
	g.setFault("camera", "")
	g.skip(end - lostAt)
	g.pump(150)
	// The status is a snapshot the recorder refreshes on its ticker.
	deadline := time.Now().Add(10 * time.Second)
	for s := g.r.Status(); s.VideoGap || s.Fault != "" || s.Lesson != id || s.State != StateRecording; s = g.r.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status after the camera came back: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for g.lastLED() != led.Recording.Name {
		if time.Now().After(deadline) {
			t.Fatalf("LED %s after the camera came back", g.lastLED())
		}
		time.Sleep(5 * time.Millisecond)
	}
	m, err := g.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != id {
		t.Fatalf("stopped %s, want %s", m.ID, id)
	}
	if len(m.Gaps) != 1 || m.Gaps[0].Media != lesson.GapVideo {
		t.Fatalf("gaps %+v, want one video gap", m.Gaps)
	}
	gp := m.Gaps[0]
	lostMedia := lostAt.Seconds() // the lesson began with picture 0, started before any picture
	gapLen := (end - lostAt).Seconds()
	if !near(gp.At, lostMedia, 0.1) || gp.Duration < gapLen-0.1 || gp.Duration > gapLen+0.6 {
		t.Fatalf("gap %+v, want at %.2f s for about %.2f s", gp, lostMedia, gapLen)
	}
	disc := 0
	for i, s := range m.Segments {
		if s.Discontinuity {
			disc++
			if !near(s.Start, gp.At+gp.Duration, 0.1) {
				t.Fatalf("segment %d after the gap starts at %.3f, want %.3f", i, s.Start, gp.At+gp.Duration)
			}
		}
	}
	if disc != 1 {
		t.Fatalf("%d segments after a discontinuity, want 1: %+v", disc, m.Segments)
	}
	dir := g.store.Dir(id)
	playlist := filepath.Join(dir, lesson.PlaylistName)
	mediatest.DecodeClean(t, playlist)
	all := mediatest.Concat(t, dir)
	mediatest.DecodeClean(t, all)
	v, a := mediatest.Durations(t, all)
	if !near(a, m.Duration, 0.2) || !near(v, m.Duration, 0.2) {
		t.Fatalf("ffprobe: video %.2f s, audio %.2f s; lesson %.2f s", v, a, m.Duration)
	}
}

// A camera that stalls without a fault counts as lost after
// VideoLossAfter; a lesson stopped while it is away records the gap up to
// the end of the sound.
func TestStopDuringCameraLossRecordsTheGap(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "cli"})
	g.waitState(StateRecording)
	g.pump(90)
	lostAt := time.Duration(g.next) * time.Second / 30
	end := g.pumpAudio(lostAt, lostAt+30*time.Second, func() bool { return g.r.Status().VideoGap })
	if !g.r.Status().VideoGap {
		t.Fatal("no video gap after the camera stalled")
	}
	if f := g.r.Status().Fault; f != "" {
		t.Fatalf("fault %q without a device fault", f)
	}
	m, err := g.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Gaps) != 1 || m.Gaps[0].Media != lesson.GapVideo || m.Gaps[0].Duration <= 0 {
		t.Fatalf("gaps %+v", m.Gaps)
	}
	if !near(m.Gaps[0].At+m.Gaps[0].Duration, m.Duration, 0.1) {
		t.Fatalf("gap %+v does not reach the end of the lesson (%.2f s)", m.Gaps[0], m.Duration)
	}
	_ = end
	mediatest.DecodeClean(t, filepath.Join(g.store.Dir(m.ID), lesson.PlaylistName))
}

// The microphone goes away and comes back: pictures go on, the pause in
// the sound is a gap in lesson.json, and ffmpeg plays the lesson.
func TestMicrophoneLossIsAnAudioGap(t *testing.T) {
	g := newRig(t, t.TempDir(), true)
	ctx := context.Background()
	go g.r.Start(ctx, StartRequest{By: "cli"})
	g.waitState(StateRecording)
	g.pump(60)
	g.setFault("microphone", "read hw:1,0: capture device lost")
	deadline := time.Now().Add(10 * time.Second)
	for g.r.Status().Fault == "" {
		if time.Now().After(deadline) {
			t.Fatal("fault not shown")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l := g.lastLED(); l != led.Error.Name {
		t.Fatalf("LED %s while the microphone is away", l)
	}
	// 60 pictures without sound.
	for i := 0; i < 60; i++ {
		k := g.next
		g.next++
		au := g.aus[k%len(g.aus)]
		au.PTS = time.Duration(k) * time.Second / 30
		g.video <- au
	}
	g.setFault("microphone", "")
	g.pump(60)
	m, err := g.r.Stop(ctx, StopRequest{By: "cli", Reason: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Gaps) != 1 || m.Gaps[0].Media != lesson.GapAudio || !near(m.Gaps[0].Duration, 2, 0.1) {
		t.Fatalf("gaps %+v, want one audio gap of 2 s", m.Gaps)
	}
	if m.Gaps[0].Reason != "microphone lost: read hw:1,0: capture device lost" {
		t.Fatalf("reason %q", m.Gaps[0].Reason)
	}
	mediatest.DecodeClean(t, filepath.Join(g.store.Dir(m.ID), lesson.PlaylistName))
	mediatest.DecodeClean(t, mediatest.Concat(t, g.store.Dir(m.ID)))
}
