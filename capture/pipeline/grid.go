package pipeline

import "time"

// frameGrid puts raw pictures on the camera's nominal frame grid before
// they are encoded: a PTS is rounded to the nearest frame slot, and a
// picture that lands in the slot of the picture before it is dropped.
// Kernel timestamps jitter (USB cameras, a loaded machine); pictures closer
// together than a frame period make timestamps that collide once a player
// or ffmpeg counts in frames. Dropping a raw picture costs the pictures
// after it nothing (it was never encoded), and the grid is absolute, so
// the video never drifts from the sound.
type frameGrid struct {
	period time.Duration // 0: no grid
	last   int64
	have   bool
}

func newFrameGrid(fps float64) *frameGrid {
	if fps <= 0 {
		return &frameGrid{}
	}
	return &frameGrid{period: time.Duration(float64(time.Second) / fps)}
}

// place returns the picture's PTS on the grid, and false when the picture
// is to be dropped.
func (g *frameGrid) place(pts time.Duration) (time.Duration, bool) {
	if g.period <= 0 {
		return pts, true
	}
	slot := int64((pts + g.period/2) / g.period)
	if g.have && slot <= g.last {
		return 0, false
	}
	g.last, g.have = slot, true
	return time.Duration(slot) * g.period, true
}
