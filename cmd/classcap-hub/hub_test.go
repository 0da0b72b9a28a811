package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/hub/mosquitto/mosquittotest"
	"github.com/classcap/classcap/uplink/wire"
)

// testHub is a classcap-hub run in-process with its embedded broker on free
// loopback ports.
type testHub struct {
	config string // path of its configuration
	http   string // http://host:port
	broker string // tcp://host:port
	stderr *watchBuffer
}

func startHub(t *testing.T) *testHub {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), "hub")
	return runHub(t, writeConfig(t, `
[hub]
data_dir = "`+dataDir+`"
http_listen = "127.0.0.1:0"
[broker]
listen = "127.0.0.1:0"
`))
}

// runHub runs the hub with the configuration at path until the test ends.
func runHub(t *testing.T, path string) *testHub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newWatchBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", path}, io.Discard, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hub: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("hub did not stop")
		}
	})
	h := &testHub{config: path, stderr: stderr}
	h.http = "http://" + stderr.waitFor(t, regexp.MustCompile(`msg="serving HTTP" addr=(\S+)`), 15*time.Second)
	h.broker = stderr.waitFor(t, regexp.MustCompile(`msg="serving HTTP" .*broker=(\S+)`), time.Second)
	stderr.waitFor(t, regexp.MustCompile(`(connected) to MQTT broker`), 15*time.Second)
	return h
}

// verb runs a classcap-hub verb against the running hub's configuration.
func (h *testHub) verb(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := realMain(context.Background(), append([]string{"-config", h.config}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("classcap-hub %v: exit %d: %s", args, code, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// call sends an API request and decodes the JSON answer into a map.
func (h *testHub) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.http+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q: %s", method, path, ct, data)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s %s: %s: not a JSON object: %v", method, path, data, err)
	}
	return resp.StatusCode, m
}

// fakeBox is an MQTT client standing in for a box: it publishes a state,
// and answers each command with what answer returns (nil: no answer).
type fakeBox struct {
	id     string
	client paho.Client
	cmds   chan wire.Command
}

func newFakeBox(t *testing.T, broker, id, password string, answer func(wire.Command) *wire.Reply) *fakeBox {
	t.Helper()
	b := &fakeBox{id: id, cmds: make(chan wire.Command, 16)}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(id).SetPassword(password).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetWill(wire.StateTopic(id), string(wire.LastWill()), wire.QoS, true)
	b.client = paho.NewClient(opts)
	if tok := b.client.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("box %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { b.client.Disconnect(100) })
	tok := b.client.Subscribe(wire.CmdTopic(id), wire.QoS, func(c paho.Client, m paho.Message) {
		cmd, err := wire.DecodeCommand(m.Payload())
		if err != nil {
			t.Errorf("box %s: bad command %s: %v", id, m.Payload(), err)
			return
		}
		b.cmds <- cmd
		if r := answer(cmd); r != nil {
			data, _ := json.Marshal(r)
			c.Publish(wire.ReplyTopic(id), wire.QoS, false, data)
		}
	})
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("box %s: subscribe: %v", id, tok.Error())
	}
	return b
}

func (b *fakeBox) publish(t *testing.T, kind wire.Kind, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	tok := b.client.Publish(wire.Topic(b.id, kind), wire.QoS, kind.Retained(), data)
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		t.Fatalf("box %s: publish %s: %v", b.id, kind, tok.Error())
	}
}

func idleState(recorder string, lesson string) wire.State {
	return wire.State{V: 1, Online: true,
		Recorder:   &wire.Recorder{State: recorder, Lesson: lesson},
		Disk:       &wire.Disk{FreeMB: 100, TotalMB: 200},
		Camera:     &wire.Camera{OK: true, Frames: 10},
		Microphone: &wire.Microphone{OK: true, Levels: []wire.Level{{PeakDBFS: -10, RMSDBFS: -30}}},
		Upload:     &wire.Upload{}, Clock: &wire.Clock{Synced: true}, Version: "test"}
}

