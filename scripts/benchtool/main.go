// Command benchtool holds the measuring steps of scripts/bench.sh that are
// awkward in shell: reading a process's CPU time and peak RSS, running a
// command under getrusage, talking to classcapd's control socket, and
// formatting the "bench ..." lines.
//
// Usage:
//
//	benchtool cpu PID                      user+sys CPU seconds of a running process
//	benchtool hwm PID                      peak RSS (VmHWM) of a running process, MB
//	benchtool rusage -o FILE -- CMD ARGS   run CMD; write "CPU_SECONDS MAXRSS_MB" of it to FILE
//	benchtool ready -socket S [-timeout D] wait until classcapd answers and its camera and microphone deliver
//	benchtool hold -socket S -pid P -for D keep a recording going for D, failing if it ends
//	benchtool lesson FILE                  media duration in seconds of a lesson.json
//	benchtool taps -socket S [-n N] [-hold D] [-gap D]
//	                                       start/stop N times; one first-picture latency (ms) per line
//	benchtool quantile -p P                the P quantile (0..1) of the numbers on stdin
//	benchtool feed -video F -audio F -video-to P -audio-to P [-fps N] [-block D]
//	                                       write the files into named pipes in real time
//	benchtool line -name N -ours V [-peer V] -unit U
//	                                       one "bench" line; ratio = ours/peer
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/uplink/control"
)

// userHZ is the unit of the CPU times in /proc/PID/stat (USER_HZ, which
// Linux fixes at 100 on every architecture it exports to user space).
const userHZ = 100

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command (cpu, hwm, rusage, ready, hold, lesson, taps, quantile, feed, line)")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	socket := fs.String("socket", "", "classcapd's control socket")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	switch cmd {
	case "cpu", "hwm":
		if len(args) != 1 {
			return fmt.Errorf("%s: want one PID", cmd)
		}
		pid, err := strconv.Atoi(args[0])
		if err != nil {
			return fmt.Errorf("%s: bad PID %q", cmd, args[0])
		}
		if cmd == "cpu" {
			s, err := cpuSeconds(pid)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%.2f\n", s)
			return err
		}
		mb, err := peakRSSMB(pid)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%.1f\n", mb)
		return err

	case "rusage":
		out := fs.String("o", "", "file for \"CPU_SECONDS MAXRSS_MB\"")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *out == "" || fs.NArg() == 0 {
			return errors.New("rusage: want -o FILE -- CMD ARGS")
		}
		return rusage(ctx, *out, fs.Args())

	case "ready":
		if err := fs.Parse(args); err != nil {
			return err
		}
		return ready(ctx, control.NewClient(*socket), *timeout)

	case "hold":
		pid := fs.Int("pid", 0, "classcapd's PID")
		d := fs.Duration("for", 30*time.Second, "how long to keep recording")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return hold(ctx, control.NewClient(*socket), *pid, *d)

	case "lesson":
		if len(args) != 1 {
			return errors.New("lesson: want the path of a lesson.json")
		}
		m, err := readMeta(args[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%.3f\n", m.Duration)
		return err

	case "taps":
		n := fs.Int("n", 20, "how many start/stop cycles")
		holdFor := fs.Duration("hold", time.Second, "recording time of each cycle")
		gap := fs.Duration("gap", time.Second, "pause after each stop")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return taps(ctx, control.NewClient(*socket), *n, *holdFor, *gap, stdout)

	case "quantile":
		p := fs.Float64("p", 0.5, "quantile, 0..1")
		if err := fs.Parse(args); err != nil {
			return err
		}
		xs, err := readNumbers(stdin)
		if err != nil {
			return err
		}
		q, err := quantile(xs, *p)
		if err != nil {
			return err
		}
		// In full: callers round for their own lines, and a median of CPU
		// figures near 0.03 must keep its fourth decimal.
		_, err = fmt.Fprintln(stdout, strconv.FormatFloat(q, 'g', -1, 64))
		return err

	case "feed":
		video := fs.String("video", "", "H.264 Annex-B file")
		audio := fs.String("audio", "", "WAV file")
		videoTo := fs.String("video-to", "", "where the access units go (a named pipe)")
		audioTo := fs.String("audio-to", "", "where the samples go (a named pipe)")
		fps := fs.Float64("fps", 30, "access units per second")
		block := fs.Duration("block", 60*time.Millisecond, "audio written at a time")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *video == "" || *audio == "" || *videoTo == "" || *audioTo == "" {
			return errors.New("feed: want -video, -audio, -video-to and -audio-to")
		}
		return feed(ctx, *video, *audio, *videoTo, *audioTo, *fps, *block)

	case "line":
		name := fs.String("name", "", "figure name")
		ours := fs.String("ours", "", "our value")
		peer := fs.String("peer", "", "the peer's value (empty: no peer)")
		unit := fs.String("unit", "", "unit")
		if err := fs.Parse(args); err != nil {
			return err
		}
		l, err := line(*name, *ours, *peer, *unit)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, l)
		return err
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// cpuSeconds reads utime+stime of every thread of pid (alive or exited)
// from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	p := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	s, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return s, nil
}

