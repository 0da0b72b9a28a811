package alsa

import "fmt"

// refineFunc narrows p to what the device supports (HW_REFINE) and fails
// when nothing is left.
type refineFunc func(p *hwParams) error

// capsOf reads the capabilities out of refined parameters.
func capsOf(p *hwParams) Caps {
	var c Caps
	for _, f := range []Format{S32LE, S16LE} {
		if p.mask(paramFormat).test(f.kernel()) {
			c.Formats = append(c.Formats, f)
		}
	}
	ch, r := p.interval(paramChannels), p.interval(paramRate)
	c.MinChannels, c.MaxChannels = int(ch.value()), int(upper(*ch))
	c.MinRate, c.MaxRate = int(r.value()), int(upper(*r))
	return c
}

// upper returns the largest integer in the interval.
func upper(iv interval) uint32 {
	if iv.Flags&intervalOpenMax != 0 && iv.Max > iv.Min {
		return iv.Max - 1
	}
	return iv.Max
}

// probe returns the device's capabilities for interleaved reads.
func probe(refine refineFunc) (*hwParams, Caps, error) {
	p := newHWParams()
	p.mask(paramAccess).only(accessRWInterleaved)
	p.mask(paramSubformat).only(subformatStd)
	if err := refine(p); err != nil {
		return nil, Caps{}, fmt.Errorf("%w: interleaved read access: %w", ErrNotSupportedByDevice, err)
	}
	return p, capsOf(p), nil
}

// try applies edit to a copy of p and keeps it if the device accepts it.
func try(p *hwParams, refine refineFunc, edit func(q *hwParams)) bool {
	q := *p
	edit(&q)
	if refine(&q) != nil {
		return false
	}
	*p = q
	return true
}

// autoRates are tried in order when Config.Rate is 0.
var autoRates = [...]int{48000, 16000, 44100, 32000, 96000, 24000, 22050, 8000}

// choose negotiates cfg with the device and returns parameters for
// HW_PARAMS (every choice made, period and buffer narrowed) and the
// resulting format. The kernel picks the final period and buffer inside
// the ranges left.
func choose(cfg Config, refine refineFunc) (*hwParams, Format, Caps, error) {
	p, caps, err := probe(refine)
	if err != nil {
		return nil, 0, caps, err
	}
	bad := func(what string) (*hwParams, Format, Caps, error) {
		return nil, 0, caps, fmt.Errorf("%w: %s (device offers formats %v, %d-%d channels, %d-%d Hz)",
			ErrNotSupportedByDevice, what, caps.Formats, caps.MinChannels, caps.MaxChannels, caps.MinRate, caps.MaxRate)
	}

	// Format.
	var format Format
	for _, f := range []Format{S32LE, S16LE} {
		if (cfg.Format == FormatAuto || cfg.Format == f) && try(p, refine, func(q *hwParams) { q.mask(paramFormat).only(f.kernel()) }) {
			format = f
			break
		}
	}
	if format == FormatAuto {
		if cfg.Format == FormatAuto {
			return bad("neither S32_LE nor S16_LE")
		}
		return bad(cfg.Format.String())
	}

	// Channels.
	ok := false
	if cfg.Channels > 0 {
		ok = try(p, refine, func(q *hwParams) { q.interval(paramChannels).set(uint32(cfg.Channels)) })
	} else {
		iv := *p.interval(paramChannels)
		for n := min(upper(iv), MaxChannels); n >= max(iv.value(), MinChannels) && !ok; n-- {
			ok = try(p, refine, func(q *hwParams) { q.interval(paramChannels).set(n) })
		}
	}
	if !ok {
		if cfg.Channels > 0 {
			return bad(fmt.Sprintf("%d channels", cfg.Channels))
		}
		return bad(fmt.Sprintf("%d-%d channels", MinChannels, MaxChannels))
	}

	// Rate.
	rates := autoRates[:]
	if cfg.Rate > 0 {
		rates = []int{cfg.Rate}
	}
	ok = false
	for _, r := range rates {
		if ok = try(p, refine, func(q *hwParams) { q.interval(paramRate).set(uint32(r)) }); ok {
			break
		}
	}
	if !ok {
		return bad(fmt.Sprintf("rates %v Hz", rates))
	}
	rate := p.interval(paramRate).value()

	// Period about 10 ms (up to 25 ms), buffer 100-500 ms: room for a slow
	// reader without a large delay. Devices that cannot are left to choose.
	if !try(p, refine, func(q *hwParams) { q.interval(paramPeriodSize).set(rate / 100) }) {
		try(p, refine, func(q *hwParams) { q.interval(paramPeriodSize).setRange(rate/100, rate/40) })
	}
	try(p, refine, func(q *hwParams) { q.interval(paramBufferTime).setRange(100000, 500000) })
	return p, format, caps, nil
}
