package ingest

import (
	"time"

	"github.com/classcap/classcap/capture/lesson"
	"github.com/classcap/classcap/uplink/wire"
)

// GrantTTL is how long an upload token is valid. A transfer that outlives
// it goes on: the token is checked only when an upload is created.
const GrantTTL = 15 * time.Minute

// Answer returns the hub's answer to a box's upload message, for the box's
// grant topic: a grant (or verified, when the file is already stored) to a
// request, verified (or refused) to a completion. endpoint is the tus
// creation URL the box reaches the hub at. It keeps no state: the same
// message gets the same kind of answer every time.
func (in *Ingest) Answer(device string, m wire.UploadMsg, endpoint string) wire.GrantMsg {
	out := wire.GrantMsg{V: wire.Version, FileRef: m.FileRef}
	refuse := func(msg string) wire.GrantMsg {
		out.Type, out.Error = wire.GrantRefused, msg
		return out
	}
	if !lesson.ValidID(m.Lesson) || !ValidName(m.File) {
		return refuse("bad lesson id or file name")
	}
	f, ok, err := in.cfg.Store.Lookup(m.Lesson, m.File)
	if err != nil {
		in.log.Error("upload answer", "device", device, "lesson", m.Lesson, "file", m.File, "err", err)
		return refuse("the hub cannot read its lesson store")
	}
	if ok && f.SHA256 == m.SHA256 && f.Size == m.Bytes {
		out.Type = wire.GrantVerified
		return out
	}
	switch m.Type {
	case wire.UploadRequest:
		if ok && !mutable(m.File) {
			return refuse("stored with other bytes (sha256 " + f.SHA256 + ")")
		}
		if in.cfg.MaxSize > 0 && m.Bytes > in.cfg.MaxSize {
			return refuse("file too large")
		}
		out.Type = wire.GrantGranted
		out.URL = endpoint
		out.ExpiresAt = in.now().Add(GrantTTL).UTC().Truncate(time.Second)
		out.Token = Sign(in.cfg.Key, Grant{Device: device, Lesson: m.Lesson, File: m.File, Size: m.Bytes,
			SHA256: m.SHA256, Expires: out.ExpiresAt})
		return out
	default: // complete, but not stored as announced
		return refuse("not stored with that size and sha256: send it again")
	}
}
