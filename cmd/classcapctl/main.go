// Command classcapctl is the operator's CLI for a classcap box: it talks to
// classcapd on its unix socket, or, with -hub and -token, to classcap-hub's
// HTTP API to see and drive the boxes remotely.
//
// Usage:
//
//	classcapctl -hub URL -token T devices [-json] | device ID [-json]
//	classcapctl -hub URL -token T record start -device ID [-visibility V] | record stop -device ID
//	classcapctl -hub URL -token T lessons [-json] [-device ID]
//
//	classcapctl [-socket PATH] status [-json]
//	classcapctl [-socket PATH] record start [-visibility V] | record stop
//	classcapctl [-socket PATH] lessons [-json]
//	classcapctl [-socket PATH] export LESSON_ID OUT.mp4
//	classcapctl [-socket PATH] sim press | sim hold SECONDS
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/classcap/classcap/capture/catalog"
	"github.com/classcap/classcap/capture/durable"
	"github.com/classcap/classcap/uplink/control"
)

const defaultSocket = "/var/lib/classcap/classcapd.sock"

const usage = `usage: classcapctl [-socket PATH] COMMAND

commands:
  status [-json]                    what the box is doing and how it is
  record start [-visibility V]      start recording (V: private, coaching, library)
  record stop                       stop recording
  lessons [-json]                   the lessons on the box
  export LESSON_ID OUT.mp4          write a lesson as one MP4 file
  sim press                         tap the simulated button
  sim hold SECONDS                  hold the simulated button down

The socket defaults to ` + defaultSocket + ` (<data_dir>/classcapd.sock).

usage: classcapctl -hub URL -token T COMMAND     (-token defaults to $CLASSCAP_TOKEN)

` + remoteUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "classcapctl: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("classcapctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", defaultSocket, "classcapd's control socket")
	hub := fs.String("hub", "", "classcap-hub's URL, e.g. http://hub:8080 (remote commands)")
	token := fs.String("token", os.Getenv("CLASSCAP_TOKEN"), "bearer token for -hub")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return usageError(err.Error())
	}
	args = fs.Args()
	if len(args) == 0 {
		return usageError("no command")
	}
	if *hub != "" {
		return runRemote(ctx, *hub, *token, args, stdout)
	}
	c := control.NewClient(*socket)
	switch args[0] {
	case "status":
		return status(ctx, c, args[1:], stdout)
	case "record":
		return record(ctx, c, args[1:], stdout)
	case "lessons":
		return lessons(ctx, c, args[1:], stdout)
	case "export":
		return export(ctx, c, args[1:], stdout)
	case "sim":
		return simulate(ctx, c, args[1:], stdout)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError(fmt.Sprintf("unknown command %q", args[0]))
}

func jsonFlag(name string, args []string) (bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return false, usageError(name + ": " + err.Error())
	}
	if fs.NArg() > 0 {
		return false, usageError(fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(0)))
	}
	return *asJSON, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printList prints rows as JSON, or empty when there are none, or a table
