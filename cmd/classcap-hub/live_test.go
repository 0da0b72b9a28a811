package main

// End to end live view: the hub (in this process, embedded broker) as the
// WHEP endpoint, the real classcapd with simulated hardware, and Go WebRTC
// viewers (pion) that post their offers to the hub.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classcap/classcap/capture/live/whep"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/device/sim"
)

// startLiveBox registers id at the hub and runs classcapd for it (320x240
// at 15 fps, 2 s segments, 1 s veto window) with extra configuration
// appended, until the test ends.
func startLiveBox(t *testing.T, h *testHub, id, extra string) *simBox {
	t.Helper()
	return runSimBox(t, h, id, `
[hardware.sim]
width = 320
height = 240
fps = 15.0
mic_channels = 2
[video]
keyframe_seconds = 2.0
[recording]
segment_seconds = 2.0
min_free_mb = 10
veto_seconds = 1
`, extra)
}

// whepRefusal posts an offer and returns the refusal's status and code.
func whepRefusal(t *testing.T, h *testHub, device, token string) (int, string) {
	t.Helper()
	c := &whep.Client{Endpoint: h.http + "/live/" + device + "/whep", Token: token}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := whep.Dial(ctx, c.Signal, whep.Options{Loopback: true})
	if err == nil {
		v.Close()
		t.Fatalf("live view of %s was not refused", device)
	}
	var we *whep.Error
	if !errors.As(err, &we) {
		t.Fatalf("live view of %s: %v", device, err)
	}
	var body struct{ Code string }
	_ = json.Unmarshal([]byte(we.Body), &body)
	return we.Status, body.Code
}

type hubView struct {
	Session string  `json:"session"`
	Viewer  string  `json:"viewer"`
	Lesson  string  `json:"lesson"`
	Seconds float64 `json:"seconds"`
	Reason  string  `json:"reason"`
	Video   uint64  `json:"video_frames"`
	Dropped uint64  `json:"dropped"`
	Live    bool    `json:"live"`
}

