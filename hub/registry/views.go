package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// View is one live view of a device, as the box logged it through its
// events: who watched, when and for how long.
type View struct {
	Device  string    `json:"device"`
	Session string    `json:"session"`
	Viewer  string    `json:"viewer"`
	Lesson  string    `json:"lesson,omitempty"`     // the lesson recording meanwhile
	Started time.Time `json:"started,omitzero"`     // wall time on the box, when its clock was synced
	Ended   time.Time `json:"ended,omitzero"`       // wall time of the end event, when synced
	Seconds float64   `json:"seconds"`              // how long it lasted (once ended)
	Reason  string    `json:"reason,omitempty"`     // why it ended
	Video   uint64    `json:"video_frames"`         // access units sent
	Audio   uint64    `json:"audio_packets"`        // Opus packets sent
	Dropped uint64    `json:"dropped"`              // lost in the viewer's queue on the box
	Live    bool      `json:"live"`                 // started and not yet reported ended
	Seen    time.Time `json:"reported_at,omitzero"` // when the hub first heard of it
}

func viewKey(device, session string) string { return device + "\x00" + session }

// UpdateView merges what an event says about a view into its record: f
// gets the stored view, or a new one carrying device and session.
func (t *Tx) UpdateView(device, session string, f func(*View)) error {
	b := t.tx.Bucket(bucketViews)
	k := viewKey(device, session)
	v := View{Device: device, Session: session}
	if raw := b.Get([]byte(k)); raw != nil {
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("view %s/%s: %w", device, session, err)
		}
	}
	if v.Seen.IsZero() {
		v.Seen = t.now
	}
	f(&v)
	v.Device, v.Session = device, session
	return putJSON(b, k, v)
}

// Views returns the live views of device (all devices when device is ""),
// in the order the hub heard of them.
func (r *Registry) Views(device string) ([]View, error) {
	var out []View
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketViews).Cursor()
		prefix := []byte(nil)
		if device != "" {
			prefix = []byte(device + "\x00")
		}
		for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
			var v View
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("view %q: %w", bytes.ReplaceAll(k, []byte{0}, []byte{'/'}), err)
			}
			out = append(out, v)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b View) int { return a.Seen.Compare(b.Seen) })
	return out, err
}
