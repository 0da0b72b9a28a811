package wire

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTopicRoundTrip(t *testing.T) {
	for _, dev := range []string{"room-101", "a", "R.2_b-c", strings.Repeat("x", MaxDeviceIDLen)} {
		for _, k := range Kinds {
			topic := Topic(dev, k)
			if want := "classcap/v1/" + dev + "/" + string(k); topic != want {
				t.Fatalf("Topic(%q, %q) = %q, want %q", dev, k, topic, want)
			}
			d, kind, err := ParseTopic(topic)
			if err != nil || d != dev || kind != k {
				t.Fatalf("ParseTopic(%q) = %q, %q, %v", topic, d, kind, err)
			}
		}
	}
	if got := DeviceFilter("room-101"); got != "classcap/v1/room-101/#" {
		t.Fatalf("DeviceFilter = %q", got)
	}
	if got := KindFilter(KindState); got != "classcap/v1/+/state" {
		t.Fatalf("KindFilter = %q", got)
	}
}

func TestParseTopicErrors(t *testing.T) {
	for _, tc := range []struct{ topic, want string }{
		{"classcap/v2/room-101/state", "does not start with classcap/v1/"},
		{"classcap/v1/room-101", "no kind"},
		{"classcap/v1/+/state", "device id"},
		{"classcap/v1/room-101/state/extra", "unknown kind"},
		{"classcap/v1/room-101/status", `unknown kind "status"`},
		{"classcap/v1//state", "device id is empty"},
		{"", "does not start"},
	} {
		_, _, err := ParseTopic(tc.topic)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTopic(%q) = %v, want an error containing %q", tc.topic, err, tc.want)
		}
	}
}

func TestValidateDeviceID(t *testing.T) {
	for _, id := range []string{"room-101", "R2", "a.b_c-d", "0"} {
		if err := ValidateDeviceID(id); err != nil {
			t.Errorf("ValidateDeviceID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "-room", ".hidden", "room/101", "room+", "room#", "room 101", "räum",
		"a\x00b", strings.Repeat("x", MaxDeviceIDLen+1), "..", "_x"} {
		if err := ValidateDeviceID(id); err == nil {
			t.Errorf("ValidateDeviceID(%q) accepted", id)
		}
	}
}

func TestTopicPanicsOnBadID(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Topic with a wildcard in the id did not panic")
		}
	}()
	Topic("room/#", KindCmd)
}

func TestKindFlags(t *testing.T) {
	retained := map[Kind]bool{KindState: true, KindConfig: true}
	fromBox := map[Kind]bool{KindState: true, KindReply: true, KindEvent: true, KindUpload: true}
	for _, k := range Kinds {
		if k.Retained() != retained[k] || k.FromBox() != fromBox[k] {
			t.Errorf("%s: retained %v from box %v", k, k.Retained(), k.FromBox())
		}
	}
}