func TestLiveViewEndToEnd(t *testing.T) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	h := startHub(t)
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	box := startLiveBox(t, h, "room-live", `
[live]
loopback = true
interfaces = ["lo"]
queue_frames = 15
`)
	off := startLiveBox(t, h, "room-off", `
[live]
allow = "off"
loopback = true
interfaces = ["lo"]
`)
	device := func(id string) map[string]any {
		t.Helper()
		_, m := h.call(t, "GET", "/api/v1/devices/"+id, coach, "")
		return m
	}
	for _, id := range []string{box.id, off.id} {
		waitUntil(t, id+" is online and idle at the hub", func() bool {
			m := device(id)
			return m["online"] == true && m["recorder"] == "idle"
		})
	}
	endpoint := h.http + "/live/" + box.id + "/whep"

	// The endpoint's own refusals: no token, not SDP, a PATCH without a
	// fragment.
	if st, code := whepRefusal(t, h, box.id, ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s", st, code)
	}
	if st, m := h.call(t, "POST", "/live/"+box.id+"/whep", coach, `{"sdp":"v=0"}`); st != http.StatusUnsupportedMediaType {
		t.Fatalf("JSON body: %d %v", st, m)
	}
	if st, m := h.call(t, "PATCH", "/live/"+box.id+"/whep/abc", coach, "a=candidate"); st != http.StatusUnsupportedMediaType {
		t.Fatalf("PATCH without a trickle ICE fragment: %d %v", st, m)
	}
	// Consent: "off" always refuses; "recording" (the default) while idle.
	if st, code := whepRefusal(t, h, off.id, coach); st != http.StatusForbidden || code != "live_off" {
		t.Fatalf("allow off: %d %s", st, code)
	}
	if st, code := whepRefusal(t, h, box.id, coach); st != http.StatusForbidden || code != "live_off" {
		t.Fatalf("allow recording, idle: %d %s", st, code)
	}

	// Record, and watch with three viewers, one of them stalled.
	if st, m := h.call(t, "POST", "/api/v1/devices/"+box.id+"/record/start", coach, ""); st != http.StatusOK {
		t.Fatalf("record start: %d %v", st, m)
	}
	var lessonID string
	// The recorder reports "recording" from the start on, and the lesson
	// once the first keyframe opened it.
	waitUntil(t, "the hub sees the box recording a lesson", func() bool {
		d := device(box.id)
		lessonID, _ = d["lesson"].(string)
		return d["recorder"] == "recording" && lessonID != ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var viewers []*whep.Viewer
	var clients []*whep.Client
	for i := range 3 {
		c := &whep.Client{Endpoint: endpoint, Token: coach}
		v, err := whep.Dial(ctx, c.Signal, whep.Options{Loopback: true, Stalled: i == 2})
		if err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
		defer v.Close()
		if !strings.HasPrefix(c.Location(), h.http+"/live/"+box.id+"/whep/") {
			t.Fatalf("Location %q", c.Location())
		}
		viewers, clients = append(viewers, v), append(clients, c)
	}
	for i, v := range viewers[:2] {
		waitUntil(t, fmt.Sprintf("viewer %d receives pictures and sound", i), func() bool {
			c := v.Counts()
			return c.Keyframes >= 1 && c.VideoFrames >= 15 && c.AudioPackets >= 50
		})
	}
	stalled := clients[2].Location()[strings.LastIndex(clients[2].Location(), "/")+1:]
	var lv struct {
		Viewers []struct {
			Session string
			Viewer  string
			Dropped uint64
		}
	}
	waitUntil(t, "the box's state at the hub counts the stalled viewer's drops", func() bool {
		st, _ := device(box.id)["state"].(map[string]any)
		b, _ := json.Marshal(st["live"])
		if json.Unmarshal(b, &lv) != nil {
			return false
		}
		for _, v := range lv.Viewers {
			if v.Session == stalled && v.Dropped > 0 {
				return true
			}
		}
		return false
	})
	if len(lv.Viewers) != 3 || lv.Viewers[0].Viewer != "coach:alice" {
		t.Fatalf("live state %+v", lv)
	}
	if out, err := exec.Command(box.ctl, "-socket", box.socket, "status").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "watched-recording") || !strings.Contains(string(out), "3 viewers") {
		t.Fatalf("status does not show the watched LED and the viewers: %v\n%s", err, out)
	}

	// DELETE ends the first view.
	if st, err := clients[0].Delete(ctx); err != nil || st != http.StatusOK {
		t.Fatalf("DELETE: %d %v", st, err)
	}
	if st, err := clients[0].Delete(ctx); err != nil || st != http.StatusNotFound {
		t.Fatalf("DELETE again: %d %v", st, err)
	}
	// A hold ends the others and refuses new ones for the rest of the lesson.
	before := viewers[1].Counts().VideoFrames
	if out, err := exec.Command(box.ctl, "-socket", box.socket, "sim", "hold", "3").CombinedOutput(); err != nil {
		t.Fatalf("sim hold: %v\n%s", err, out)
	}
	if viewers[1].Counts().VideoFrames <= before {
		t.Errorf("viewer 1 received nothing more while the lesson recorded")
	}
	if st, code := whepRefusal(t, h, box.id, coach); st != http.StatusForbidden || code != "declined" {
		t.Fatalf("after the hold: %d %s", st, code)
	}
	if st, m := h.call(t, "POST", "/api/v1/devices/"+box.id+"/record/stop", coach, ""); st != http.StatusOK {
		t.Fatalf("record stop: %d %v", st, m)
	}

	// The view log at the hub: who, how long, why it ended.
	var log struct{ Views []hubView }
	waitUntil(t, "the hub lists the three views as ended", func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/"+box.id+"/views", coach, "")
		b, _ := json.Marshal(m)
		if json.Unmarshal(b, &log) != nil || len(log.Views) != 3 {
			return false
		}
		for _, v := range log.Views {
			if v.Live {
				return false
			}
		}
		return true
	})
	reasons := map[string]int{}
	for _, v := range log.Views {
		if v.Viewer != "coach:alice" || v.Seconds <= 0 || v.Lesson != lessonID {
			t.Errorf("view %+v", v)
		}
		reasons[v.Reason]++
		if v.Session == stalled && v.Dropped == 0 {
			t.Errorf("the stalled view's log shows no drops: %+v", v)
		}
	}
	if reasons["stopped by coach:alice"] != 1 || reasons["button hold"] < 1 {
		t.Errorf("reasons %v", reasons)
	}

	// The lesson lost no picture to the viewers and decodes cleanly.
	waitUntil(t, "the box is idle again", func() bool { return device(box.id)["recorder"] == "idle" })
	lessonDir := filepath.Join(box.data, "lessons", lessonID)
	whole := mediatest.Concat(t, lessonDir)
	mediatest.DecodeClean(t, whole)
	mediatest.DecodeClean(t, filepath.Join(lessonDir, "index.m3u8"))
	// Every picture the camera took during the lesson is in it: the frame
	// numbers burned in by the simulated camera follow each other, except
	// where the camera itself skipped frames because the machine starved it
	// (it logs those); the viewers cost the recording nothing.
	skipped := map[uint64]bool{}
	for _, m := range regexp.MustCompile(`frames skipped" component=camera from_pts_ms=(\d+) frames=(\d+)`).
		FindAllStringSubmatch(box.log.String(), -1) {
		ms, _ := strconv.ParseUint(m[1], 10, 64)
		k, _ := strconv.ParseUint(m[2], 10, 64)
		first := uint64(math.Round(float64(ms) * 15 / 1000))
		for n := first; n < first+k; n++ {
			skipped[n] = true
		}
	}
	frames := frameNumbers(t, whole, 320, 240)
	if len(frames) < 30 {
		t.Fatalf("the lesson has %d pictures", len(frames))
	}
	for i := 1; i < len(frames); i++ {
		if frames[i] <= frames[i-1] {
			t.Fatalf("picture %d is frame %d after frame %d", i, frames[i], frames[i-1])
		}
		for n := frames[i-1] + 1; n < frames[i]; n++ {
			if !skipped[n] {
				t.Errorf("frame %d is missing from the lesson (between pictures %d and %d), and the camera took it", n, i-1, i)
			}
		}
	}
}

