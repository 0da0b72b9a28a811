package array

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// SpeedOfSound is the speed of sound used for steering, in m/s (air at
// about 20 °C).
const SpeedOfSound = 343.0

// Point is a capsule position in metres. X and Y span the array's plane
// (azimuth is measured counter-clockwise from +X); Z is height.
type Point struct{ X, Y, Z float64 }

// Preset names a common Raspberry Pi microphone-array layout.
type Preset struct {
	Name string
	Doc  string
	Mics []Point
}

// Presets lists the built-in array geometries. Channel i of the device is
// capsule i of the list.
func Presets() []Preset {
	return []Preset{
		{"linear4", "4 capsules on the X axis, 35 mm apart, channel 0 at the left (-X)", linear(4, 0.035)},
		{"square4", "4 capsules on the corners of a square with 45.7 mm sides, channel 0 at 45°, counter-clockwise", circle(4, 0.0457/math.Sqrt2, 45)},
		{"circular6", "6 capsules on a circle of 46.3 mm radius, channel 0 at 0° (+X), counter-clockwise", circle(6, 0.0463, 0)},
	}
}

// PresetNames lists the preset names, in order.
func PresetNames() []string {
	var names []string
	for _, p := range Presets() {
		names = append(names, p.Name)
	}
	return names
}

// LookupPreset returns the capsule positions of a preset.
func LookupPreset(name string) ([]Point, error) {
	for _, p := range Presets() {
		if p.Name == name {
			return p.Mics, nil
		}
	}
	return nil, fmt.Errorf("unknown array geometry %q (want one of %s, or explicit coordinates)",
		name, strings.Join(PresetNames(), ", "))
}

func linear(n int, d float64) []Point {
	mics := make([]Point, n)
	for i := range mics {
		mics[i].X = (float64(i) - float64(n-1)/2) * d
	}
	return mics
}

func circle(n int, r, startDeg float64) []Point {
	mics := make([]Point, n)
	for i := range mics {
		a := (startDeg + 360*float64(i)/float64(n)) * math.Pi / 180
		mics[i] = Point{X: r * math.Cos(a), Y: r * math.Sin(a)}
	}
	return mics
}

// maxAperture bounds the distance between two capsules: beyond it the
// steering delays no longer fit the analysis frame.
const maxAperture = 0.5

// CheckGeometry reports what is wrong with a list of capsule positions:
// none, a non-finite coordinate, two capsules at the same place, or an
// array wider than 0.5 m.
func CheckGeometry(mics []Point) error {
	if len(mics) == 0 {
		return fmt.Errorf("array geometry: no microphones")
	}
	for i, p := range mics {
		for _, v := range []float64{p.X, p.Y, p.Z} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("array geometry: microphone %d has a non-finite coordinate", i)
			}
		}
		for j := range i {
			d := dist(p, mics[j])
			if d < 1e-3 {
				return fmt.Errorf("array geometry: microphones %d and %d are less than 1 mm apart", j, i)
			}
			if d > maxAperture {
				return fmt.Errorf("array geometry: microphones %d and %d are %.2f m apart (at most %.1f m)", j, i, d, maxAperture)
			}
		}
	}
	return nil
}

func dist(a, b Point) float64 {
	return math.Sqrt((a.X-b.X)*(a.X-b.X) + (a.Y-b.Y)*(a.Y-b.Y) + (a.Z-b.Z)*(a.Z-b.Z))
}

// Delays returns, for a far-field talker at azimuth az (degrees, in the
// array's plane), the arrival time at each capsule in seconds relative to
// the array's centroid: negative means earlier.
func Delays(mics []Point, azDeg float64, dst []float64) []float64 {
	dst = slices.Grow(dst[:0], len(mics))[:len(mics)]
	c := centroid(mics)
	s, co := math.Sincos(azDeg * math.Pi / 180)
	for i, p := range mics {
		dst[i] = -((p.X-c.X)*co + (p.Y-c.Y)*s) / SpeedOfSound
	}
	return dst
}

func centroid(mics []Point) Point {
	var c Point
	for _, p := range mics {
		c.X += p.X
		c.Y += p.Y
		c.Z += p.Z
	}
	n := float64(max(len(mics), 1))
	return Point{c.X / n, c.Y / n, c.Z / n}
}
