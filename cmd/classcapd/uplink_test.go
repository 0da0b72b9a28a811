package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/mediatest"
	"github.com/classcap/classcap/uplink/brokertest"
	"github.com/classcap/classcap/uplink/wire"
)

// testHub publishes commands to the box and collects what it says.
type testHub struct {
	t  *testing.T
	c  mqtt.Client
	mu sync.Mutex
	in map[wire.Kind][][]byte
}

func newTestHub(t *testing.T, url string) *testHub {
	h := &testHub{t: t, in: map[wire.Kind][][]byte{}}
	h.c = mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("e2e-hub").SetProtocolVersion(4))
	if tok := h.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("hub connect: %v", tok.Error())
	}
	if tok := h.c.Subscribe(wire.Root+"/room-101/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		if _, k, err := wire.ParseTopic(m.Topic()); err == nil {
			h.mu.Lock()
			h.in[k] = append(h.in[k], append([]byte(nil), m.Payload()...))
			h.mu.Unlock()
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("hub subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { h.c.Disconnect(100) })
	return h
}

func (h *testHub) command(id, typ, args string) {
	h.t.Helper()
	if args == "" {
		args = "{}"
	}
	b := fmt.Appendf(nil, `{"v":1,"id":%q,"type":%q,"expires_at":%q,"ttl_ms":60000,"args":%s}`,
		id, typ, wire.FormatTime(time.Now().Add(time.Minute)), args)
	if _, err := wire.DecodeCommand(b); err != nil {
		h.t.Fatal(err)
	}
	if tok := h.c.Publish(wire.CmdTopic("room-101"), 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		h.t.Fatalf("publish: %v", tok.Error())
	}
}

func (h *testHub) reply(b *box, id string) wire.Reply {
	h.t.Helper()
	var r wire.Reply
	b.waitFor("the reply to "+id, 30*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, p := range h.in[wire.KindReply] {
			if rr, err := wire.DecodeReply(p); err == nil && rr.ID == id {
				r = rr
				return true
			}
		}
		return false
	})
	return r
}

func (h *testHub) events() []wire.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []wire.Event
	for _, p := range h.in[wire.KindEvent] {
		e, err := wire.DecodeEvent(p)
		if err != nil {
			h.t.Errorf("invalid event %s: %v", p, err)
			continue
		}
		out = append(out, e)
	}
	return out
}

// A coach starts and stops a recording through MQTT: the teacher sees the
// request on the LED first, the lesson is playable, the hub hears every
// event; a hold of the button declines the next request.
func TestRemoteStartStopOverMQTT(t *testing.T) {
	m := brokertest.Start(t)
	h := newTestHub(t, m.URL())
	b := newBox(t, fmt.Sprintf("veto_seconds = 3\n[uplink]\nbroker = %q\n", m.URL()))
	b.start()
	b.waitFor("the uplink", 20*time.Second, func() bool { u := b.status().Uplink; return u != nil && u.Connected })
	if out := b.ctl(false, "status"); !strings.Contains(out, "uplink     connected to "+m.URL()) {
		t.Fatalf("status does not show the uplink:\n%s", out)
	}

	h.command("start-1", wire.TypeRecordStart, `{"by":"coach:alice","visibility":"coaching"}`)
	b.waitFor("the request on the LED", 20*time.Second, func() bool {
		s := b.status()
		return s.Recorder.RemoteStart != nil && s.LED.Pattern == "remote-start-pending"
	})
	if s := b.status(); s.Recorder.State != "idle" || s.Recorder.Lesson != "" {
		t.Fatalf("recording began before the veto window ended: %+v", s.Recorder)
	}
	r := h.reply(b, "start-1")
	var res wire.RecordStartResult
	if err := r.DecodeResult(&res); !r.OK || err != nil || res.VetoWaitedMS < 3000 {
		t.Fatalf("start reply %+v (%+v, %v)", r, res, err)
	}
	b.waitFor("4 s of recording", 30*time.Second, func() bool { return b.status().Recorder.Recorded >= 4 })
	h.command("stop-1", wire.TypeRecordStop, `{"by":"coach:alice"}`)
	if r := h.reply(b, "stop-1"); !r.OK {
		t.Fatalf("stop reply %+v", r)
	}
	meta := b.meta(res.Lesson)
	if meta.State != lesson.StateComplete || meta.StartedBy != "hub:coach:alice" || meta.Visibility != "coaching" ||
		meta.Stop == nil || meta.Stop.By != "hub:coach:alice" {
		t.Fatalf("lesson.json %+v", meta)
	}
	playlist := filepath.Join(b.lessonDir(res.Lesson), lesson.PlaylistName)
	mediatest.DecodeClean(t, playlist)
	checkAV(t, playlist)

	// Events: started, each segment once, stopped.
	b.waitFor("the lesson.stopped event", 20*time.Second, func() bool {
		ev := h.events()
		return len(ev) > 0 && ev[len(ev)-1].Type == wire.EventLessonStopped
	})
	ev := h.events()
	var segs []string
	for _, e := range ev[1 : len(ev)-1] {
		if e.Type == wire.EventSegmentClosed {
			segs = append(segs, e.Segment.Name)
		}
	}
	if ev[0].Type != wire.EventLessonStarted || ev[0].Lesson.ID != res.Lesson || len(segs) != len(meta.Segments) {
		t.Fatalf("events %+v, segments %v vs %d in lesson.json", ev, segs, len(meta.Segments))
	}
	for i, e := range ev {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}

	// Teacher first: a hold during the window declines the request.
	h.command("start-2", wire.TypeRecordStart, `{"by":"coach:bob"}`)
	b.waitFor("the second request on the LED", 20*time.Second, func() bool { return b.status().Recorder.RemoteStart != nil })
	b.ctl(false, "sim", "hold", "2.2")
	if r := h.reply(b, "start-2"); r.OK || r.Code != wire.CodeDeclined || r.Error != "declined by the teacher" {
		t.Fatalf("declined reply %+v", r)
	}
	if s := b.status(); s.Recorder.State != "idle" || s.Recorder.LastLesson != res.Lesson {
		t.Fatalf("after the decline: %+v", s.Recorder)
	}
	// Every state the box published is valid, and the latest is current.
	h.mu.Lock()
	states := h.in[wire.KindState]
	h.mu.Unlock()
	for _, p := range states {
		if _, err := wire.DecodeState(p); err != nil {
			t.Fatalf("the box published an invalid state %s: %v", p, err)
		}
	}
	b.waitFor("the idle state", 20*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		st, err := wire.DecodeState(h.in[wire.KindState][len(h.in[wire.KindState])-1])
		return err == nil && st.Online && st.Recorder.State == "idle" && st.Recorder.LastLesson == res.Lesson && st.Version != ""
	})
}

// The state the daemon reports is always one the hub accepts.
func TestLinkStateIsValid(t *testing.T) {
	for _, v := range []float64{0, -3, -200, -1e9, math.Inf(-1), math.NaN(), 4} {
		if got := dbfs(v); got > 0 || got < -200 || math.IsNaN(got) {
			t.Fatalf("dbfs(%v) = %v", v, got)
		}
	}
}
