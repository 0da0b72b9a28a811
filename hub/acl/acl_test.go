package acl

import "testing"

func TestAllowed(t *testing.T) {
	tests := []struct {
		user, topic string
		write, want bool
	}{
		{"room-1", "classcap/v1/room-1/state", true, true},
		{"room-1", "classcap/v1/room-1/reply", true, true},
		{"room-1", "classcap/v1/room-1/event", true, true},
		{"room-1", "classcap/v1/room-1/upload", true, true},
		{"room-1", "classcap/v1/room-1/cmd", false, true},
		{"room-1", "classcap/v1/room-1/config", false, true},
		{"room-1", "classcap/v1/room-1/grant", false, true},
		{"room-1", "classcap/v1/room-1/#", false, true},
		{"room-1", "classcap/v1/room-1/+", false, true},
		// only the hub sends commands, config and grants
		{"room-1", "classcap/v1/room-1/cmd", true, false},
		{"room-1", "classcap/v1/room-1/config", true, false},
		{"room-1", "classcap/v1/room-1/grant", true, false},
		// a device does not read what boxes send
		{"room-1", "classcap/v1/room-1/state", false, false},
		{"room-1", "classcap/v1/room-1/#", true, false},
		// another device's prefix
		{"room-1", "classcap/v1/room-2/state", true, false},
		{"room-1", "classcap/v1/room-2/cmd", false, false},
		{"room-1", "classcap/v1/room-10/state", true, false},
		{"room-1", "classcap/v1/room-1x/cmd", false, false},
		{"room-1", "classcap/v1/+/cmd", false, false},
		{"room-1", "classcap/v1/#", false, false},
		{"room-1", "#", false, false},
		{"room-1", "classcap/v1/room-1/state/extra", true, false},
		{"room-1", "classcap/v1/room-1/unknown", true, false},
		{"room-1", "$SYS/broker/uptime", false, false},
		// user names that are no device id
		{"", "classcap/v1//state", true, false},
		{"+", "classcap/v1/+/state", true, false},
		{"#", "classcap/v1/#/state", true, false},
		// the hub
		{HubUser, "classcap/v1/room-1/cmd", true, true},
		{HubUser, "classcap/v1/#", false, true},
		{HubUser, "other/topic", true, false},
	}
	for _, tt := range tests {
		if got := Allowed(tt.user, tt.topic, tt.write); got != tt.want {
			t.Errorf("Allowed(%q, %q, write=%v) = %v, want %v", tt.user, tt.topic, tt.write, got, tt.want)
		}
	}
}
