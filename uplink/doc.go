// Package uplink holds the box's connections to the people and systems that
// drive it: the local control API that classcapctl speaks (control), the
// MQTT protocol shared with the hub (wire), the MQTT link to the district
// hub, and uploads: our tus client (tus), the uploader (uploader),
// and the bandwidth pacer (pace) and TCP fault proxy (faultproxy) they and
// their tests use.
package uplink