// of header and one line(row) per row.
func printList[T any](w io.Writer, asJSON bool, rows []T, empty, header string, line func(T) string) error {
	if asJSON {
		return printJSON(w, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, empty)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	return tw.Flush()
}

func status(ctx context.Context, c *control.Client, args []string, w io.Writer) error {
	asJSON, err := jsonFlag("status", args)
	if err != nil {
		return err
	}
	s, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(w, s)
	}
	r := s.Recorder
	fmt.Fprintf(w, "device     %s (%s, version %s, up %s)\n", s.Device, s.Profile, s.Version, (time.Duration(s.Uptime) * time.Second).String())
	state := r.State
	if r.Reason != "" {
		state += ": " + r.Reason
	}
	fmt.Fprintf(w, "state      %s\n", state)
	if r.Lesson != "" {
		fmt.Fprintf(w, "lesson     %s (%s, started by %s, %.0f s in %d segments)\n", r.Lesson, r.Visibility, r.StartedBy, r.Recorded, r.Segments)
	} else if r.LastLesson != "" {
		fmt.Fprintf(w, "last       %s\n", r.LastLesson)
	}
	fmt.Fprintf(w, "LED        %s (%s)\n", s.LED.Pattern, s.LED.Color)
	cam := fmt.Sprintf("%s, %d frames", s.Camera.Encoder, s.Camera.Frames)
	if s.Camera.Fault != "" {
		cam += ", FAULT: " + s.Camera.Fault
	}
	fmt.Fprintf(w, "camera     %s\n", cam)
	var lv []string
	for _, l := range s.Microphone.Levels {
		lv = append(lv, fmt.Sprintf("%.0f", l.RMSDBFS))
	}
	mic := fmt.Sprintf("%d channels, RMS dBFS [%s]", len(s.Microphone.Levels), strings.Join(lv, " "))
	if len(s.Microphone.Dead) > 0 {
		mic += fmt.Sprintf(", DEAD channels %v (silent for a minute while others hear sound)", s.Microphone.Dead)
	}
	if s.Microphone.Fault != "" {
		mic += ", FAULT: " + s.Microphone.Fault
	}
	fmt.Fprintf(w, "microphone %s\n", mic)
	if a := s.Microphone.Array; a != nil {
		fmt.Fprintf(w, "array      %s\n", arrayLine(*a))
	}
	fmt.Fprintf(w, "disk       %d MB free of %d MB\n", s.Disk.FreeMB, s.Disk.TotalMB)
	clock := "not synchronised (" + s.Clock.Source + ")"
	if s.Clock.Synced {
		clock = "synchronised"
	}
	fmt.Fprintf(w, "clock      %s\n", clock)
	if u := s.Uplink; u != nil {
		since := (time.Duration(u.Since) * time.Second).String()
		line := fmt.Sprintf("connected to %s for %s", u.Broker, since)
		if !u.Connected {
			line = fmt.Sprintf("NOT connected to %s for %s", u.Broker, since)
			if u.LastError != "" {
				line += " (" + u.LastError + ")"
			}
		}
		fmt.Fprintf(w, "uplink     %s, %d messages waiting in the outbox\n", line, u.Outbox)
		if s.Config != nil {
			fmt.Fprintf(w, "config     %s from the hub\n", configText(s.Config))
		}
	} else {
		fmt.Fprintf(w, "uplink     offline (no uplink.broker configured)\n")
	}
	if u := s.Upload; u != nil {
		if u.BacklogFiles == 0 {
			fmt.Fprintln(w, "upload     nothing waiting: the hub verified every file")
		} else {
			fmt.Fprintf(w, "upload     %d files waiting (%d segments, %.1f MB)\n", u.BacklogFiles, u.BacklogSegments, float64(u.BacklogBytes)/1e6)
		}
		switch u.Window {
		case "closed":
			fmt.Fprintln(w, "           outside the upload windows: waiting for the next")
		case "clock not synced":
			fmt.Fprintln(w, "           clock not synced: upload windows cannot be judged, uploading now")
		}
		if u.Damaged > 0 {
			fmt.Fprintf(w, "storage    %d segments found damaged on disk (sent as they are): %s\n", u.Damaged, u.Problem)
		}
	}
	if l := s.Live; l != nil {
		line := fmt.Sprintf("allow %s, %d viewers", l.Allow, len(l.Viewers))
		if l.Vetoed {
			line += ", ended by the teacher for this lesson"
		}
		fmt.Fprintf(w, "live       %s\n", line)
		for _, v := range l.Viewers {
			trickled := ""
			if v.RemoteCandidates > 0 {
				trickled = fmt.Sprintf(", %d candidates trickled", v.RemoteCandidates)
			}
			fmt.Fprintf(w, "           %s %s (%s, %.0f s, %d frames sent, %d dropped%s)\n", v.Session, v.Viewer, v.State, v.Seconds, v.Video, v.Dropped, trickled)
		}
	}
	return nil
}