// waitUntil polls cond until it holds or 15 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHubAPIAuthRolesAndRemoteCommands(t *testing.T) {
	h := startHub(t)
	// The verbs work while the hub runs (over its local socket).
	admin := h.verb(t, "token", "create", "-role", "admin", "-name", "it-desk")
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "alice")
	pw := h.verb(t, "device", "add", "room-101")
	if !strings.HasPrefix(admin, "cct_") || !strings.HasPrefix(coach, "cct_") || len(pw) < 20 {
		t.Fatalf("tokens %q %q, password %q", admin, coach, pw)
	}

	t.Run("auth", func(t *testing.T) {
		for _, tt := range []struct {
			name, method, path, token, body string
			status                          int
			code, inError                   string
		}{
			{"no token", "GET", "/api/v1/devices", "", "", 401, "missing_token", "missing token"},
			{"unknown token", "GET", "/api/v1/devices", "cct_nope", "", 401, "bad_token", "unknown token"},
			{"coach adds a device", "POST", "/api/v1/devices", coach, `{"id":"room-9"}`, 403, "wrong_role", "needs an admin token"},
			{"coach makes a token", "POST", "/api/v1/tokens", coach, `{"role":"admin","name":"x"}`, 403, "wrong_role", "role coach"},
			{"bad JSON", "POST", "/api/v1/devices", admin, `{"id":`, 400, "bad_json", "bad JSON body"},
			{"unknown field", "POST", "/api/v1/devices", admin, `{"name":"room-9"}`, 400, "bad_json", `unknown field "name"`},
			{"bad device id", "POST", "/api/v1/devices", admin, `{"id":"room/9"}`, 422, "bad_device_id", `device id "room/9"`},
			{"device twice", "POST", "/api/v1/devices", admin, `{"id":"room-101"}`, 409, "device_exists", "already registered"},
			{"unknown device", "GET", "/api/v1/devices/room-404", coach, "", 404, "unknown_device", `unknown device "room-404"`},
			{"start unknown device", "POST", "/api/v1/devices/room-404/record/start", coach, "", 404, "unknown_device", "room-404"},
			{"bad visibility", "POST", "/api/v1/devices/room-101/record/start", coach, `{"visibility":"public"}`, 422, "bad_visibility", `"public"`},
			{"bad role", "POST", "/api/v1/tokens", admin, `{"role":"root","name":"x"}`, 422, "bad_role", `role "root"`},
			{"no route", "GET", "/api/v1/nothing", coach, "", 404, "not_found", "no API route"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, m := h.call(t, tt.method, tt.path, tt.token, tt.body)
				if status != tt.status || m["code"] != tt.code || !strings.Contains(fmt.Sprint(m["error"]), tt.inError) {
					t.Fatalf("%s %s: %d %v; want %d code %q error containing %q", tt.method, tt.path, status, m, tt.status, tt.code, tt.inError)
				}
			})
		}
		// An admin may do what a coach may, and add devices.
		if status, m := h.call(t, "POST", "/api/v1/devices", admin, `{"id":"room-102"}`); status != 201 || m["password"] == "" {
			t.Fatalf("admin adds a device: %d %v", status, m)
		}
		if status, m := h.call(t, "GET", "/api/v1/whoami", coach, ""); status != 200 || m["role"] != "coach" || m["name"] != "alice" {
			t.Fatalf("whoami: %d %v", status, m)
		}
	})

	// A box that accepts a start, refuses a stop while idle, and never
	// answers identify.
	var box *fakeBox
	box = newFakeBox(t, h.broker, "room-101", pw, func(c wire.Command) *wire.Reply {
		switch c.Type {
		case wire.TypeRecordStart:
			args, _ := c.DecodedArgs()
			a := args.(wire.RecordStartArgs)
			if a.Visibility == wire.VisibilityLibrary {
				r := wire.ErrorReply(c.ID, wire.CodeDeclined, "declined by the teacher")
				return &r
			}
			if a.By != "coach:alice" {
				r := wire.ErrorReply(c.ID, wire.CodeBadArgs, "by is "+a.By)
				return &r
			}
			r, _ := wire.OKReply(c.ID, wire.RecordStartResult{Lesson: "000001-abc", FirstFrameLatencyMS: 33})
			return &r
		case wire.TypeRecordStop:
			r := wire.ErrorReply(c.ID, wire.CodeNotRecording, "nothing is recording")
			return &r
		}
		return nil
	})
	box.publish(t, wire.KindState, idleState(wire.RecorderIdle, ""))

	t.Run("devices", func(t *testing.T) {
		waitUntil(t, "room-101 is online", func() bool {
			_, m := h.call(t, "GET", "/api/v1/devices/room-101", coach, "")
			return m["online"] == true && m["recorder"] == "idle"
		})
		status, m := h.call(t, "GET", "/api/v1/devices", coach, "")
		devs, _ := m["devices"].([]any)
		if status != 200 || len(devs) != 2 {
			t.Fatalf("devices: %d %v", status, m)
		}
		_, d := h.call(t, "GET", "/api/v1/devices/room-101", coach, "")
		st, _ := d["state"].(map[string]any)
		if st == nil || st["version"] != "test" || d["last_seen"] == nil {
			t.Fatalf("device detail lacks the box's state: %v", d)
		}
	})

	t.Run("remote start surfaces the box's result", func(t *testing.T) {
		status, m := h.call(t, "POST", "/api/v1/devices/room-101/record/start", coach, `{"visibility":"coaching"}`)
		res, _ := m["result"].(map[string]any)
		if status != 200 || m["ok"] != true || res["lesson"] != "000001-abc" || res["first_frame_latency_ms"] != 33.0 {
			t.Fatalf("start: %d %v", status, m)
		}
		cmd := <-box.cmds
		if cmd.Type != wire.TypeRecordStart || cmd.ExpiresAt.IsZero() || cmd.TTLMillis <= 0 || cmd.ID != m["command"] {
			t.Fatalf("the box got %+v", cmd)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		status, m := h.call(t, "POST", "/api/v1/devices/room-101/record/start", coach, `{"visibility":"library"}`)
		if status != 409 || m["code"] != "declined" || m["error"] != "declined by the teacher" || m["from_box"] != true {
			t.Fatalf("declined start: %d %v", status, m)
		}
		<-box.cmds
		status, m = h.call(t, "POST", "/api/v1/devices/room-101/record/start", admin, ``)
		if status != 422 || m["code"] != "bad_args" || m["error"] != "by is admin:it-desk" {
			t.Fatalf("start by admin: %d %v", status, m)
		}
		<-box.cmds
		status, m = h.call(t, "POST", "/api/v1/devices/room-101/record/stop", coach, ``)
		if status != 409 || m["code"] != "not_recording" {
			t.Fatalf("stop: %d %v", status, m)
		}
		<-box.cmds
	})
	t.Run("timeout", func(t *testing.T) {
		// room-102 is registered but no box is connected.
		status, m := h.call(t, "POST", "/api/v1/devices/room-102/record/start", coach, `{"wait_s":0.5}`)
		if status != 504 || m["code"] != "timeout" || !strings.Contains(fmt.Sprint(m["error"]), "last seen never") {
			t.Fatalf("start on a silent box: %d %v", status, m)
		}
		status, m = h.call(t, "POST", "/api/v1/devices/room-101/record/start", coach, `{"wait_s":1000}`)
		if status != 422 || m["code"] != "bad_wait" {
			t.Fatalf("wait_s 1000: %d %v", status, m)
		}
	})

	t.Run("lessons from events", func(t *testing.T) {
		at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		box.publish(t, wire.KindEvent, wire.Event{V: 1, ID: "e1", Seq: 1, Type: wire.EventLessonStarted, At: at, BootS: 10,
			Lesson: &wire.LessonEvent{ID: "000001-abc", Visibility: "coaching", StartedBy: "coach:alice"}})
		box.publish(t, wire.KindEvent, wire.Event{V: 1, ID: "e2", Seq: 2, Type: wire.EventLessonStopped, At: at.Add(time.Minute), BootS: 70,
			Lesson: &wire.LessonEvent{ID: "000001-abc", StoppedBy: "button", Segments: 15, Seconds: 60, Bytes: 1 << 20}})
		var l map[string]any
		waitUntil(t, "the lesson is reported stopped", func() bool {
			_, m := h.call(t, "GET", "/api/v1/lessons", coach, "")
			ls, _ := m["lessons"].([]any)
			if len(ls) != 1 {
				return false
			}
			l = ls[0].(map[string]any)
			return l["stopped"] == true
		})
		if l["device"] != "room-101" || l["id"] != "000001-abc" || l["visibility"] != "coaching" || l["started_by"] != "coach:alice" ||
			l["seconds"] != 60.0 || l["segments"] != 15.0 || l["recording"] != false {
			t.Fatalf("lesson = %v", l)
		}
		if status, m := h.call(t, "GET", "/api/v1/lessons?device=room-404", coach, ""); status != 404 || m["code"] != "unknown_device" {
			t.Fatalf("lessons of an unknown device: %d %v", status, m)
		}
	})

	t.Run("last will marks the box offline", func(t *testing.T) {
		// A connection that ends without DISCONNECT: the broker sends the will.
		box.client.Disconnect(0)
		dropWithWill(t, h.broker, "room-101", pw)
		waitUntil(t, "room-101 is offline", func() bool {
			_, m := h.call(t, "GET", "/api/v1/devices/room-101", coach, "")
			return m["online"] == false
		})
		_, m := h.call(t, "GET", "/api/v1/devices/room-101", coach, "")
		if m["state"] == nil {
			t.Fatalf("the offline box lost its last state: %v", m)
		}
	})
}

