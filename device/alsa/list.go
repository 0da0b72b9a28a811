package alsa

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PCMDevice is one PCM device of /proc/asound/pcm that can capture.
type PCMDevice struct {
	Addr       Addr   // Subdevice -1
	ID, Name   string // the driver's PCM id and name
	Subdevices int    // capture subdevices
}

// String returns the hw name to configure for d ("hw:1,0").
func (d PCMDevice) String() string { return d.Addr.String() }

// CaptureDevices lists the PCM devices that can capture, in card and
// device order, from procRoot (normally "/proc/asound"). No sound card at
// all is an empty list, not an error.
func CaptureDevices(procRoot string) ([]PCMDevice, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "pcm"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list capture devices: %w", err)
	}
	var out []PCMDevice
	for _, line := range strings.Split(string(b), "\n") {
		if d, ok := parsePCMLine(line); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// parsePCMLine parses one line of /proc/asound/pcm:
// "00-01: Loopback PCM : Loopback PCM : playback 8 : capture 8". It
// reports false for lines without capture subdevices or malformed ones.
func parsePCMLine(line string) (PCMDevice, bool) {
	head, rest, ok := strings.Cut(strings.TrimSpace(line), ": ")
	if !ok {
		return PCMDevice{}, false
	}
	cs, ds, ok := strings.Cut(head, "-")
	if !ok {
		return PCMDevice{}, false
	}
	card, err1 := strconv.Atoi(cs)
	dev, err2 := strconv.Atoi(ds)
	if err1 != nil || err2 != nil || card < 0 || card > maxIndex || dev < 0 || dev > maxIndex {
		return PCMDevice{}, false
	}
	fields := strings.Split(rest, " : ")
	if len(fields) < 3 {
		return PCMDevice{}, false
	}
	d := PCMDevice{Addr: Addr{Card: card, Device: dev, Subdevice: -1},
		ID: strings.TrimSpace(fields[0]), Name: strings.TrimSpace(fields[1])}
	for _, f := range fields[2:] {
		if n, ok := strings.CutPrefix(strings.TrimSpace(f), "capture "); ok {
			if k, err := strconv.Atoi(n); err == nil && k > 0 {
				d.Subdevices = k
			}
		}
	}
	return d, d.Subdevices > 0
}
