package alsa

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrBadName is wrapped by errors about device names that cannot be parsed
// or resolved.
var ErrBadName = errors.New("bad ALSA device name")

// Name is a parsed "hw:" device name. Card is either a decimal index or a
// card id (as in /proc/asound/cards); Subdevice is -1 when any free
// subdevice will do.
type Name struct {
	Card      string
	Device    int
	Subdevice int
}

// Addr is a resolved capture device.
type Addr struct {
	Card, Device, Subdevice int // Subdevice -1: any
}

// Path returns the capture device node under devRoot (normally "/dev/snd").
func (a Addr) Path(devRoot string) string { return a.node(devRoot, 'c') }

// PlaybackPath returns the playback device node under devRoot.
func (a Addr) PlaybackPath(devRoot string) string { return a.node(devRoot, 'p') }

func (a Addr) node(devRoot string, stream byte) string {
	return filepath.Join(devRoot, fmt.Sprintf("pcmC%dD%d%c", a.Card, a.Device, stream))
}

// String formats a in the canonical "hw:C,D[,S]" form.
func (a Addr) String() string {
	if a.Subdevice < 0 {
		return fmt.Sprintf("hw:%d,%d", a.Card, a.Device)
	}
	return fmt.Sprintf("hw:%d,%d,%d", a.Card, a.Device, a.Subdevice)
}

// maxIndex bounds card, device and subdevice numbers (the kernel allows 32
// cards; devices and subdevices are small).
const maxIndex = 255

// ParseName parses an alsa-lib style hw device name: "hw:1", "hw:1,0",
// "hw:1,0,2", "hw:Loopback,1,0" or "hw:CARD=Loopback,DEV=1,SUBDEV=0"
// (keys in any order, case-insensitive). The device defaults to 0 and the
// subdevice to any. Other plugins ("plughw:", "default", "dmix") are
// rejected: this package opens the kernel device itself and converts
// formats on its own.
func ParseName(s string) (Name, error) {
	bad := func(why string) (Name, error) {
		return Name{}, fmt.Errorf("%w %q: %s", ErrBadName, s, why)
	}
	rest, ok := strings.CutPrefix(s, "hw:")
	if !ok {
		return bad(`want "hw:CARD,DEV[,SUBDEV]" or "hw:CARD=name,DEV=n"`)
	}
	n := Name{Subdevice: -1}
	parts := strings.Split(rest, ",")
	if len(parts) > 3 {
		return bad("too many fields")
	}
	keyed := strings.Contains(rest, "=")
	seen := map[string]bool{}
	for i, p := range parts {
		var key, val string
		if keyed {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return bad("mixes KEY=value and positional fields")
			}
			key, val = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		} else {
			key, val = [...]string{"CARD", "DEV", "SUBDEV"}[i], strings.TrimSpace(p)
		}
		if seen[key] {
			return bad("repeated " + key)
		}
		seen[key] = true
		switch key {
		case "CARD":
			if !validCardID(val) {
				return bad("card must be an index or an id of letters, digits, '_' and '-'")
			}
			n.Card = val
		case "DEV", "SUBDEV":
			v, err := strconv.Atoi(val)
			if err != nil || v < 0 || v > maxIndex {
				return bad(strings.ToLower(key) + " must be a number 0-255")
			}
			if key == "DEV" {
				n.Device = v
			} else {
				n.Subdevice = v
			}
		default:
			return bad("unknown key " + key)
		}
	}
	if n.Card == "" {
		return bad("no card")
	}
	return n, nil
}

// validCardID reports whether s can be a card index or a card id: the
// kernel's ids are at most 15 characters of letters, digits, '_' and '-'.
func validCardID(s string) bool {
	if s == "" || len(s) > 31 {
		return false
	}
	for _, r := range s {
		ok := r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}

// String formats n as an alsa-lib name.
func (n Name) String() string {
	if n.Subdevice < 0 {
		return fmt.Sprintf("hw:%s,%d", n.Card, n.Device)
	}
	return fmt.Sprintf("hw:%s,%d,%d", n.Card, n.Device, n.Subdevice)
}

// Resolve turns n into card and device numbers. A card id is looked up in
// procRoot (normally "/proc/asound"): first the "<id>" symlink the kernel
// keeps to "card<N>", then the "cards" table.
func (n Name) Resolve(procRoot string) (Addr, error) {
	a := Addr{Device: n.Device, Subdevice: n.Subdevice}
	if i, err := strconv.Atoi(n.Card); err == nil {
		if i < 0 || i > maxIndex {
			return Addr{}, fmt.Errorf("%w %q: card index out of range", ErrBadName, n)
		}
		a.Card = i
		return a, nil
	}
	if dst, err := os.Readlink(filepath.Join(procRoot, n.Card)); err == nil {
		if i, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dst), "card")); err == nil && strings.HasPrefix(filepath.Base(dst), "card") {
			a.Card = i
			return a, nil
		}
	}
	b, err := os.ReadFile(filepath.Join(procRoot, "cards"))
	if err != nil {
		return Addr{}, fmt.Errorf("resolve %s: %w", n, err)
	}
	cards := parseCards(b)
	if i, ok := cards[n.Card]; ok {
		a.Card = i
		return a, nil
	}
	ids := make([]string, 0, len(cards))
	for id, i := range cards {
		ids = append(ids, fmt.Sprintf("%d=%s", i, id))
	}
	slices.Sort(ids)
	return Addr{}, fmt.Errorf("%w %q: no sound card with id %q (cards: %s)", ErrBadName, n, n.Card, strings.Join(ids, " "))
}

// parseCards reads /proc/asound/cards: lines " 0 [Loopback       ]: ..."
// map the card id to its index.
func parseCards(b []byte) map[string]int {
	m := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		idx, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil {
			continue
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, "[") {
			continue
		}
		id, _, ok := strings.Cut(rest[1:], "]")
		if !ok {
			continue
		}
		if id = strings.TrimSpace(id); id != "" {
			m[id] = i
		}
	}
	return m
}
