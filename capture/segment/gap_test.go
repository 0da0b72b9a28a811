package segment

import (
	"testing"
	"time"

	"github.com/classcap/classcap/capture/media"
	"github.com/classcap/classcap/capture/mediatest"
)

// A camera away for 7 s in the middle: the sound goes on in segments of the
// usual length, the picture before the gap keeps its own duration, and the
// keyframe after it begins a segment marked as a discontinuity at its true
// time. ffmpeg plays the result with sound throughout.
func TestWriterVideoGap(t *testing.T) {
	aus, vp := mediatest.H264(t, 3, 30, 30) // IDR every second
	dir := t.TempDir()
	var infos []Info
	w, err := New(Config{Dir: dir, SegmentDuration: 2 * time.Second, Video: vp, AudioChannels: 1,
		OnSegment: func(i Info) error { infos = append(infos, i); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	audio := func(from, to time.Duration) {
		for a := from; a < to; a += 20 * time.Millisecond {
			if err := w.WriteAudio(media.AudioPacket{Data: mediatest.SilentOpus, PTS: a, Samples: 960, Channels: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	video := func(base time.Duration) {
		for _, au := range aus {
			au.PTS += base
			if err := w.WriteVideo(au); err != nil {
				t.Fatal(err)
			}
		}
	}
	video(0)
	audio(0, 3*time.Second)
	if err := w.VideoGap(); err != nil {
		t.Fatal(err)
	}
	if got := w.VideoEnd(); got < 2990*time.Millisecond || got > 3010*time.Millisecond {
		t.Fatalf("video ends at %v, want 3 s (the last picture keeps its 1/30 s)", got)
	}
	audio(3*time.Second, 10*time.Second)
	// A picture that is not a keyframe cannot end the gap.
	if err := w.WriteVideo(media.AccessUnit{NALUs: aus[1].NALUs, PTS: 10 * time.Second}); err != ErrNeedKeyframe {
		t.Fatalf("non-IDR after the gap: %v", err)
	}
	video(10 * time.Second)
	audio(10*time.Second, 13*time.Second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	disc := -1
	var end time.Duration
	for i, in := range infos {
		if in.Start < end-time.Millisecond {
			t.Fatalf("segment %d starts at %v, before the previous one ended (%v): %+v", in.Number, in.Start, end, infos)
		}
		end = in.Start + in.Duration
		if in.Duration > 3*time.Second {
			t.Fatalf("segment %d lasts %v: sound alone is cut at the usual length", in.Number, in.Duration)
		}
		if in.Discontinuity {
			if disc >= 0 {
				t.Fatalf("two discontinuities: %+v", infos)
			}
			disc = i
		}
	}
	if disc < 0 || infos[disc].Start != 10*time.Second {
		t.Fatalf("no segment after a discontinuity at 10 s: %+v", infos)
	}
	if end < 12900*time.Millisecond {
		t.Fatalf("segments end at %v, want 13 s", end)
	}
	all := mediatest.Concat(t, dir)
	mediatest.DecodeClean(t, all)
	v, a := mediatest.Durations(t, all)
	if a < 12.9 || v < 12.9 {
		t.Fatalf("ffprobe: video spans %.2f s, audio %.2f s; want 13", v, a)
	}
}
