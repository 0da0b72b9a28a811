package media

import (
	"testing"
	"time"
)

func TestFramesToDur(t *testing.T) {
	tests := []struct {
		frames int64
		rate   int
		want   time.Duration
	}{
		{0, 48000, 0},
		{480, 48000, 10 * time.Millisecond},
		{160, 16000, 10 * time.Millisecond},
		{48000 * 3600 * 24 * 30, 48000, 30 * 24 * time.Hour},
		{1, 44100, 22675}, // truncated nanoseconds
	}
	for _, tt := range tests {
		if got := FramesToDur(tt.frames, tt.rate); got != tt.want {
			t.Errorf("FramesToDur(%d, %d) = %v, want %v", tt.frames, tt.rate, got, tt.want)
		}
	}
}