// TestLiveViewTrickleICE: a viewer posts its offer before gathering and
// trickles its candidates with PATCH; the hub relays them to the box as
// live.candidates, and the box's state counts them for the view.
func TestLiveViewTrickleICE(t *testing.T) {
	h := startHub(t)
	alice := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	bob := h.verb(t, "token", "create", "-role", "coach", "-name", "bob")
	box := startLiveBox(t, h, "room-trickle", liveExtra)
	viewers := func() []map[string]any {
		t.Helper()
		_, m := h.call(t, "GET", "/api/v1/devices/"+box.id, alice, "")
		st, _ := m["state"].(map[string]any)
		lv, _ := st["live"].(map[string]any)
		vs, _ := lv["viewers"].([]any)
		out := make([]map[string]any, 0, len(vs))
		for _, v := range vs {
			if m, ok := v.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	waitUntil(t, box.id+" is online at the hub", func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/"+box.id, alice, "")
		return m["online"] == true
	})

	c := &whep.Client{Endpoint: h.http + "/live/" + box.id + "/whep", Token: alice}
	var offered string
	var patches atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := whep.Dial(ctx, func(ctx context.Context, offer string) (string, error) {
		offered = offer
		return c.Signal(ctx, offer)
	}, whep.Options{Loopback: true, Trickle: func(ctx context.Context, frag string) error {
		patches.Add(1)
		return c.Trickle(ctx, frag) // an error unless 204
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if strings.Contains(offered, "a=candidate") {
		t.Fatalf("the trickling viewer's offer carries candidates:\n%s", offered)
	}
	waitUntil(t, "the viewer receives pictures and sound", func() bool {
		n := v.Counts()
		return n.Keyframes >= 1 && n.VideoFrames >= 15 && n.AudioPackets >= 50
	})
	select {
	case <-v.TrickleDone():
	case <-ctx.Done():
		t.Fatal("the viewer did not finish trickling its candidates")
	}
	if err := v.TrickleErr(); err != nil || v.Trickled() == 0 || patches.Load() != int64(v.Trickled())+1 {
		t.Fatalf("%d PATCHes for %d candidates and the end: %v", patches.Load(), v.Trickled(), err)
	}
	t.Logf("%d candidates trickled in %d PATCHes, all 204", v.Trickled(), patches.Load())
	session := c.Location()[strings.LastIndex(c.Location(), "/")+1:]
	waitUntil(t, "the box's state counts the trickled candidates of the view", func() bool {
		for _, x := range viewers() {
			if x["session"] == session {
				n, _ := x["remote_candidates"].(float64)
				return uint64(n) == v.Trickled()
			}
		}
		return false
	})
	if out, err := exec.Command(box.ctl, "-socket", box.socket, "status").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), fmt.Sprintf("%d candidates trickled", v.Trickled())) {
		t.Fatalf("status does not show the trickled candidates: %v\n%s", err, out)
	}

	// Refusals.
	patch := func(token, session, ctype, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("PATCH", h.http+"/live/"+box.id+"/whep/"+session, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Code
	}
	ufrag := regexp.MustCompile(`a=ice-ufrag:(\S+)`).FindStringSubmatch(offered)[1]
	frag := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:x\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n"
	for _, tt := range []struct {
		name, token, session, ctype, body string
		status                            int
		code                              string
	}{
		{"wrong content type", alice, session, "application/sdp", frag, http.StatusUnsupportedMediaType, "bad_content_type"},
		{"unknown session", alice, "0123456789abcdef", "application/trickle-ice-sdpfrag", frag, http.StatusNotFound, "unknown_session"},
		{"ICE restart", alice, session, "application/trickle-ice-sdpfrag", strings.Replace(frag, ufrag, "restart"+ufrag, 1),
			http.StatusUnprocessableEntity, "ice_restart"},
		{"another coach's view", bob, session, "application/trickle-ice-sdpfrag", frag, http.StatusForbidden, "not_your_view"},
	} {
		if st, code := patch(tt.token, tt.session, tt.ctype, tt.body); st != tt.status || code != tt.code {
			t.Errorf("PATCH, %s: %d %s, want %d %s", tt.name, st, code, tt.status, tt.code)
		}
	}
	if st, err := c.Delete(ctx); err != nil || st != http.StatusOK {
		t.Fatalf("DELETE: %d %v", st, err)
	}
}

// frameNumbers decodes file and reads the simulated camera's frame number
// from each picture.
func frameNumbers(t *testing.T, file string, w, h int) []uint64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", file, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo",
		"-pix_fmt", "yuv420p", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode %s: %v", file, err)
	}
	size := w*h + 2*(w/2)*(h/2)
	if len(out)%size != 0 {
		t.Fatalf("decoded %d bytes: not whole %dx%d pictures", len(out), w, h)
	}
	var ns []uint64
	for i := 0; i+size <= len(out); i += size {
		f := out[i : i+size]
		img := &image.YCbCr{Y: f[:w*h], Cb: f[w*h : w*h+w*h/4], Cr: f[w*h+w*h/4:], YStride: w, CStride: w / 2,
			SubsampleRatio: image.YCbCrSubsampleRatio420, Rect: image.Rect(0, 0, w, h)}
		n, ok := sim.ReadFrameCounter(img)
		if !ok {
			t.Fatalf("picture %d of %s: no frame number", len(ns), file)
		}
		ns = append(ns, n)
	}
	return ns
}
