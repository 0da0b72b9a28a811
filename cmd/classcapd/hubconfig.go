package main

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/classcap/classcap/capture/pipeline"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/pace"
	"github.com/classcap/classcap/uplink/uploader"
)

// The hub's configuration in the running daemon. desired.Store decides
// what applies when (a set that changes the encoders or the segment length
// waits for the lesson to end); configLoop hands each applied set to the
// components:
//
//   - uploader: concurrency, bandwidth cap, upload windows, retention, at once;
//   - recorder: default visibility, segment length, min_free_mb, for the
//     next lesson; veto_seconds for the next remote start;
//   - the camera's encoder (raw cameras): bitrate and keyframe interval,
//     reopened at the next picture (the set waited for the lesson to end);
//   - the audio half of the pipeline: Opus channels, bitrate, complexity and
//     the array chain, restarted at once (the set waited for the lesson to
//     end), and the recorder's audio parameters with them;
//   - audio.keep_raw: from the next lesson (the set waited for the lesson
//     to end);
//   - live view: the ICE servers and transport policy, for the next viewer;
//   - video.encoder (raw cameras): the camera half of the pipeline is
//     restarted at once (the set waited for the lesson to end) with the
//     encoder chosen anew; a set asking for a hardware encoder the box does
//     not have is refused on arrival (checkEncoder), and should the choice
//     fail all the same, the running encoder stays.

// encoderSlot holds the encoder of the running raw camera (nil for a
// camera that encodes by itself).
type encoderSlot struct {
	mu sync.Mutex
	c  *pipeline.EncoderChoice
}

func (s *encoderSlot) set(c *pipeline.EncoderChoice) { s.mu.Lock(); s.c = c; s.mu.Unlock() }

func (s *encoderSlot) get() *pipeline.EncoderChoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// recording reports whether a lesson records, starts, or waits out a
// remote start's veto window.
func (d *daemon) recording() bool {
	s := d.recorder.Status()
	return s.State == recorder.StateRecording || s.State == recorder.StateStopping ||
		s.Lesson != "" || s.StartedBy != "" || s.RemoteStart != nil
}

// configLoop applies a set left pending once no lesson records, and hands
// every newly applied set to the components.
func (d *daemon) configLoop(ctx context.Context) error {
	log := d.log.With("component", "config")
	// While a set waits for the lesson to end, look once a second too: a
	// lesson can end without a notice (offline box, remote start cancelled).
	// Otherwise no timer wakes the daemon for it.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	ticking := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.cfgKick:
		case <-t.C:
		}
		if d.desired.Status().Pending != 0 && !d.recording() {
			if _, err := d.desired.ApplyPending(); err != nil {
				log.Error("apply the configuration that waited for the lesson", "err", err)
			}
		}
		if v := d.desired.Status().Applied; v != d.inForce {
			d.applyConfig(ctx, d.desired.Current())
			d.inForce = v
		}
		if pending := d.desired.Status().Pending != 0; pending != ticking {
			if ticking = pending; ticking {
				t.Reset(time.Second)
			} else {
				t.Stop()
			}
		}
	}
}

