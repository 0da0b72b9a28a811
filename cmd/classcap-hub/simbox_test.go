package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// simBox is a classcapd with simulated hardware reporting to a test hub.
type simBox struct {
	id, dir, data, socket, ctl string
	log                        *syncBuffer
}

// runSimBox registers id at the hub and runs classcapd for it, profile sim,
// until the test ends. sections is the configuration between [hardware]
// and [uplink] (camera, video, recording); extra is appended after
// [uplink], with table headers of its own.
func runSimBox(t *testing.T, h *testHub, id, sections, extra string) *simBox {
	t.Helper()
	daemon, ctl := boxBinaries(t)
	pw := h.verb(t, "device", "add", id)
	dir := t.TempDir()
	b := &simBox{id: id, dir: dir, data: filepath.Join(dir, "box"), ctl: ctl, log: &syncBuffer{}}
	b.socket = filepath.Join(b.data, "classcapd.sock")
	if err := os.MkdirAll(b.data, 0o700); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "mqtt-password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "box.toml")
	if err := os.WriteFile(cfg, []byte(`
[device]
id = "`+id+`"
data_dir = "`+b.data+`"
[hardware]
profile = "sim"
`+sections+`
[uplink]
broker = "`+h.broker+`"
username = "`+id+`"
password_file = "`+pwFile+`"
`+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	box := exec.Command(daemon, "-config", cfg)
	box.Stdout, box.Stderr = b.log, b.log
	if err := box.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- box.Wait() }()
	t.Cleanup(func() {
		_ = box.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = box.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("classcapd %s log:\n%s", id, b.log.String())
		}
	})
	return b
}
