package audio

import (
	"errors"
	"fmt"
	"time"

	"github.com/classcap/classcap/capture/media"
)

const (
	// maxPacketBytes bounds one 20 ms Opus packet (RFC 6716 allows 1275
	// bytes per frame plus the TOC byte).
	maxPacketBytes = 1276
	// slabBytes is the size of the blocks packet payloads are carved from:
	// at 32 kbit/s one slab lasts about 16 s.
	slabBytes = 64 << 10
	// packetDur is the playing time of one Opus packet.
	packetDur = time.Duration(media.OpusFrameSamples) * time.Second / media.AudioRate
)

// ErrClosed is returned by Encoder methods called after Close.
var ErrClosed = errors.New("audio: encoder closed")

// EncoderConfig selects the Opus encoder settings.
type EncoderConfig struct {
	Channels   int // 1 or 2; 0 means 1
	BitrateBps int // 0 means 32 kbit/s per channel
	Complexity int // 1 (cheapest) to 10; 0 means 10
}

// withDefaults fills in cfg's defaults and checks its ranges.
func (cfg EncoderConfig) withDefaults() (EncoderConfig, error) {
	if cfg.Channels == 0 {
		cfg.Channels = 1
	}
	if cfg.Channels != 1 && cfg.Channels != 2 {
		return cfg, fmt.Errorf("opus encoder: channels %d, want 1 or 2", cfg.Channels)
	}
	if cfg.BitrateBps == 0 {
		cfg.BitrateBps = 32000 * cfg.Channels
	}
	if cfg.BitrateBps < 6000 || cfg.BitrateBps > 510000 {
		return cfg, fmt.Errorf("opus encoder: bitrate %d bit/s out of range 6000-510000", cfg.BitrateBps)
	}
	if cfg.Complexity == 0 {
		cfg.Complexity = 10
	}
	if cfg.Complexity < 1 || cfg.Complexity > 10 {
		return cfg, fmt.Errorf("opus encoder: complexity %d out of range 1-10", cfg.Complexity)
	}
	return cfg, nil
}

// samplesToDur converts a count of 48 kHz samples to a duration without
// overflowing for long streams.
func samplesToDur(k int64) time.Duration {
	return media.FramesToDur(k, media.AudioRate)
}

// durToSamplesCeil is the number of 48 kHz samples covering d (d >= 0).
func durToSamplesCeil(d time.Duration) int64 {
	const r = media.AudioRate
	s := int64(d/time.Second) * r
	rem := int64(d % time.Second)
	return s + (rem*r+int64(time.Second)-1)/int64(time.Second)
}

// clamp1 limits v to [-1, 1] and maps NaN to 0.
func clamp1(v float32) float32 {
	switch {
	case v > 1:
		return 1
	case v < -1:
		return -1
	case v != v:
		return 0
	}
	return v
}
