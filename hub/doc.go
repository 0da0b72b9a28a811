// Package hub is the district side of classcap, the parts classcap-hub wires
// together, one noun each:
//
//	registry   bbolt: devices and their MQTT credentials, last state, lessons, API tokens
//	broker     the embedded MQTT broker (mochi-mqtt) with per-device passwords and ACLs
//	fleet      the hub's own MQTT client: reads state, reply and event, sends commands
//	api        the HTTP JSON API (bearer tokens, roles coach and admin) and the local socket
//	mosquitto  password and ACL files for running against an external mosquitto
//	ingest     uploads: tusd with grant tokens and a SHA-256 check, and the hub's lesson store
//	web        the page for coaches and IT (embedded HTML, JavaScript, CSS; a WHEP client)
//
// Topics and payloads are those of uplink/wire, shared with the box.
package hub
