package segment

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// appendFragment writes what mediacommon's fmp4.Part.Marshal writes, byte
// for byte, for every shape of fragment the writer makes: video and audio,
// either alone, keyframes anywhere or nowhere, empty payloads.
func TestAppendFragmentMatchesMediacommon(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	payload := func() []byte {
		b := make([]byte, rng.IntN(3000))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var prev []byte
	for i := range 300 {
		var tracks []fragTrack
		var part fmp4.Part
		part.SequenceNumber = rng.Uint32()
		for _, id := range []uint32{VideoTrackID, AudioTrackID} {
			if rng.IntN(4) == 0 {
				continue // this track has nothing in this fragment
			}
			ft := fragTrack{id: id, baseTime: rng.Uint64() >> rng.IntN(64)}
			pt := &fmp4.PartTrack{ID: int(id), BaseTime: ft.baseTime}
			allSync := rng.IntN(3) == 0
			for range 1 + rng.IntN(40) {
				s := fragSample{duration: rng.Uint32() >> rng.IntN(32), payload: payload(), nonSync: !allSync && rng.IntN(5) != 0}
				ft.samples = append(ft.samples, s)
				pt.Samples = append(pt.Samples, &fmp4.Sample{Duration: s.duration, Payload: s.payload, IsNonSyncSample: s.nonSync})
			}
			tracks = append(tracks, ft)
			part.Tracks = append(part.Tracks, pt)
		}
		if len(tracks) == 0 {
			continue
		}
		var want seekablebuffer.Buffer
		if err := part.Marshal(&want); err != nil {
			t.Fatal(err)
		}
		// Appended after an earlier fragment, as the writer reuses its buffer.
		got := appendFragment(prev, part.SequenceNumber, tracks)
		if !bytes.Equal(got[len(prev):], want.Bytes()) {
			t.Fatalf("fragment %d (%d tracks) differs from mediacommon's:\n got %x\nwant %x", i, len(tracks),
				head(got[len(prev):]), head(want.Bytes()))
		}
		prev = got[len(prev):]
	}
}

func head(b []byte) []byte { return b[:min(len(b), 200)] }
