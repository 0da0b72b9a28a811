package alsa

import (
	"testing"
	"time"
)

func TestAvailMin(t *testing.T) {
	tests := []struct {
		name                  string
		block, period, buffer int
		want                  int
	}{
		{"a block of several periods wakes the reader once", 2880, 480, 24000, 2880},
		{"a block shorter than a period: the device wakes per period anyway", 240, 480, 24000, 480},
		{"never more than half the buffer: room to be late", 2880, 480, 4800, 2400},
		{"a two-period buffer", 2880, 2400, 4800, 2400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := availMin(tt.block, tt.period, tt.buffer); got != tt.want {
				t.Errorf("availMin(%d, %d, %d) = %d, want %d", tt.block, tt.period, tt.buffer, got, tt.want)
			}
		})
	}
	if got := blockFrames(48000, 60*time.Millisecond); got != 2880 {
		t.Errorf("blockFrames(48000, 60ms) = %d, want 2880", got)
	}
	if got := blockFrames(44100, 10*time.Millisecond); got != 441 {
		t.Errorf("blockFrames(44100, 10ms) = %d, want 441", got)
	}
}

func TestBlockValidated(t *testing.T) {
	for _, b := range []time.Duration{-time.Millisecond, time.Microsecond, time.Second} {
		c := Config{Device: "hw:1,0", Block: b}.withDefaults()
		if err := c.validate(); err == nil {
			t.Errorf("block %v accepted", b)
		}
	}
	if c := (Config{Device: "hw:1,0"}).withDefaults(); c.Block != BlockDuration || c.validate() != nil {
		t.Errorf("default block %v, %v", c.Block, c.validate())
	}
}
