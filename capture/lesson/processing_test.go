package lesson

import (
	"reflect"
	"testing"
)

// lesson.json written before the audio processing was recorded still
// parses, with no processing; one with it round-trips.
func TestAudioProcessingField(t *testing.T) {
	old := []byte(`{"v":1,"id":"000001-abcdefghij","state":"complete","audio":{"codec":"opus","channels":1,"rate":48000,"bitrate":32000},"segments":[]}`)
	m, err := ParseMeta(old)
	if err != nil {
		t.Fatalf("old lesson.json: %v", err)
	}
	if m.Audio.Processing != nil || m.Audio.Codec != "opus" {
		t.Errorf("old lesson.json: audio %+v", m.Audio)
	}
	steer := 90.0
	m.Audio.Processing = &AudioProcessing{Chain: "array", Geometry: "linear4",
		Mics:       [][3]float64{{-0.0525, 0, 0}, {-0.0175, 0, 0}, {0.0175, 0, 0}, {0.0525, 0, 0}},
		HighPassHz: 80, AutoCalibrate: true, Beamform: true, SteerDeg: &steer, SuppressDB: 12,
		AGC: true, AGCTargetDBFS: -20, AGCMaxGainDB: 24, LimitDBFS: -1}
	back, err := ParseMeta(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Audio, m.Audio) {
		t.Errorf("round trip: %+v, want %+v", back.Audio.Processing, m.Audio.Processing)
	}
}
