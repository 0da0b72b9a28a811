package pipeline

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/classcap/classcap/capture/array"
	"github.com/classcap/classcap/capture/audio"
	"github.com/classcap/classcap/capture/media"
)

// arrayState is the microphone-array chain of the running microphone.
type arrayState struct {
	mu     sync.Mutex
	chain  *array.Chain
	tried  bool
	reason string // why the configured chain is not running
}

// mixer returns what turns the microphone's blocks (at media.AudioRate)
// into the encoder's input: the array chain when one is configured and the
// microphone delivers one channel per capsule, else the plain average.
func (s *arrayState) mixer(cfg Config, channels int, m *audio.Mixer, log *slog.Logger) func(media.PCM) (media.PCM, error) {
	plain := func(p media.PCM) (media.PCM, error) { return m.Mix(p), nil }
	if channels == min(max(cfg.AudioChannels, 1), 2) {
		// Nothing to mix: the encoder takes the block as it is (it
		// clamps, and copies what it keeps).
		plain = func(p media.PCM) (media.PCM, error) { return p, nil }
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tried, s.chain, s.reason = true, nil, ""
	if cfg.Array == nil {
		return plain
	}
	ac := *cfg.Array
	ac.Rate, ac.OutChannels = media.AudioRate, max(cfg.AudioChannels, 1)
	if len(ac.Mics) != channels {
		s.reason = fmt.Sprintf("the microphone delivers %d channel(s), the array geometry has %d microphones", channels, len(ac.Mics))
	} else if c, err := array.New(ac); err != nil {
		s.reason = err.Error()
	} else {
		s.chain = c
		log.Info("microphone-array processing on", "microphones", channels, "latency_samples", c.Latency())
		// The chain's output lags its input by its latency: its first
		// sample was heard that long before the input block's first one.
		lat := time.Duration(c.Latency()) * time.Second / time.Duration(media.AudioRate)
		return func(p media.PCM) (media.PCM, error) {
			out, err := c.Process(p)
			out.PTS -= lat
			return out, err
		}
	}
	log.Warn("microphone-array processing off; the channels are averaged", "reason", s.reason)
	return plain
}

// ArrayLevels returns the array chain's 100 ms meters, and false when the
// chain is not running or has not measured 100 ms yet.
func (p *Pipeline) ArrayLevels() (array.Levels, bool) {
	p.arr.mu.Lock()
	c := p.arr.chain
	p.arr.mu.Unlock()
	if c == nil {
		return array.Levels{}, false
	}
	return c.Levels()
}

// AudioProcessing returns the configuration of the array chain that runs
// (nil when the channels are averaged) and, when a configured chain does
// not run, why. Before the microphone first opens it reports what is
// configured.
func (p *Pipeline) AudioProcessing() (*array.Config, string) {
	p.arr.mu.Lock()
	defer p.arr.mu.Unlock()
	if !p.arr.tried || p.arr.chain == nil {
		configured := p.config().Array
		if p.arr.tried || configured == nil {
			return nil, p.arr.reason
		}
		return configured, ""
	}
	c := p.arr.chain.Config()
	return &c, ""
}
