package desired

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/classcap/classcap/provisioning/config"
)

var quiet = slog.New(slog.DiscardHandler)

func base(t *testing.T) *config.Box {
	t.Helper()
	b, err := config.ParseBox([]byte("[device]\nid = \"room-101\"\n[hardware]\nprofile = \"sim\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func msg(version int, settings string) []byte {
	return []byte(fmt.Sprintf(`{"v":1,"version":%d,"settings":%s}`, version, settings))
}

func TestApplyRejectKeepLastGood(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Offer(msg(1, `{"video":{"bitrate_kbps":1800}}`), false); r != Applied || err != nil {
		t.Fatalf("version 1: %v %v", r, err)
	}
	if s.Current().Video.BitrateKbps != 1800 || s.Status().Applied != 1 {
		t.Fatalf("after version 1: %d, %+v", s.Current().Video.BitrateKbps, s.Status())
	}
	// The retained message again: ignored.
	if r, _ := s.Offer(msg(1, `{"video":{"bitrate_kbps":1800}}`), false); r != Ignored {
		t.Errorf("same version again: %v", r)
	}
	// An invalid value: refused with the field named, version 1 stays.
	if r, err := s.Offer(msg(2, `{"video":{"bitrate_kbps":5}}`), false); r != Rejected || err != nil {
		t.Fatalf("version 2: %v %v", r, err)
	}
	st := s.Status()
	if st.Applied != 1 || st.Rejected != 2 || st.Field != "video.bitrate_kbps" || st.Error == "" {
		t.Errorf("status after a bad version: %+v", st)
	}
	if s.Current().Video.BitrateKbps != 1800 {
		t.Errorf("bad version changed the configuration: %d", s.Current().Video.BitrateKbps)
	}
	// A malformed payload: an error, nothing changes.
	if _, err := s.Offer([]byte(`{"v":1,"version":"x"}`), false); err == nil {
		t.Error("malformed payload accepted")
	}
	if s.Current().Video.BitrateKbps != 1800 {
		t.Error("malformed payload changed the configuration")
	}
	// Survives a restart.
	s2, err := Open(dir, base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Current().Video.BitrateKbps != 1800 || s2.Status().Applied != 1 {
		t.Errorf("after restart: %d %+v", s2.Current().Video.BitrateKbps, s2.Status())
	}
	// So does the refusal: reported at once, and the retained bad
	// version, delivered again, is not judged again.
	if st := s2.Status(); st.Rejected != 2 || st.Field != "video.bitrate_kbps" || st.Error == "" {
		t.Errorf("refusal after restart: %+v", st)
	}
	if r, _ := s2.Offer(msg(2, `{"video":{"bitrate_kbps":5}}`), false); r != Ignored {
		t.Errorf("the refused version again after a restart: %v", r)
	}
	// The next good version clears the refusal.
	if r, _ := s2.Offer(msg(3, `{"recording":{"visibility":"coaching"}}`), false); r != Applied {
		t.Fatalf("version 3: %v", r)
	}
	if st := s2.Status(); st.Applied != 3 || st.Rejected != 0 || st.Field != "" {
		t.Errorf("status after version 3: %+v", st)
	}
	if c := s2.Current(); c.Recording.Visibility != "coaching" || c.Video.BitrateKbps != 2500 {
		t.Errorf("version 3 replaces version 1's settings: %+v %+v", c.Recording, c.Video)
	}
	s3, err := Open(dir, base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if st := s3.Status(); st.Applied != 3 || st.Rejected != 0 || st.Error != "" {
		t.Errorf("after version 3 and a restart: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, RejectedFile)); !os.IsNotExist(err) {
		t.Errorf("%s kept after a newer version applied: %v", RejectedFile, err)
	}
}

func TestNeverMidLesson(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Offer(msg(4, `{"recording":{"segment_seconds":6}}`), true); r != Pending {
		t.Fatalf("while recording: %v", r)
	}
	if s.Current().Recording.SegmentSeconds != 4 || s.Status().Pending != 4 || s.Status().Applied != 0 {
		t.Errorf("applied mid-lesson: %v %+v", s.Current().Recording.SegmentSeconds, s.Status())
	}
	if _, err := os.Stat(filepath.Join(dir, PendingFile)); err != nil {
		t.Errorf("pending not persisted: %v", err)
	}
	changed, err := s.ApplyPending()
	if err != nil || !changed {
		t.Fatalf("ApplyPending: %v %v", changed, err)
	}
	if s.Current().Recording.SegmentSeconds != 6 || s.Status().Applied != 4 || s.Status().Pending != 0 {
		t.Errorf("after the lesson: %v %+v", s.Current().Recording.SegmentSeconds, s.Status())
	}
	if _, err := os.Stat(filepath.Join(dir, PendingFile)); !os.IsNotExist(err) {
		t.Errorf("pending file left: %v", err)
	}

	// A box that stopped during the lesson applies the pending set at start.
	if r, _ := s.Offer(msg(5, `{"recording":{"segment_seconds":8}}`), true); r != Pending {
		t.Fatal("not pending")
	}
	s2, err := Open(dir, base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Current().Recording.SegmentSeconds != 8 || s2.Status().Applied != 5 {
		t.Errorf("pending after restart: %v %+v", s2.Current().Recording.SegmentSeconds, s2.Status())
	}
}

func TestFileChangedUnderAppliedSet(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, base(t), quiet)
	if r, _ := s.Offer(msg(1, `{"video":{"keyframe_seconds":3}}`), false); r != Applied {
		t.Fatal("not applied")
	}
	// The operator shortens segments in the file: keyframe 3 s no longer fits.
	b := base(t)
	b.Recording.SegmentSeconds = 2
	b.Video.KeyframeSeconds = 2
	s2, err := Open(dir, b, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Current() != b || s2.Status().Applied != 0 {
		t.Errorf("want the file alone, got %+v", s2.Status())
	}
}

// TestSafeMidLesson: a set that changes only settings a running lesson does
// not depend on applies while recording; one that also changes the encoder
// waits whole, and a later safe set replaces it.
func TestSafeMidLesson(t *testing.T) {
	s, err := Open(t.TempDir(), base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	safe := `{"uplink":{"upload_rate_kbps":800,"upload_windows":["18:00-06:00"],"retention_days":30},` +
		`"recording":{"visibility":"coaching","veto_seconds":5}}`
	if r, err := s.Offer(msg(1, safe), true); r != Applied || err != nil {
		t.Fatalf("safe set while recording: %v %v", r, err)
	}
	if c := s.Current(); c.Uplink.UploadRateKbps != 800 || c.Recording.Visibility != "coaching" {
		t.Errorf("safe set not in force: %+v %+v", c.Uplink, c.Recording)
	}
	if r, _ := s.Offer(msg(2, `{"video":{"bitrate_kbps":1800},"uplink":{"upload_rate_kbps":400}}`), true); r != Pending {
		t.Fatalf("encoder change while recording: %v", r)
	}
	if c := s.Current(); c.Uplink.UploadRateKbps != 800 || c.Video.BitrateKbps != 2500 {
		t.Errorf("a waiting set applied in part: %+v %+v", c.Uplink, c.Video)
	}
	if st := s.Status(); st.Applied != 1 || st.Pending != 2 {
		t.Errorf("status: %+v", st)
	}
	// Version 3 (the whole desired configuration, without the bitrate)
	// needs no wait: it applies and the pending version 2 is dropped.
	if r, _ := s.Offer(msg(3, `{"uplink":{"upload_rate_kbps":400}}`), true); r != Applied {
		t.Fatalf("version 3: %v", r)
	}
	if st := s.Status(); st.Applied != 3 || st.Pending != 0 {
		t.Errorf("status after version 3: %+v", st)
	}
	if changed, err := s.ApplyPending(); changed || err != nil {
		t.Errorf("version 2 applied after version 3: %v %v", changed, err)
	}
	for _, tc := range []struct {
		settings string
		want     string
	}{
		{`{"video":{"encoder":"software"}}`, "video"},
		{`{"audio":{"bitrate_kbps":64}}`, "audio"},
		{`{"audio":{"array":{"beamform":false}}}`, "audio"},
		{`{"recording":{"segment_seconds":6}}`, "recording.segment_seconds"},
		{`{"recording":{"min_free_mb":50}}`, ""},
	} {
		b, err := base(t).WithSettings([]byte(tc.settings))
		if err != nil {
			t.Fatalf("%s: %v", tc.settings, err)
		}
		if got := strings.Join(Waits(base(t), b), ","); got != tc.want {
			t.Errorf("Waits(%s) = %q, want %q", tc.settings, got, tc.want)
		}
	}
}

// A set the box's own check refuses (here: a hardware encoder it does not
// have) is refused with the field named, even while a lesson records, and
// the configuration it runs with stays; a later set the check lets through
// applies.
func TestCheckRefuses(t *testing.T) {
	s, err := Open(t.TempDir(), base(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	var saw [2]string
	s.SetCheck(func(running, next *config.Box) error {
		saw = [2]string{running.Video.Encoder, next.Video.Encoder}
		if next.Video.Encoder == "hardware" {
			return fmt.Errorf("check: %w", &config.FieldError{Field: "video.encoder", Reason: "no hardware H.264 encoder on this box"})
		}
		return nil
	})
	if r, err := s.Offer(msg(1, `{"video":{"encoder":"hardware"}}`), true); r != Rejected || err != nil {
		t.Fatalf("version 1: %v %v", r, err)
	}
	if saw != [2]string{"auto", "hardware"} {
		t.Errorf("the check saw %v", saw)
	}
	st := s.Status()
	if st.Rejected != 1 || st.Pending != 0 || st.Applied != 0 || st.Field != "video.encoder" || !strings.Contains(st.Error, "no hardware") {
		t.Errorf("status after a refused set: %+v", st)
	}
	if e := s.Current().Video.Encoder; e != "auto" {
		t.Errorf("encoder %q after a refused set", e)
	}
	if r, err := s.Offer(msg(2, `{"video":{"encoder":"software"}}`), false); r != Applied || err != nil {
		t.Fatalf("version 2: %v %v", r, err)
	}
	if st := s.Status(); st.Applied != 2 || st.Rejected != 0 || s.Current().Video.Encoder != "software" {
		t.Errorf("after a good set: %+v, encoder %q", st, s.Current().Video.Encoder)
	}
}
