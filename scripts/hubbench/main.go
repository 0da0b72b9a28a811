// Command hubbench holds the measuring steps of scripts/bench-remote.sh:
// waiting for a box to come online at the hub, timing remote starts through
// the hub's API, and running many lightweight fake boxes (MQTT clients that
// publish a state and subscribe to their commands) against the same broker.
//
// Usage:
//
//	hubbench online -hub URL -token T -device ID [-timeout D]
//	                               wait until the hub reports the box online and idle
//	hubbench starts -hub URL -token T -device ID [-n N]
//	                               N remote starts, each followed by a remote stop; one line per start:
//	                               the API call's time to its answer in ms (the box answers once
//	                               its first frame is recorded)
//	hubbench fakes -socket HUB_SOCK -broker URL [-n N] [-every D] [-prefix P]
//	                               register N devices through the hub's local socket (reusing those
//	                               registered before), connect them, publish their state every D;
//	                               prints "ready N" once all are connected; runs until killed
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/classcap/classcap/hub/api"
	"github.com/classcap/classcap/uplink/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hubbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("no command (online, starts, fakes)")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	hub := fs.String("hub", "", "the hub's URL")
	token := fs.String("token", "", "an API token")
	device := fs.String("device", "", "the box")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait")
	n := fs.Int("n", 200, "how many")
	socket := fs.String("socket", "", "the hub's local socket")
	broker := fs.String("broker", "", "the MQTT broker's URL")
	every := fs.Duration("every", 5*time.Second, "state period of each fake box")
	prefix := fs.String("prefix", "fake-", "id prefix of the fake boxes")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "online":
		c, err := api.NewClient(*hub, *token)
		if err != nil {
			return err
		}
		return online(ctx, c, *device, *timeout)
	case "starts":
		c, err := api.NewClient(*hub, *token)
		if err != nil {
			return err
		}
		return starts(ctx, c, *device, *n, stdout)
	case "fakes":
		if *socket == "" || *broker == "" {
			return errors.New("fakes: want -socket and -broker")
		}
		return fakes(ctx, *socket, *broker, *prefix, *n, *every, filepath.Dir(*socket), stdout)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func online(ctx context.Context, c *api.Client, device string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		d, err := c.Device(ctx, device)
		if err == nil && d.Online && d.Recorder == wire.RecorderIdle {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not online and idle after %v (last: %+v, %v)", device, timeout, d.DeviceSummary, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func starts(ctx context.Context, c *api.Client, device string, n int, stdout io.Writer) error {
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for i := 0; i < n; i++ {
		t0 := time.Now()
		r, err := c.RecordStart(ctx, device, api.RecordStartRequest{})
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if err != nil {
			return fmt.Errorf("start %d: %w", i+1, err)
		}
		if r.Result.VetoWaitedMS > 0 {
			return fmt.Errorf("start %d: the box waited %d ms for the teacher: set recording.veto_seconds = 0 for the bench", i+1, r.Result.VetoWaitedMS)
		}
		fmt.Fprintf(w, "%.3f\n", ms)
		if _, err := c.RecordStop(ctx, device, api.RecordStopRequest{}); err != nil {
			return fmt.Errorf("stop %d: %w", i+1, err)
		}
	}
	return nil
}

// localClient talks to the hub's local socket.
func localClient(socket string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}}
}

// register adds device id through the hub's socket and returns its
// password, or reads the password saved by an earlier run from dir.
func register(ctx context.Context, hc *http.Client, id, dir string) (string, error) {
	saved := filepath.Join(dir, "hubbench-"+id+".password")
	if b, err := os.ReadFile(saved); err == nil {
		return string(b), nil
	}
	body, _ := json.Marshal(api.AddDeviceRequest{ID: id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://hub/api/v1/devices", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("add %s: %w", id, err)
	}
	defer resp.Body.Close()
	var r api.AddDeviceResponse
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&r) != nil {
		return "", fmt.Errorf("add %s: %s", id, resp.Status)
	}
	if err := os.WriteFile(saved, []byte(r.Password), 0o600); err != nil {
		return "", err
	}
	return r.Password, nil
}

func fakeState(uptime float64) []byte {
	s := wire.State{V: wire.Version, Online: true,
		Recorder:   &wire.Recorder{State: wire.RecorderIdle},
		Disk:       &wire.Disk{FreeMB: 20000, TotalMB: 30000},
		Camera:     &wire.Camera{OK: true, Encoder: "fake", Frames: uint64(uptime * 30)},
		Microphone: &wire.Microphone{OK: true, Levels: []wire.Level{{PeakDBFS: -12, RMSDBFS: -30}}},
		Upload:     &wire.Upload{}, Clock: &wire.Clock{Synced: true, Source: "fake"},
		Version: "hubbench", UptimeS: uptime}
	b, _ := json.Marshal(s)
	return b
}

func fakes(ctx context.Context, socket, broker, prefix string, n int, every time.Duration, dir string, stdout io.Writer) error {
	hc := localClient(socket)
	passwords := make([]string, n)
	var regWG sync.WaitGroup
	regErrs := make(chan error, n)
	next := atomic.Int64{}
	for range 4 { // the hub hashes each new password; a few at a time keep both cores busy
		regWG.Add(1)
		go func() {
			defer regWG.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				pw, err := register(ctx, hc, fmt.Sprintf("%s%04d", prefix, i), dir)
				if err != nil {
					regErrs <- err
					return
				}
				passwords[i] = pw
			}
		}()
	}
	regWG.Wait()
	close(regErrs)
	if err := <-regErrs; err != nil {
		return err
	}
	var connected atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16) // connect a few at a time: each login checks a bcrypt hash
	start := time.Now()
	for i := range n {
		id := fmt.Sprintf("%s%04d", prefix, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(id).SetPassword(passwords[i]).
				SetProtocolVersion(4).SetCleanSession(false).SetAutoReconnect(true).SetKeepAlive(60*time.Second).
				SetWill(wire.StateTopic(id), string(wire.LastWill()), wire.QoS, true)
			c := paho.NewClient(opts)
			tok := c.Connect()
			ok := tok.WaitTimeout(120*time.Second) && tok.Error() == nil
			<-sem
			if !ok {
				errs <- fmt.Errorf("%s: connect: %v", id, tok.Error())
				return
			}
			defer c.Disconnect(100)
			c.Subscribe(wire.CmdTopic(id), wire.QoS, func(paho.Client, paho.Message) {}).Wait()
			c.Publish(wire.StateTopic(id), wire.QoS, true, fakeState(0)).Wait()
			connected.Add(1)
			t := time.NewTicker(every + time.Duration(rand.Int64N(int64(every/10)+1)))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					c.Publish(wire.StateTopic(id), wire.QoS, true, fakeState(time.Since(start).Seconds()))
				}
			}
		}()
	}
	// Report readiness once every fake is connected.
	for connected.Load() < int64(n) {
		select {
		case err := <-errs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(stdout, "ready %d\n", n)
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	wg.Wait()
	return nil
}