var expiry = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestCommandRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		args any
	}{
		{TypeRecordStart, RecordStartArgs{Visibility: VisibilityCoaching, By: "coach:alice"}},
		{TypeRecordStart, RecordStartArgs{By: "coach:bob"}},
		{TypeRecordStop, RecordStopArgs{By: "coach:alice"}},
		{TypeRecordStop, nil},
		{TypeStateGet, nil},
		{TypeIdentify, IdentifyArgs{Seconds: 30}},
	} {
		c, err := NewCommand("c-1", tc.typ, tc.args, expiry, 30*time.Second)
		if err != nil {
			t.Fatalf("NewCommand(%s): %v", tc.typ, err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("DecodeCommand(%s): %v", b, err)
		}
		if got.ID != "c-1" || got.Type != tc.typ || !got.ExpiresAt.Equal(expiry) || got.TTL() != 30*time.Second {
			t.Fatalf("round trip of %s = %+v", b, got)
		}
		args, err := got.DecodedArgs()
		if err != nil {
			t.Fatalf("DecodedArgs(%s): %v", b, err)
		}
		want := tc.args
		if want == nil {
			want = map[string]any{TypeRecordStop: RecordStopArgs{}, TypeStateGet: StateGetArgs{}}[tc.typ]
		}
		if !reflect.DeepEqual(args, want) {
			t.Fatalf("args of %s = %#v, want %#v", b, args, want)
		}
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		code     string
		field    string // the error must name it
		id       string // the id still returned
	}{
		{"not json", `{"v":1,`, CodeMalformed, "", ""},
		{"array", `[1,2]`, CodeMalformed, "", ""},
		{"trailing", `{"v":1,"id":"a","type":"state.get","ttl_ms":5} {}`, CodeMalformed, "", ""},
		{"no id", `{"v":1,"type":"state.get","ttl_ms":5}`, CodeMalformed, "id", ""},
		{"id not string", `{"v":1,"id":7,"type":"state.get","ttl_ms":5}`, CodeMalformed, "id", ""},
		{"id with space", `{"v":1,"id":"a b","type":"state.get","ttl_ms":5}`, CodeMalformed, "id", ""},
		{"no v", `{"id":"a","type":"state.get","ttl_ms":5}`, CodeMalformed, "v", "a"},
		{"v2", `{"v":2,"id":"a","type":"state.get","ttl_ms":5}`, CodeVersion, "v", "a"},
		{"v text", `{"v":"1","id":"a","type":"state.get","ttl_ms":5}`, CodeMalformed, "v", "a"},
		{"no type", `{"v":1,"id":"a","ttl_ms":5}`, CodeMalformed, "type", "a"},
		{"no expiry", `{"v":1,"id":"a","type":"state.get"}`, CodeMalformed, "expires_at", "a"},
		{"bad expiry", `{"v":1,"id":"a","type":"state.get","expires_at":"tomorrow"}`, CodeMalformed, "expires_at", "a"},
		{"ttl zero", `{"v":1,"id":"a","type":"state.get","ttl_ms":0}`, CodeMalformed, "ttl_ms", "a"},
		{"ttl negative", `{"v":1,"id":"a","type":"state.get","ttl_ms":-5}`, CodeMalformed, "ttl_ms", "a"},
		{"ttl huge", `{"v":1,"id":"a","type":"state.get","ttl_ms":86400001}`, CodeMalformed, "ttl_ms", "a"},
		{"ttl float", `{"v":1,"id":"a","type":"state.get","ttl_ms":1.5}`, CodeMalformed, "ttl_ms", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCommand([]byte(tc.in))
			if err == nil {
				t.Fatalf("DecodeCommand(%s) accepted: %+v", tc.in, c)
			}
			if got := DecodeErrorCode(err); got != tc.code {
				t.Errorf("code %q, want %q (%v)", got, tc.code, err)
			}
			var fe *FieldError
			if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
			if c.ID != tc.id {
				t.Errorf("id %q, want %q", c.ID, tc.id)
			}
		})
	}
}

func TestCommandArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, typ, args string
		code, field     string
	}{
		{"unknown type", "record.pause", `{}`, CodeUnknownType, ""},
		{"start without by", TypeRecordStart, `{"visibility":"private"}`, CodeBadArgs, "args.by"},
		{"start bad visibility", TypeRecordStart, `{"by":"x","visibility":"public"}`, CodeBadArgs, "args.visibility"},
		{"start misspelt", TypeRecordStart, `{"by":"x","visiblity":"library"}`, CodeBadArgs, "args"},
		{"start by number", TypeRecordStart, `{"by":5}`, CodeBadArgs, "args.by"},
		{"start args array", TypeRecordStart, `[1]`, CodeBadArgs, "args"},
		{"start by control", TypeRecordStart, `{"by":"a\nb"}`, CodeBadArgs, "args.by"},
		{"identify too long", TypeIdentify, `{"seconds":301}`, CodeBadArgs, "args.seconds"},
		{"identify negative", TypeIdentify, `{"seconds":-1}`, CodeBadArgs, "args.seconds"},
		{"state.get with args", TypeStateGet, `{"all":true}`, CodeBadArgs, "args"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := `{"v":1,"id":"x1","type":"` + tc.typ + `","ttl_ms":1000,"args":` + tc.args + `}`
			c, err := DecodeCommand([]byte(in))
			if err != nil {
				t.Fatalf("envelope refused: %v", err)
			}
			_, err = c.DecodedArgs()
			if err == nil {
				t.Fatalf("args %s accepted", tc.args)
			}
			if got := DecodeErrorCode(err); got != tc.code {
				t.Errorf("code %q, want %q (%v)", got, tc.code, err)
			}
			var fe *FieldError
			if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	recv := time.Date(2026, 3, 2, 8, 59, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		c      Command
		synced bool
		want   time.Time
		ok     bool
	}{
		{"ttl only", Command{TTLMillis: 5000}, false, recv.Add(5 * time.Second), true},
		{"ttl only, synced", Command{TTLMillis: 5000}, true, recv.Add(5 * time.Second), true},
		{"expiry, synced", Command{ExpiresAt: expiry}, true, expiry, true},
		{"expiry, unsynced", Command{ExpiresAt: expiry}, false, time.Time{}, false},
		{"both, unsynced: ttl", Command{ExpiresAt: expiry, TTLMillis: 5000}, false, recv.Add(5 * time.Second), true},
		{"both, synced: earlier", Command{ExpiresAt: recv.Add(time.Second), TTLMillis: 5000}, true, recv.Add(time.Second), true},
		{"both, synced: ttl earlier", Command{ExpiresAt: expiry, TTLMillis: 5000}, true, recv.Add(5 * time.Second), true},
	} {
		got, ok := tc.c.Deadline(recv, tc.synced)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: Deadline = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReplyRoundTrip(t *testing.T) {
	ok, err := OKReply("c-9", RecordStartResult{Lesson: "000001-abcdefghij", VetoWaitedMS: 10000, FirstFrameLatencyMS: 33})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []Reply{
		ok,
		ErrorReply("c-9", CodeDeclined, "declined by the teacher"),
		ErrorReply("", CodeMalformed, "command: malformed payload: id: is missing"),
	} {
		b, _ := json.Marshal(r)
		got, err := DecodeReply(b)
		if err != nil {
			t.Fatalf("DecodeReply(%s): %v", b, err)
		}
		if got.ID != r.ID || got.OK != r.OK || got.Code != r.Code || got.Error != r.Error || string(got.Result) != string(r.Result) {
			t.Fatalf("round trip %s = %+v", b, got)
		}
	}
	var res RecordStartResult
	got, _ := DecodeReply(mustJSON(t, ok))
	if err := got.DecodeResult(&res); err != nil || res.Lesson != "000001-abcdefghij" || res.VetoWaitedMS != 10000 {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestDecodeReplyErrors(t *testing.T) {
	for _, tc := range []struct{ in, field string }{
		{`{"v":1,"id":"a","ok":false,"error":"x"}`, "code"},
		{`{"v":1,"id":"a","ok":false,"code":"busy"}`, "error"},
		{`{"v":1,"id":"a","ok":false,"code":"nope","error":"x"}`, "code"},
		{`{"v":1,"id":"a","ok":true,"error":"x"}`, "error"},
		{`{"v":1,"ok":true}`, "id"},
		{`{"v":1,"ok":false,"code":"busy","error":"x"}`, "id"},
		{`{"v":1,"id":"a","ok":false,"code":"busy","error":"x","result":{}}`, "result"},
		{`{"id":"a","ok":true}`, "v"},
	} {
		_, err := DecodeReply([]byte(tc.in))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("DecodeReply(%s) = %v, want an error naming %q", tc.in, err, tc.field)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sampleState() State {
	temp := 51.5
	return State{
		V: Version, Online: true,
		Recorder: &Recorder{State: RecorderIdle, LastLesson: "000003-abcdefghij",
			RemoteStart: &RemoteStart{ID: "c-1", By: "coach:alice", Visibility: VisibilityCoaching, VetoLeftS: 7.5}},
		Disk:         &Disk{FreeMB: 1000, TotalMB: 32000},
		Camera:       &Camera{OK: true, Encoder: "openh264", Frames: 1234},
		Microphone:   &Microphone{OK: true, Packets: 99, Levels: []Level{{-12, -30}, {-90, -120}}, Dead: []int{1}},
		Upload:       &Upload{BacklogSegments: 3, BacklogBytes: 4 << 20, OutboxEvents: 2},
		Clock:        &Clock{Synced: true, Source: "ntp"},
		TemperatureC: &temp, Version: "v0.1.0", UptimeS: 3600,
		At: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := sampleState()
	got, err := DecodeState(mustJSON(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	will, err := DecodeState(LastWill())
	if err != nil || will.Online || will.Recorder != nil {
		t.Fatalf("last will decodes to %+v, %v", will, err)
	}
}

func TestDecodeStateErrors(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*State)
	}{
		{"recorder", func(s *State) { s.Recorder = nil }},
		{"recorder.state", func(s *State) { s.Recorder.State = "paused" }},
		{"recorder.state", func(s *State) { s.Recorder.State = "" }},
		{"recorder.remote_start.id", func(s *State) { s.Recorder.RemoteStart.ID = "" }},
		{"disk.free_mb", func(s *State) { s.Disk.FreeMB = s.Disk.TotalMB + 1 }},
		{"microphone.levels[1].peak_dbfs", func(s *State) { s.Microphone.Levels[1].PeakDBFS = 3 }},
		{"microphone.dead[0]", func(s *State) { s.Microphone.Dead = []int{2} }},
		{"temperature_c", func(s *State) { v := 400.0; s.TemperatureC = &v }},
		{"version", func(s *State) { s.Version = "" }},
		{"v", func(s *State) { s.V = 2 }},
	} {
		s := sampleState()
		tc.edit(&s)
		_, err := DecodeState(mustJSON(t, s))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("edit of %s: DecodeState = %v", tc.field, err)
		}
	}
	if _, err := DecodeState([]byte(`{"v":1,"online":"yes"}`)); err == nil || !strings.Contains(err.Error(), "online") {
		t.Errorf("online as text: %v", err)
	}
}

func sampleEvents() []Event {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return []Event{
		{V: 1, ID: "e1", Seq: 1, Type: EventLessonStarted, At: at, BootID: "b", BootS: 12.5,
			Lesson: &LessonEvent{ID: "000001-abcdefghij", Visibility: "coaching", StartedBy: "hub:coach:alice"}},
		{V: 1, ID: "e2", Seq: 2, Type: EventSegmentClosed, BootS: 16.5,
			Segment: &SegmentEvent{Lesson: "000001-abcdefghij", Name: "seg_000001.m4s", Seconds: 4, Bytes: 800000,
				SHA256: strings.Repeat("ab", 32)}},
		{V: 1, ID: "e3", Seq: 3, Type: EventLessonStopped, BootS: 20,
			Lesson: &LessonEvent{ID: "000001-abcdefghij", StoppedBy: "button", Reason: "tap", Segments: 2, Seconds: 7.9, Bytes: 1600000}},
		{V: 1, ID: "e4", Seq: 4, Type: EventAlarm, BootS: 21, Alarm: &AlarmEvent{Name: "disk_low", Active: true, Message: "120 MB free"}},
		{V: 1, ID: "e5", Seq: 5, Type: EventLiveStarted, At: at, BootS: 22,
			Live: &LiveEvent{Session: "4f1c9a0e5b7d2c31", Viewer: "coach:alice", Lesson: "000001-abcdefghij", Started: at}},
		{V: 1, ID: "e6", Seq: 6, Type: EventLiveStopped, BootS: 52,
			Live: &LiveEvent{Session: "4f1c9a0e5b7d2c31", Viewer: "coach:alice", Started: at, Seconds: 30.5,
				Reason: "button hold", Video: 915, Audio: 1525, Dropped: 3}},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, e := range sampleEvents() {
		got, err := DecodeEvent(mustJSON(t, e))
		if err != nil {
			t.Fatalf("DecodeEvent(%s): %v", mustJSON(t, e), err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for _, tc := range []struct {
		field string
		i     int
		edit  func(*Event)
	}{
		{"id", 0, func(e *Event) { e.ID = "" }},
		{"seq", 0, func(e *Event) { e.Seq = 0 }},
		{"type", 0, func(e *Event) { e.Type = "lesson.paused" }},
		{"lesson", 0, func(e *Event) { e.Lesson = nil }},
		{"lesson.id", 2, func(e *Event) { e.Lesson.ID = "" }},
		{"segment.sha256", 1, func(e *Event) { e.Segment.SHA256 = "xyz" }},
		{"segment", 1, func(e *Event) { e.Segment = nil }},
		{"alarm.name", 3, func(e *Event) { e.Alarm.Name = "" }},
	} {
		e := sampleEvents()[tc.i]
		tc.edit(&e)
		_, err := DecodeEvent(mustJSON(t, e))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("edit of %s: DecodeEvent = %v", tc.field, err)
		}
	}
}

func TestPayloadLimits(t *testing.T) {
	big := []byte(`{"v":1,"id":"a","type":"state.get","ttl_ms":5,"args":"` + strings.Repeat("x", MaxPayload) + `"}`)
	if _, err := DecodeCommand(big); err == nil || DecodeErrorCode(err) != CodeMalformed {
		t.Fatalf("oversized command: %v", err)
	}
	if _, err := DecodeCommand([]byte("{\"v\":1,\"id\":\"a\xff\"}")); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
}

func TestLiveCommands(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	c, err := NewCommand("c1", TypeLiveOffer, LiveOfferArgs{Session: "s1", SDP: sdp, Viewer: "coach:alice"}, time.Time{}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	args, err := c.DecodedArgs()
	if a, ok := args.(LiveOfferArgs); err != nil || !ok || a.SDP != sdp || a.Session != "s1" {
		t.Fatalf("live.offer args %#v, %v", args, err)
	}
	for _, tc := range []struct {
		args  string
		field string
	}{
		{`{"session":"s1","viewer":"v","sdp":"hello"}`, "args.sdp"},
		{`{"session":"s1","viewer":"v"}`, "args.sdp"},
		{`{"session":"s 1","viewer":"v","sdp":"v=0\r\n"}`, "args.session"},
		{`{"session":"s1","sdp":"v=0\r\n"}`, "args.viewer"},
		{`{"session":"s1","viewer":"v","sdp":"v=0\u0000"}`, "args.sdp"},
		{`{"session":"s1","viewer":"v","sdp":"v=0","extra":1}`, "args"},
	} {
		c := Command{V: 1, ID: "c2", Type: TypeLiveOffer, TTLMillis: 1000, Args: json.RawMessage(tc.args)}
		if _, err := c.DecodedArgs(); !errors.Is(err, ErrBadArgs) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want bad args naming %s", tc.args, err, tc.field)
		}
	}
	stop := Command{V: 1, ID: "c3", Type: TypeLiveStop, TTLMillis: 1000, Args: json.RawMessage(`{"session":"s1","by":"coach:alice"}`)}
	if args, err := stop.DecodedArgs(); err != nil || args.(LiveStopArgs).Session != "s1" {
		t.Fatalf("live.stop args %#v, %v", args, err)
	}
	stop.Args = json.RawMessage(`{}`)
	if _, err := stop.DecodedArgs(); !errors.Is(err, ErrBadArgs) {
		t.Fatalf("live.stop without a session: %v", err)
	}
	s := sampleState()
	s.Live = &Live{Allow: "sometimes"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "live.allow") {
		t.Fatalf("state with a bad live.allow: %v", err)
	}
	s.Live = &Live{Allow: "recording", Viewers: []LiveViewer{{Session: "s1", Viewer: "coach:alice", State: "connected", Dropped: 2}}}
	if err := s.Validate(); err != nil {
		t.Fatalf("state with a viewer: %v", err)
	}
}
