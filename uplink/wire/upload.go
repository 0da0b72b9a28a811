package wire

import "time"

// UploadTopic is where a box asks for upload grants and reports files sent.
func UploadTopic(device string) string { return Topic(device, KindUpload) }

// GrantTopic is where the hub answers a box's upload messages.
func GrantTopic(device string) string { return Topic(device, KindGrant) }

// Upload message types (box -> hub, on upload).
const (
	UploadRequest  = "request"  // the box wants to send a file: answered by a grant (or verified, if stored)
	UploadComplete = "complete" // the box sent every byte: answered by verified (or refused)
)

// Grant message types (hub -> box, on grant).
const (
	GrantGranted  = "grant"    // URL and token for one file
	GrantVerified = "verified" // the hub holds the file with its size and SHA-256: the box may mark it verified
	GrantRefused  = "refused"  // no grant, or the hub does not hold the file: Error says why; the box asks again later
)

// FileRef names one file of a lesson and what it must be.
type FileRef struct {
	Lesson  string `json:"lesson"`
	File    string `json:"file"`              // init.mp4, seg_000001.m4s, index.m3u8, lesson.json
	Segment int    `json:"segment,omitempty"` // segment number; 0 for the other files
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"` // hex
}

// UploadMsg is published by the box on its upload topic. Either may repeat
// (after a crash or a lost answer): the hub answers each again, the same way.
type UploadMsg struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	FileRef
}

// GrantMsg is published by the hub on the box's grant topic.
type GrantMsg struct {
	V    int    `json:"v"`
	Type string `json:"type"`
	FileRef
	URL       string    `json:"url,omitempty"`   // on grant: the tus creation URL
	Token     string    `json:"token,omitempty"` // on grant: the upload token (bearer)
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Error     string    `json:"error,omitempty"` // on refused
}

func (f FileRef) validate() error {
	if err := validateToken("lesson", f.Lesson, 128); err != nil {
		return err
	}
	if err := validateToken("file", f.File, 128); err != nil {
		return err
	}
	if f.Segment < 0 {
		return fieldErr("segment", "is negative")
	}
	if f.Bytes < 0 {
		return fieldErr("bytes", "is negative")
	}
	if !isHex(f.SHA256, 64) {
		return fieldErr("sha256", "%q is not 64 hex digits", f.SHA256)
	}
	return nil
}

// Validate checks an upload message.
func (m UploadMsg) Validate() error {
	if err := checkVersion(m.V); err != nil {
		return err
	}
	switch m.Type {
	case UploadRequest, UploadComplete:
	case "":
		return fieldErr("type", "is missing")
	default:
		return fieldErr("type", "%q is not one of request, complete", m.Type)
	}
	return m.FileRef.validate()
}

// DecodeUpload reads and checks an upload message.
func DecodeUpload(b []byte) (UploadMsg, error) {
	return decodeChecked("upload", b, false, UploadMsg.Validate)
}

// Validate checks a grant message.
func (m GrantMsg) Validate() error {
	if err := checkVersion(m.V); err != nil {
		return err
	}
	switch m.Type {
	case GrantGranted:
		if err := validateToken("url", m.URL, 2048); err != nil {
			return err
		}
		if err := validateToken("token", m.Token, 4096); err != nil {
			return err
		}
	case GrantVerified:
	case GrantRefused:
		if err := validateText("error", m.Error, 1024); err != nil {
			return err
		}
	case "":
		return fieldErr("type", "is missing")
	default:
		return fieldErr("type", "%q is not one of grant, verified, refused", m.Type)
	}
	return m.FileRef.validate()
}

// DecodeGrant reads and checks a grant message.
func DecodeGrant(b []byte) (GrantMsg, error) {
	return decodeChecked("grant", b, false, GrantMsg.Validate)
}
