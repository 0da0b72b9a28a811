package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/capture/recorder"
	"github.com/classcap/classcap/device/sysinfo"
	"github.com/classcap/classcap/provisioning/config"
	"github.com/classcap/classcap/uplink/link"
	"github.com/classcap/classcap/uplink/wire"
)

// newLink opens the MQTT link to the hub: an enrolled box to the broker
// its enrollment named, with its certificate only (mutual TLS); otherwise
// to the configured broker with the configured user and password.
func newLink(cfg *config.Box, d *daemon, log *slog.Logger) (*link.Link, error) {
	if d.enroller != nil {
		if id := d.enroller.Identity(); id != nil {
			tlsCfg, err := id.TLSConfig(d.enroller.Keys())
			if err != nil {
				return nil, fmt.Errorf("uplink: enrolled identity: %w", err)
			}
			log.Info("uplink with the enrolled certificate", "broker", id.BrokerURL, "serial", id.Serial)
			return link.New(link.Config{
				Device:    cfg.Device.ID,
				Broker:    id.BrokerURL,
				TLS:       tlsCfg,
				StorePath: filepath.Join(cfg.Device.DataDir, "uplink.db"),
				Veto:      cfg.VetoWindow(),
				Log:       log,
			}, (*linkBox)(d))
		}
	}
	var password string
	if f := cfg.Uplink.PasswordFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("uplink.password_file: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	return link.New(link.Config{
		Device:    cfg.Device.ID,
		Broker:    cfg.Uplink.Broker,
		Username:  cfg.Uplink.Username,
		Password:  password,
		StorePath: filepath.Join(cfg.Device.DataDir, "uplink.db"),
		Veto:      cfg.VetoWindow(),
		Log:       log,
	}, (*linkBox)(d))
}

// linkBox is the daemon as the link sees it.
type linkBox daemon

var _ link.Box = (*linkBox)(nil)

func (b *linkBox) RemoteStart(ctx context.Context, req recorder.RemoteStartRequest) (recorder.StartResult, error) {
	req.Veto = b.desired.Current().VetoWindow() // the hub may have changed it
	return b.recorder.RemoteStart(ctx, req)
}

func (b *linkBox) Stop(ctx context.Context, req recorder.StopRequest) (lesson.Meta, error) {
	return b.recorder.Stop(ctx, req)
}

func (b *linkBox) Identify(ctx context.Context, d time.Duration) error {
	return b.recorder.Identify(ctx, d)
}

func (b *linkBox) ClockSynced() bool { return sysinfo.Clock().Synced }

func (b *linkBox) Clock() lesson.Clock { return now() }

// State is the box's state in the protocol's form.
func (b *linkBox) State() wire.State {
	s := (*daemon)(b).Status()
	r := s.Recorder
	st := wire.State{
		Recorder: &wire.Recorder{State: r.State, Reason: r.Reason, Lesson: r.Lesson, StartedBy: r.StartedBy,
			Visibility: r.Visibility, RecordedS: r.Recorded, Segments: r.Segments, LastLesson: r.LastLesson},
		Disk:       &wire.Disk{FreeMB: s.Disk.FreeMB, TotalMB: s.Disk.TotalMB},
		Camera:     &wire.Camera{OK: s.Camera.Fault == "", Encoder: s.Camera.Encoder, Frames: s.Camera.Frames, Fault: s.Camera.Fault},
		Microphone: &wire.Microphone{OK: s.Microphone.Fault == "", Packets: s.Microphone.Packets, Fault: s.Microphone.Fault},
		Clock:      &wire.Clock{Synced: s.Clock.Synced, Source: s.Clock.Source},
		Version:    s.Version,
		UptimeS:    s.Uptime,
	}
	if s.Live != nil {
		st.Live = liveState(*s.Live)
	}
	st.Config = s.Config
	st.Upload = &wire.Upload{}
	if u := s.Upload; u != nil {
		st.Upload.BacklogSegments, st.Upload.BacklogBytes = u.BacklogSegments, u.BacklogBytes
		st.Upload.DamagedSegments, st.Upload.Problem = u.Damaged, u.Problem
	}
	if rs := r.RemoteStart; rs != nil {
		st.Recorder.RemoteStart = &wire.RemoteStart{ID: rs.ID, By: rs.By, Visibility: rs.Visibility, VetoLeftS: rs.VetoLeft}
	}
	st.Microphone.Levels = make([]wire.Level, 0, len(s.Microphone.Levels))
	for _, l := range s.Microphone.Levels {
		st.Microphone.Levels = append(st.Microphone.Levels, wire.Level{PeakDBFS: dbfs(l.PeakDBFS), RMSDBFS: dbfs(l.RMSDBFS)})
	}
	st.Microphone.Dead = nil
	for _, ch := range s.Microphone.Dead {
		if ch >= 0 && ch < len(st.Microphone.Levels) {
			st.Microphone.Dead = append(st.Microphone.Dead, ch)
		}
	}
	if t, ok := sysinfo.Temperature(); ok {
		st.TemperatureC = &t
	}
	if s.Clock.Synced {
		st.At = time.Now().UTC()
	}
	return st
}

// dbfs keeps a level within the protocol's -200..0 (silence is -Inf).
func dbfs(v float64) float64 {
	if math.IsNaN(v) || v < -200 {
		return -200
	}
	return min(v, 0)
}