func record(ctx context.Context, c *control.Client, args []string, w io.Writer) error {
	if len(args) == 0 {
		return usageError("record: say start or stop")
	}
	switch args[0] {
	case "start":
		fs := flag.NewFlagSet("record start", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		vis := fs.String("visibility", "", "private, coaching or library (default: the box's setting)")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError("record start: " + err.Error())
		}
		r, err := c.Start(ctx, control.StartBody{By: "cli", Visibility: *vis})
		if err != nil {
			return fmt.Errorf("record start: %w", err)
		}
		fmt.Fprintf(w, "recording lesson %s (first picture after %.0f ms)\n", r.Lesson, r.FirstFrameMS)
		return nil
	case "stop":
		if len(args) > 1 {
			return usageError(fmt.Sprintf("record stop: unexpected argument %q", args[1]))
		}
		m, err := c.Stop(ctx, control.StopBody{By: "cli"})
		if err != nil {
			return fmt.Errorf("record stop: %w", err)
		}
		if m.ID == "" {
			fmt.Fprintln(w, "stopped before the first picture; no lesson was made")
			return nil
		}
		fmt.Fprintf(w, "stopped lesson %s: %.1f s in %d segments\n", m.ID, m.Duration, len(m.Segments))
		return nil
	}
	return usageError(fmt.Sprintf("record: unknown %q (say start or stop)", args[0]))
}

func lessons(ctx context.Context, c *control.Client, args []string, w io.Writer) error {
	asJSON, err := jsonFlag("lessons", args)
	if err != nil {
		return err
	}
	ls, err := c.Lessons(ctx)
	if err != nil {
		return err
	}
	return printList(w, asJSON, ls, "no lessons on this box yet",
		"LESSON\tSTATE\tVISIBILITY\tDURATION\tSEGMENTS\tSIZE\tSTARTED BY\tSTARTED",
		func(l catalog.Lesson) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%.1f MB\t%s\t%s", l.ID, l.State, l.Visibility,
				(time.Duration(l.Duration*1000) * time.Millisecond).Round(time.Second), l.Segments, float64(l.Bytes)/1e6, l.StartedBy, dash(l.Wall))
		})
}

func export(ctx context.Context, c *control.Client, args []string, w io.Writer) error {
	if len(args) != 2 {
		return usageError("export: want LESSON_ID OUT.mp4")
	}
	id, out := args[0], args[1]
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*"+durable.TempSuffix)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := c.Export(ctx, id, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("export: %w", err)
	}
	st, _ := tmp.Stat()
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := durable.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(w, "wrote %s (%.1f MB)\n", out, float64(st.Size())/1e6)
	return nil
}

func simulate(ctx context.Context, c *control.Client, args []string, w io.Writer) error {
	if len(args) == 0 {
		return usageError("sim: say press or hold SECONDS")
	}
	switch args[0] {
	case "press":
		if len(args) != 1 {
			return usageError("sim press takes no argument")
		}
		if err := c.Press(ctx, 0); err != nil {
			return fmt.Errorf("sim press: %w", err)
		}
		fmt.Fprintln(w, "tapped the button")
		return nil
	case "hold":
		if len(args) != 2 {
			return usageError("sim hold: want SECONDS")
		}
		secs, err := strconv.ParseFloat(args[1], 64)
		if err != nil || secs <= 0 || secs > 60 {
			return usageError(fmt.Sprintf("sim hold: %q is not a number of seconds in (0, 60]", args[1]))
		}
		if err := c.Press(ctx, secs); err != nil {
			return fmt.Errorf("sim hold: %w", err)
		}
		fmt.Fprintf(w, "held the button for %g s\n", secs)
		return nil
	}
	return usageError(fmt.Sprintf("sim: unknown %q (say press or hold SECONDS)", args[0]))
}

// arrayLine describes the microphone-array processing in one line.
func arrayLine(a control.Array) string {
	if !a.Running {
		return "off: " + a.Reason
	}
	talk := "silence"
	if a.Speech {
		talk = "speech"
	}
	return fmt.Sprintf("talker at %.0f°, speech %.0f dBFS, noise floor %.0f dBFS, AGC %+.1f dB, out %.0f dBFS RMS (%s)",
		a.AzimuthDeg, a.SpeechDBFS, a.NoiseDBFS, a.GainDB, a.OutRMSDBFS, talk)
}