// applyConfig hands c's settings to the running components.
func (d *daemon) applyConfig(ctx context.Context, c *config.Box) {
	log := d.log.With("component", "config")
	if p, err := uploadPolicy(c); err != nil {
		log.Error("upload policy", "err", err) // validated: cannot happen
	} else {
		d.uploader.SetPolicy(p)
	}
	if a := d.audio.Load(); !reflect.DeepEqual(c.Audio, *a) {
		was, now := *a, c.Audio
		was.KeepRaw = now.KeepRaw // the raw audio alone needs no restart
		if arr, err := arrayConfig(c); err != nil {
			log.Error("audio.array", "err", err) // validated: cannot happen
		} else {
			if !reflect.DeepEqual(was, now) {
				d.pipeline.SetAudio(pipeline.AudioSettings{Channels: c.Audio.Channels, BitrateBps: c.Audio.BitrateKbps * 1000,
					Complexity: c.Audio.Complexity, Array: arr})
			}
			d.audio.Store(&now) // keep_raw: the raw sink looks at it for every block
		}
	}
	if err := d.recorder.Reconfigure(ctx, recorderSettings(c, d.audio.Load())); err != nil && ctx.Err() == nil {
		log.Error("recorder settings", "err", err)
	}
	d.live.SetICE(liveICE(c.Live))
	if c.Video.Encoder != *d.videoMode.Load() {
		d.switchEncoder(c)
	}
	if e := d.encoder.get(); e != nil {
		e.SetParams(c.Video.BitrateKbps*1000, c.KeyframeInterval())
	}
	log.Info("hub configuration in force", "version", d.desired.Status().Applied,
		"visibility", c.Recording.Visibility, "video_kbps", c.Video.BitrateKbps, "upload_kbps", c.Uplink.UploadRateKbps)
}

// videoConfig is the configuration the camera half opens with: the hub's
// current one, with the encoder choice the camera half runs with.
func (d *daemon) videoConfig() *config.Box {
	c := *d.desired.Current()
	c.Video.Encoder = *d.videoMode.Load()
	return &c
}

// switchEncoder restarts the camera half of the pipeline with c's
// video.encoder, chosen anew (the hardware encoder probed for). If no
// encoder can be chosen the running one stays, and the error is logged.
func (d *daemon) switchEncoder(c *config.Box) {
	log := d.log.With("component", "config")
	was, mode := *d.videoMode.Load(), c.Video.Encoder
	keep := func(err error) {
		log.Error("video.encoder cannot be applied; the running encoder stays", "video_encoder", mode,
			"encoder", d.pipeline.Encoder(), "err", err)
	}
	switch {
	case d.simVideo != nil:
		v, err := d.simVideo(c)
		if err != nil {
			keep(err)
			return
		}
		d.videoMode.Store(&mode)
		d.pipeline.SetVideo(v)
	case d.encoder.get() != nil: // a raw V4L2 camera: opened again, with the new choice
		if _, err := pipeline.ChooseEncoder(encoderConfig(c, 0), nil); err != nil {
			keep(err)
			return
		}
		d.videoMode.Store(&mode)
		d.pipeline.SetVideo(nil)
	default: // a camera that encodes H.264 itself, or none yet: the next raw camera opens with it
		d.videoMode.Store(&mode)
		log.Info("video.encoder changed; the camera in use is not encoded by the box", "video_encoder", mode,
			"was", was, "encoder", d.pipeline.Encoder())
		return
	}
	log.Info("video.encoder changed; camera and encoder restarted", "video_encoder", mode, "was", was)
}

// recorderSettings are c's recorder settings, with the audio parameters the
// pipeline runs with (running), which lesson.json records.
func recorderSettings(c *config.Box, running *config.AudioSection) recorder.Settings {
	return recorder.Settings{
		SegmentDuration:   c.SegmentDuration(),
		DefaultVisibility: c.Recording.Visibility,
		MinFreeBytes:      uint64(c.Recording.MinFreeMB) << 20,
		StopFreeBytes:     uint64(c.Recording.MinFreeMB) << 20 / 5,
		AudioChannels:     running.Channels,
		AudioBitrateBps:   running.BitrateKbps * 1000,
	}
}

// uploadPolicy is c's [uplink] upload policy.
func uploadPolicy(c *config.Box) (uploader.Policy, error) {
	windows, err := pace.ParseWindows(c.Uplink.UploadWindows)
	if err != nil {
		return uploader.Policy{}, fmt.Errorf("uplink.upload_windows: %w", err)
	}
	return uploader.Policy{
		Concurrency:        c.Uplink.UploadConcurrency,
		Rate:               c.Uplink.UploadRateKbps * 1000 / 8,
		Windows:            windows,
		RetentionDays:      c.Uplink.RetentionDays,
		RetentionFreeBytes: c.Uplink.RetentionMinFreeMB << 20,
	}, nil
}
