package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/classcap/classcap/hub/api"
	"github.com/classcap/classcap/hub/registry"
	"github.com/classcap/classcap/uplink/wire"
)

const remoteUsage = `remote commands (with -hub URL -token T, through classcap-hub's API):
  devices [-json]                              the hub's boxes, online or not, and what they do
  device ID [-json]                            one box and its last reported state
  record start -device ID [-visibility V]      start a recording on a box (the teacher may decline)
  record stop -device ID                       stop it
  lessons [-json] [-device ID]                 lessons the boxes reported
  views -device ID [-json]                     who watched a box live, when and for how long
`

// runRemote runs a remote command against the hub.
func runRemote(ctx context.Context, hub, token string, args []string, w io.Writer) error {
	c, err := api.NewClient(hub, token)
	if err != nil {
		return usageError(err.Error())
	}
	switch args[0] {
	case "devices":
		return remoteDevices(ctx, c, args[1:], w)
	case "device":
		if len(args) < 2 {
			return usageError("device: want ID")
		}
		asJSON, err := jsonFlag("device", args[2:])
		if err != nil {
			return err
		}
		d, err := c.Device(ctx, args[1])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(w, d)
		}
		printDevice(w, d)
		return nil
	case "record":
		return remoteRecord(ctx, c, args[1:], w)
	case "lessons":
		fs := flag.NewFlagSet("lessons", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "print JSON")
		device := fs.String("device", "", "only this box's lessons")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError("lessons: " + err.Error())
		}
		if fs.NArg() > 0 {
			return usageError(fmt.Sprintf("lessons: unexpected argument %q", fs.Arg(0)))
		}
		ls, err := c.Lessons(ctx, *device)
		if err != nil {
			return err
		}
		return printList(w, *asJSON, ls, "no lessons reported yet",
			"DEVICE\tLESSON\tSTATE\tVISIBILITY\tDURATION\tSEGMENTS\tSTARTED BY\tSTARTED",
			func(l registry.Lesson) string {
				state := "stopped"
				if l.Recording {
					state = "recording"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s", l.Device, l.ID, state, dash(l.Visibility),
					(time.Duration(l.Seconds*1000) * time.Millisecond).Round(time.Second), l.Segments, dash(l.StartedBy), when(l.StartedAt))
			})
	case "views":
		return remoteViews(ctx, c, args[1:], w)
	}
	return usageError(fmt.Sprintf("unknown remote command %q", args[0]))
}

