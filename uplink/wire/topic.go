// Package wire is the MQTT protocol between a box and the district hub, as
// code: the topic names under classcap/v1/<device_id>/, the JSON payloads
// (each carrying "v": 1), the command types and their arguments, the reply
// codes, and Decode functions that validate a payload and name the field that
// is wrong. Both sides use it; docs/protocol.md is its prose reference.
//
// The package only encodes and checks: it opens no connection and keeps no
// state.
package wire

import (
	"fmt"
	"strings"
)

// Version is the protocol version: the "v" of every payload and the v1 in
// every topic.
const Version = 1

// Root is the prefix of every topic: classcap/v1/<device_id>/<kind>.
const Root = "classcap/v1"

// QoS is the MQTT quality of service of every message in the protocol.
const QoS = 1

// Kind is the last level of a topic: what the messages on it are.
type Kind string

// The topic kinds.
const (
	KindState  Kind = "state"  // box -> hub, retained: the box's state; the last will sets online false
	KindCmd    Kind = "cmd"    // hub -> box: a Command
	KindReply  Kind = "reply"  // box -> hub: the Reply to a Command
	KindEvent  Kind = "event"  // box -> hub: an Event (lesson started, segment closed, alarm)
	KindUpload Kind = "upload" // box -> hub: upload request and completion (UploadMsg)
	KindGrant  Kind = "grant"  // hub -> box: upload grant and verified ack (GrantMsg)
	KindConfig Kind = "config" // hub -> box, retained: desired configuration
)

// Kinds lists every topic kind.
var Kinds = []Kind{KindState, KindCmd, KindReply, KindEvent, KindUpload, KindGrant, KindConfig}

// Valid reports whether k is one of the kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// Retained reports whether messages of this kind are published retained.
func (k Kind) Retained() bool { return k == KindState || k == KindConfig }

// FromBox reports whether the box publishes this kind (otherwise the hub
// does).
func (k Kind) FromBox() bool {
	switch k {
	case KindState, KindReply, KindEvent, KindUpload:
		return true
	}
	return false
}

// MaxDeviceIDLen is the longest device id.
const MaxDeviceIDLen = 64

// ValidateDeviceID checks that id is a device id: 1 to 64 characters, ASCII
// letters, digits, '-', '_' and '.', starting with a letter or digit. Such an
// id is one MQTT topic level with no wildcard ('+', '#') or separator ('/'),
// and is safe as a file name and in a URL path.
func ValidateDeviceID(id string) error {
	if id == "" {
		return fmt.Errorf("device id is empty")
	}
	if len(id) > MaxDeviceIDLen {
		return fmt.Errorf("device id %q is longer than %d characters", id, MaxDeviceIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			(i > 0 && (c == '-' || c == '_' || c == '.'))
		if !ok {
			return fmt.Errorf("device id %q: use letters, digits, '-', '_' and '.', starting with a letter or digit", id)
		}
	}
	return nil
}

// Topic returns classcap/v1/<device>/<kind>. It panics on an invalid device
// id or kind: callers validate ids where they enter the program (config,
// registry) so a bad one here is a bug.
func Topic(device string, k Kind) string {
	if err := ValidateDeviceID(device); err != nil {
		panic("wire.Topic: " + err.Error())
	}
	if !k.Valid() {
		panic(fmt.Sprintf("wire.Topic: unknown kind %q", k))
	}
	return Root + "/" + device + "/" + string(k)
}

// StateTopic is Topic(device, KindState).
func StateTopic(device string) string { return Topic(device, KindState) }

// CmdTopic is Topic(device, KindCmd).
func CmdTopic(device string) string { return Topic(device, KindCmd) }

// ReplyTopic is Topic(device, KindReply).
func ReplyTopic(device string) string { return Topic(device, KindReply) }

// EventTopic is Topic(device, KindEvent).
func EventTopic(device string) string { return Topic(device, KindEvent) }

// DeviceFilter is the subscription filter for every topic of one device:
// classcap/v1/<device>/#. A broker ACL grants a device this filter only.
func DeviceFilter(device string) string {
	if err := ValidateDeviceID(device); err != nil {
		panic("wire.DeviceFilter: " + err.Error())
	}
	return Root + "/" + device + "/#"
}

// KindFilter is the subscription filter for one kind on every device:
// classcap/v1/+/<kind> (what the hub subscribes to).
func KindFilter(k Kind) string {
	if !k.Valid() {
		panic(fmt.Sprintf("wire.KindFilter: unknown kind %q", k))
	}
	return Root + "/+/" + string(k)
}

// ParseTopic splits a protocol topic into its device id and kind.
func ParseTopic(topic string) (device string, kind Kind, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/")
	if !ok {
		return "", "", fmt.Errorf("topic %q does not start with %s/", topic, Root)
	}
	device, k, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("topic %q has no kind after the device id", topic)
	}
	if err := ValidateDeviceID(device); err != nil {
		return "", "", fmt.Errorf("topic %q: %w", topic, err)
	}
	kind = Kind(k)
	if !kind.Valid() {
		return "", "", fmt.Errorf("topic %q: unknown kind %q", topic, k)
	}
	return device, kind, nil
}
