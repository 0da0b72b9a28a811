package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/classcap/classcap/hub/api"
	"github.com/classcap/classcap/hub/fleet"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

// boxes answers commands for the API as a fleet would: room-1 records,
// room-2 is busy, any other does not answer.
type boxes struct{}

func (boxes) Command(_ context.Context, device, typ string, args any, wait time.Duration) (wire.Reply, error) {
	switch device {
	case "room-1":
		if typ == wire.TypeRecordStart {
			return wire.OKReply("c-1", wire.RecordStartResult{Lesson: "000009-abc", VetoWaitedMS: 10001, FirstFrameLatencyMS: 42})
		}
		return wire.OKReply("c-2", wire.RecordStopResult{Lesson: "000009-abc", Segments: 3, Seconds: 11.5})
	case "room-2":
		return wire.ErrorReply("c-3", wire.CodeBusy, "already recording lesson 000008-x"), nil
	}
	return wire.Reply{}, errors.New("command to " + device + ": " + fleet.ErrTimeout.Error())
}

func TestRemoteCommands(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"), registry.Options{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, id := range []string{"room-1", "room-2", "room-3"} {
		if _, err := reg.AddDevice(id); err != nil {
			t.Fatal(err)
		}
	}
	// room-3 reported the hub's configuration: version 3 applied, 4
	// waiting for its lesson, 5 refused.
	if err := reg.Write(func(tx *registry.Tx) error {
		return tx.SetState("room-3", []byte(`{"v":1,"online":true,"recorder":{"state":"recording","recorded_s":0,"segments":0},`+
			`"config":{"applied":3,"pending":4,"rejected":5,"field":"video.keyframe_seconds","error":"3 is longer than a segment"},"version":"dev","uptime_s":1}`),
			true, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	token, err := reg.CreateToken(registry.RoleCoach, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Write(func(tx *registry.Tx) error {
		return tx.UpdateView("room-1", "alice-view-1", func(v *registry.View) {
			v.Viewer, v.Lesson, v.Seconds, v.Reason, v.Video = "coach:alice", "000009-abc", 42, "stopped by coach:alice", 1260
		})
	}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(reg, boxes{}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer srv.Close()

	ctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, io.Discard)
		return out.String(), err
	}
	hub := []string{"-hub", srv.URL, "-token", token}
	for _, tt := range []struct {
		name    string
		args    []string
		want    string // in stdout, or in the error
		wantErr bool
	}{
		{"devices", append(hub, "devices"), "room-1  no      -", false},
		{"start", append(hub, "record", "start", "-device", "room-1", "-visibility", "coaching"),
			"room-1 is recording lesson 000009-abc (the teacher's window 10.0 s, first picture after 42 ms", false},
		{"stop", append(hub, "record", "stop", "-device", "room-1"), "room-1 stopped lesson 000009-abc: 11.5 s in 3 segments", false},
		{"busy", append(hub, "record", "start", "-device", "room-2"), "the box room-2 refused: already recording lesson 000008-x (busy)", true},
		{"unknown device", append(hub, "record", "stop", "-device", "room-9"), `unknown device "room-9"`, true},
		{"no device", append(hub, "record", "start"), "-device ID is required", true},
		{"bad token", []string{"-hub", srv.URL, "-token", "cct_wrong", "devices"}, "unknown token (bad_token)", true},
		{"no token", []string{"-hub", srv.URL, "-token", "", "devices"}, "no token", true},
		{"bad hub URL", []string{"-hub", "hub:8080", "-token", token, "devices"}, `hub URL "hub:8080"`, true},
		{"device detail", append(hub, "device", "room-2"), "state      not reported yet", false},
		{"lessons", append(hub, "lessons"), "no lessons reported yet", false},
		{"views", append(hub, "views", "-device", "room-1"), "alice-view-1  coach:alice  000009-abc  ", false},
		{"views without device", append(hub, "views"), "-device ID is required", true},
		{"config in devices", append(hub, "devices"), "v3 (v4 waits for the lesson to end) (v5 refused: video.keyframe_seconds: 3 is longer than a segment)", false},
		{"config in devices -json", append(hub, "devices", "-json"), `"config": {
      "applied": 3,
      "pending": 4,
      "rejected": 5,
      "field": "video.keyframe_seconds",`, false},
		{"config in device detail", append(hub, "device", "room-3"), "config     v3 (v4 waits", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := ctl(tt.args...)
			got := out
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; output %q", out)
				}
				got = err.Error()
			} else if err != nil {
				t.Fatalf("error %v", err)
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}
}