// dropWithWill connects as device id with the protocol's last will, then
// closes the TCP connection without DISCONNECT (as a box losing power does).
func dropWithWill(t *testing.T, broker, id, password string) {
	t.Helper()
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	var body []byte
	body = append(body, str("MQTT")...)
	body = append(body, 4, 0x80|0x40|0x20|0x08|0x04|0x02, 0, 60) // user, password, will retain, QoS 1, will, clean
	body = append(body, str(id)...)
	body = append(body, str(wire.StateTopic(id))...)
	body = append(body, str(string(wire.LastWill()))...)
	body = append(body, str(id)...)
	body = append(body, str(password)...)
	if len(body) > 127 {
		t.Fatalf("CONNECT of %d bytes needs a longer length field", len(body))
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(broker, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x: %v", ack, err)
	}
}

// The hub against an external mosquitto, with the files mosquitto-acl wrote:
// the hub logs in as classcap-hub, a box with its password, and a remote
// start reaches the box and its answer comes back.
func TestHubWithMosquitto(t *testing.T) {
	dir := t.TempDir()
	hubPw := filepath.Join(dir, "hub-mqtt-password")
	if err := os.WriteFile(hubPw, []byte("hub-secret-"+t.Name()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := func(url string) string {
		return writeConfig(t, `
[hub]
data_dir = "`+filepath.Join(dir, "hub")+`"
http_listen = "127.0.0.1:0"
[broker]
url = "`+url+`"
password_file = "`+hubPw+`"
`)
	}
	// The verbs need no broker: register the box, write mosquitto's files.
	pre := &testHub{config: conf("tcp://127.0.0.1:1")}
	pw := pre.verb(t, "device", "add", "room-201")
	files := filepath.Join(dir, "mosquitto")
	if out := pre.verb(t, "mosquitto-acl", "-dir", files); !strings.Contains(out, "1 devices") {
		t.Fatalf("mosquitto-acl: %s", out)
	}
	url := mosquittotest.Start(t, files)

	h := runHub(t, conf(url))
	if h.broker != url {
		t.Fatalf("hub broker %s, want %s", h.broker, url)
	}
	coach := h.verb(t, "token", "create", "-role", "coach", "-name", "bob")
	box := newFakeBox(t, url, "room-201", pw, func(c wire.Command) *wire.Reply {
		r, _ := wire.OKReply(c.ID, wire.RecordStopResult{Lesson: "000007-x", Segments: 2, Seconds: 8})
		return &r
	})
	box.publish(t, wire.KindState, idleState(wire.RecorderRecording, "000007-x"))
	waitUntil(t, "the hub sees room-201 recording", func() bool {
		_, m := h.call(t, "GET", "/api/v1/devices/room-201", coach, "")
		return m["online"] == true && m["recorder"] == "recording"
	})
	status, m := h.call(t, "POST", "/api/v1/devices/room-201/record/stop", coach, "")
	res, _ := m["result"].(map[string]any)
	if status != 200 || res["lesson"] != "000007-x" || res["segments"] != 2.0 {
		t.Fatalf("stop through mosquitto: %d %v", status, m)
	}
	if cmd := <-box.cmds; cmd.Type != wire.TypeRecordStop {
		t.Fatalf("the box got %+v", cmd)
	}
}

// A box added with a password (no enrollment, no group) gets the settings
// IT gives it by its id, pushed retained on its config topic, like an
// enrolled box; on a hub that has no enrollment at all.
func TestConfigReachesABoxAddedWithAPassword(t *testing.T) {
	old := configPoll
	configPoll = 50 * time.Millisecond
	t.Cleanup(func() { configPoll = old })
	h := startHub(t)
	pw := h.verb(t, "device", "add", "room-7")
	good := filepath.Join(t.TempDir(), "room-7.toml")
	if err := os.WriteFile(good, []byte("[video]\nbitrate_kbps = 1800\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := h.verb(t, "config", "set", "-device", "room-7", good)

	configs := make(chan []byte, 4)
	opts := paho.NewClientOptions().AddBroker(h.broker).SetClientID("room-7").SetUsername("room-7").SetPassword(pw).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetProtocolVersion(4)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("connect as room-7: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe(wire.ConfigTopic("room-7"), 1, func(_ paho.Client, m paho.Message) {
		configs <- m.Payload()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe config: %v", tok.Error())
	}
	var payload []byte
	select {
	case payload = <-configs:
	case <-time.After(20 * time.Second):
		t.Fatalf("the box received no configuration (config set said %q)", out)
	}
	var got wire.Config
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatalf("configuration %s: %v", payload, err)
	}
	if !strings.Contains(out, fmt.Sprintf("version %d", got.Version)) || !strings.Contains(string(got.Settings), `"bitrate_kbps":1800`) {
		t.Errorf("pushed %s; config set said %q", payload, out)
	}
}
