// Package acl decides which MQTT topics a client may reach: a device only
// the topics the protocol gives it under its own prefix
// (classcap/v1/<device id>/; it publishes the kinds a box sends and
// subscribes to the kinds the hub sends), the hub everything under
// classcap/v1/. The embedded broker asks it on every connect, publish,
// subscribe and delivery; package mosquitto writes the same rules for an
// external broker.
package acl

import (
	"strings"

	"github.com/classcap/classcap/uplink/wire"
)

// HubUser is the MQTT user name of the hub's own client. No device may
// take it (registry.ValidateDeviceID refuses it).
const HubUser = "classcap-hub"

const root = wire.Root + "/"

// Allowed reports whether user may publish to (write) or subscribe to and
// receive from (!write) topic, a topic name or filter. A device may
// subscribe to its own prefix with a wildcard (classcap/v1/<id>/# or /+):
// the broker asks again for every message it would deliver, and only the
// kinds the hub sends pass. Any other wildcard filter is refused.
func Allowed(user, topic string, write bool) bool {
	if user == HubUser {
		return strings.HasPrefix(topic, root)
	}
	if wire.ValidateDeviceID(user) != nil {
		return false
	}
	rest, ok := strings.CutPrefix(topic, root+user+"/")
	if !ok {
		return false
	}
	if !write && (rest == "#" || rest == "+") {
		return true
	}
	k := wire.Kind(rest)
	return k.Valid() && k.FromBox() == write
}