// parseStat returns utime+stime in seconds from the text of a
// /proc/PID/stat file.
func parseStat(b []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. utime and stime are fields 14, 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	const utime = 14 - 3 // f[0] is field 3
	if len(f) <= utime+1 {
		return 0, fmt.Errorf("%d fields, want at least 15", len(f)+2)
	}
	var ticks uint64
	for _, s := range f[utime : utime+2] {
		t, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("utime/stime: %w", err)
		}
		if ticks+t < ticks {
			return 0, errors.New("utime+stime overflows")
		}
		ticks += t
	}
	return float64(ticks) / userHZ, nil
}

// peakRSSMB reads VmHWM from /proc/PID/status, in MB (2^20 bytes).
func peakRSSMB(pid int) (float64, error) {
	p := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: VmHWM %q: %w", p, rest, err)
		}
		return kb / 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	return 0, fmt.Errorf("read %s: no VmHWM line", p)
}

// rusage runs argv with its output passed through and writes the child's
// CPU seconds (user+sys) and peak RSS in MB to out.
func rusage(ctx context.Context, out string, argv []string) error {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = nil, os.Stdout, os.Stderr
	runErr := c.Run()
	if c.ProcessState == nil {
		return fmt.Errorf("run %s: %w", argv[0], runErr)
	}
	ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("rusage: not available on this system")
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	rssMB := float64(ru.Maxrss) / 1024 // Linux: kilobytes
	if err := os.WriteFile(out, fmt.Appendf(nil, "%.3f %.1f\n", cpu, rssMB), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if runErr != nil {
		return fmt.Errorf("run %s: %w", argv[0], runErr)
	}
	return nil
}

// ready waits until the daemon answers and its camera and microphones have
// delivered, or timeout passes.
func ready(ctx context.Context, c *control.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		s, err := c.Status(ctx)
		switch {
		case err != nil:
			last = err
		case s.Camera.Fault != "":
			return fmt.Errorf("camera fault: %s", s.Camera.Fault)
		case s.Microphone.Fault != "":
			return fmt.Errorf("microphone fault: %s", s.Microphone.Fault)
		case s.Camera.Frames > 0 && s.Microphone.Packets > 0:
			return nil
		default:
			last = fmt.Errorf("%d camera frames, %d microphone packets so far", s.Camera.Frames, s.Microphone.Packets)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("classcapd not ready within %v: %v", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// hold returns after d, checking every few seconds that pid is alive and
// the recorder still records.
func hold(ctx context.Context, c *control.Client, pid int, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, 5*time.Second)):
		}
		if pid > 0 {
			if err := syscall.Kill(pid, 0); err != nil {
				return fmt.Errorf("classcapd (pid %d) is gone: %w", pid, err)
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := c.Status(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		if s.Recorder.State != "recording" {
			return fmt.Errorf("recorder is %s, not recording (%s)", s.Recorder.State, s.Recorder.Reason)
		}
	}
}

func readMeta(path string) (lesson.Meta, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return lesson.Meta{}, fmt.Errorf("read lesson: %w", err)
	}
	m, err := lesson.ParseMeta(b)
	if err != nil {
		return lesson.Meta{}, fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	return m, nil
}

// taps starts and stops a recording n times and prints each start's
// first-picture latency as the daemon reports it.
func taps(ctx context.Context, c *control.Client, n int, holdFor, gap time.Duration, w io.Writer) error {
	for i := range n {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		r, err := c.Start(sctx, control.StartBody{By: "cli"})
		cancel()
		if err != nil {
			return fmt.Errorf("record start %d of %d: %w", i+1, n, err)
		}
		if _, err := fmt.Fprintf(w, "%.3f\n", r.FirstFrameMS); err != nil {
			return err
		}
		if err := sleep(ctx, holdFor); err != nil {
			return err
		}
		sctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		_, err = c.Stop(sctx, control.StopBody{By: "cli"})
		cancel()
		if err != nil {
			return fmt.Errorf("record stop %d of %d: %w", i+1, n, err)
		}
		if err := sleep(ctx, gap); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func readNumbers(r io.Reader) ([]float64, error) {
	var xs []float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("read numbers: %w", err)
		}
		xs = append(xs, x)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read numbers: %w", err)
	}
	return xs, nil
}

// quantile is the p quantile of xs, interpolating linearly between the
// closest ranks (p = 0.5 is the median: the mean of the middle two for an
// even count).
func quantile(xs []float64, p float64) (float64, error) {
	if len(xs) == 0 {
		return 0, errors.New("quantile: no numbers")
	}
	if p < 0 || p > 1 || math.IsNaN(p) {
		return 0, fmt.Errorf("quantile: p %v is not in 0..1", p)
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := p * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo]), nil
}

// line formats one figure; with a peer it adds ratio = ours/peer.
func line(name, ours, peer, unit string) (string, error) {
	if name == "" || ours == "" || unit == "" {
		return "", errors.New("line: -name, -ours and -unit are required")
	}
	o, err := strconv.ParseFloat(ours, 64)
	if err != nil {
		return "", fmt.Errorf("line %s: ours: %w", name, err)
	}
	if peer == "" {
		return fmt.Sprintf("bench %s ours=%s unit=%s", name, ours, unit), nil
	}
	p, err := strconv.ParseFloat(peer, 64)
	if err != nil {
		return "", fmt.Errorf("line %s: peer: %w", name, err)
	}
	if p == 0 {
		return "", fmt.Errorf("line %s: peer is 0, no ratio", name)
	}
	return fmt.Sprintf("bench %s ours=%s peer=%s ratio=%.3f unit=%s", name, ours, peer, o/p, unit), nil
}
