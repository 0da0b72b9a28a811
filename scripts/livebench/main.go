// Command livebench holds the viewers of scripts/bench-live.sh: N Go WebRTC
// viewers (pion, capture/live/whep) that watch a box through the hub's WHEP
// endpoint and read everything it sends.
//
// Usage:
//
//	livebench watch -hub URL -token T -device ID [-n N] [-timeout D]
//	        connect N viewers; print "ready N" once each has received a keyframe,
//	        pictures and sound; run until killed, then print what each received
//	        (to stderr) and end the views (DELETE)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/classcap/classcap/capture/live/whep"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "livebench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "watch" {
		return errors.New("usage: livebench watch -hub URL -token T -device ID [-n N] [-timeout D]")
	}
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	hub := fs.String("hub", "", "the hub's URL")
	token := fs.String("token", "", "an API token (coach)")
	device := fs.String("device", "", "the box")
	n := fs.Int("n", 1, "viewers")
	timeout := fs.Duration("timeout", 60*time.Second, "how long the viewers may take to receive")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *hub == "" || *device == "" || *n < 1 {
		return errors.New("watch: want -hub, -device and -n >= 1")
	}
	type viewer struct {
		c *whep.Client
		v *whep.Viewer
	}
	var vs []viewer
	defer func() {
		for i, x := range vs {
			c := x.v.Counts()
			fmt.Fprintf(stderr, "livebench: viewer %d: %d frames (%d keyframes, %.1f MB), %d audio packets\n",
				i, c.VideoFrames, c.Keyframes, float64(c.VideoBytes)/1e6, c.AudioPackets)
			dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			x.c.Delete(dctx)
			cancel()
			x.v.Close()
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for range *n {
		c := &whep.Client{Endpoint: *hub + "/live/" + *device + "/whep", Token: *token}
		v, err := whep.Dial(dctx, c.Signal, whep.Options{Loopback: true})
		if err != nil {
			return err
		}
		vs = append(vs, viewer{c, v})
	}
	for i, x := range vs {
		for {
			c := x.v.Counts()
			if c.Keyframes > 0 && c.VideoFrames >= 10 && c.AudioPackets >= 10 {
				break
			}
			select {
			case <-dctx.Done():
				return fmt.Errorf("viewer %d received %+v within %v", i, c, *timeout)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	fmt.Fprintf(stdout, "ready %d\n", len(vs))
	<-ctx.Done()
	return nil
}
