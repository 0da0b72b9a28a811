//go:build !cgo

package audio

import (
	"errors"

	"github.com/classcap/classcap/capture/media"
)

// errNoCgo is returned by NewEncoder in builds without cgo, which cannot
// link libopus.
var errNoCgo = errors.New("opus encoder: built without cgo (CGO_ENABLED=0), libopus unavailable")

// OpusVersion says that no libopus is linked in.
func OpusVersion() string { return "none (built without cgo)" }

// Encoder is unavailable without cgo: NewEncoder always fails.
type Encoder struct{}

// NewEncoder fails: libopus needs cgo.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, errNoCgo
}

// Config returns the zero config.
func (e *Encoder) Config() EncoderConfig { return EncoderConfig{} }

// Lookahead returns 0.
func (e *Encoder) Lookahead() int { return 0 }

// Write fails.
func (e *Encoder) Write(media.PCM, func(media.AudioPacket)) error { return errNoCgo }

// Flush fails.
func (e *Encoder) Flush(func(media.AudioPacket)) error { return errNoCgo }

// Close does nothing.
func (e *Encoder) Close() error { return nil }
