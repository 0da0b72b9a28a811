// Package uplink holds the box's connections to the people and systems that
// drive it: the local control API that classcapctl speaks (control), the
// MQTT protocol shared with the hub (wire), and the MQTT link to the
// district hub.
package uplink