func remoteViews(ctx context.Context, c *api.Client, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("views", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	device := fs.String("device", "", "the box")
	if err := fs.Parse(args); err != nil {
		return usageError("views: " + err.Error())
	}
	if *device == "" {
		return usageError("views: -device ID is required")
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("views: unexpected argument %q", fs.Arg(0)))
	}
	vs, err := c.Views(ctx, *device)
	if err != nil {
		return err
	}
	return printList(w, *asJSON, vs, "nobody has watched "+*device+" live",
		"SESSION\tVIEWER\tLESSON\tSTARTED\tDURATION\tENDED BECAUSE\tFRAMES\tDROPPED",
		func(v registry.View) string {
			length := (time.Duration(v.Seconds*1000) * time.Millisecond).Round(time.Second).String()
			reason := dash(v.Reason)
			if v.Live {
				length, reason = "watching", "-"
			}
			started := v.Started
			if started.IsZero() {
				started = v.Seen
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d", v.Session, v.Viewer, dash(v.Lesson),
				when(started), length, reason, v.Video, v.Dropped)
		})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func remoteDevices(ctx context.Context, c *api.Client, args []string, w io.Writer) error {
	asJSON, err := jsonFlag("devices", args)
	if err != nil {
		return err
	}
	ds, err := c.Devices(ctx)
	if err != nil {
		return err
	}
	return printList(w, asJSON, ds, "no devices registered (classcap-hub device add ID)",
		"DEVICE\tONLINE\tRECORDER\tLESSON\tVERSION\tLAST SEEN\tCONFIG",
		func(d api.DeviceSummary) string {
			online := "no"
			if d.Online {
				online = "yes"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", d.ID, online, dash(d.Recorder), dash(d.Lesson), dash(d.Version),
				when(d.LastSeen), configText(d.Config))
		})
}

// configText says which of the hub's configuration versions a box runs:
// "v3", "v3 (v4 waits for the lesson to end)", "v3 (v5 refused: field: reason)",
// "file only" before the hub sent one.
func configText(c *wire.ConfigStatus) string {
	if c == nil {
		return "-"
	}
	s := "file only"
	if c.Applied > 0 {
		s = fmt.Sprintf("v%d", c.Applied)
	}
	if c.Pending > 0 {
		s += fmt.Sprintf(" (v%d waits for the lesson to end)", c.Pending)
	}
	if c.Rejected > 0 || c.Error != "" {
		why := c.Error
		if c.Field != "" {
			why = c.Field + ": " + why
		}
		s += fmt.Sprintf(" (v%d refused: %s)", c.Rejected, why)
	}
	return s
}

func printDevice(w io.Writer, d api.DeviceDetail) {
	online := "offline"
	if d.Online {
		online = "online"
	}
	fmt.Fprintf(w, "device     %s (%s, last seen %s, added %s)\n", d.ID, online, when(d.LastSeen), when(d.AddedAt))
	var s wire.State
	if len(d.State) == 0 || json.Unmarshal(d.State, &s) != nil || s.Recorder == nil {
		fmt.Fprintln(w, "state      not reported yet")
		return
	}
	r := s.Recorder
	fmt.Fprintf(w, "recorder   %s", r.State)
	if r.Lesson != "" {
		fmt.Fprintf(w, ", lesson %s (%s, started by %s, %.0f s in %d segments)", r.Lesson, r.Visibility, r.StartedBy, r.RecordedS, r.Segments)
	}
	fmt.Fprintln(w)
	if rs := r.RemoteStart; rs != nil {
		fmt.Fprintf(w, "pending    remote start by %s, begins in %.0f s unless the teacher declines\n", rs.By, rs.VetoLeftS)
	}
	if s.Config != nil {
		fmt.Fprintf(w, "config     %s\n", configText(s.Config))
	}
	if s.Camera != nil {
		fmt.Fprintf(w, "camera     ok=%v %s %d frames %s\n", s.Camera.OK, s.Camera.Encoder, s.Camera.Frames, s.Camera.Fault)
	}
	if s.Microphone != nil {
		fmt.Fprintf(w, "microphone ok=%v %d channels %s\n", s.Microphone.OK, len(s.Microphone.Levels), s.Microphone.Fault)
	}
	if s.Disk != nil {
		fmt.Fprintf(w, "disk       %d MB free of %d MB\n", s.Disk.FreeMB, s.Disk.TotalMB)
	}
	if s.Upload != nil {
		fmt.Fprintf(w, "upload     %d segments (%.1f MB) waiting\n", s.Upload.BacklogSegments, float64(s.Upload.BacklogBytes)/1e6)
	}
	if s.Clock != nil {
		fmt.Fprintf(w, "clock      synced=%v %s\n", s.Clock.Synced, s.Clock.Source)
	}
	fmt.Fprintf(w, "version    %s, up %s\n", dash(s.Version), (time.Duration(s.UptimeS) * time.Second).String())
}

func remoteRecord(ctx context.Context, c *api.Client, args []string, w io.Writer) error {
	if len(args) == 0 {
		return usageError("record: say start or stop")
	}
	fs := flag.NewFlagSet("record "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	device := fs.String("device", "", "the box")
	vis := fs.String("visibility", "", "private, coaching or library (default: the box's setting)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError("record " + args[0] + ": " + err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("record %s: unexpected argument %q", args[0], fs.Arg(0)))
	}
	if *device == "" {
		return usageError("record " + args[0] + ": -device ID is required with -hub")
	}
	switch args[0] {
	case "start":
		r, err := c.RecordStart(ctx, *device, api.RecordStartRequest{Visibility: *vis})
		if err != nil {
			return fmt.Errorf("record start: %w", err)
		}
		fmt.Fprintf(w, "%s is recording lesson %s (the teacher's window %.1f s, first picture after %.0f ms; %.0f ms in all)\n",
			*device, r.Result.Lesson, float64(r.Result.VetoWaitedMS)/1000, r.Result.FirstFrameLatencyMS, r.ElapsedMS)
		return nil
	case "stop":
		if *vis != "" {
			return usageError("record stop: -visibility belongs to record start")
		}
		r, err := c.RecordStop(ctx, *device, api.RecordStopRequest{})
		if err != nil {
			return fmt.Errorf("record stop: %w", err)
		}
		fmt.Fprintf(w, "%s stopped lesson %s: %.1f s in %d segments\n", *device, r.Result.Lesson, r.Result.Seconds, r.Result.Segments)
		return nil
	}
	return usageError(fmt.Sprintf("record: unknown %q (say start or stop)", args[0]))
}
