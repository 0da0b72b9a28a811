package segment

import "encoding/binary"

// fragSample is one sample of a track's run in a fragment.
type fragSample struct {
	duration uint32 // in the track's timescale
	payload  []byte
	nonSync  bool // not a random-access point (a video picture other than an IDR)
}

// fragTrack is one track's run in a fragment.
type fragTrack struct {
	id       uint32
	baseTime uint64 // decode time of the first sample
	samples  []fragSample
}

// Sizes of the fixed boxes of a fragment (ISO/IEC 14496-12).
const (
	boxHeader  = 8
	mfhdSize   = boxHeader + 4 + 4     // version+flags, sequence_number
	tfhdSize   = boxHeader + 4 + 4     // version+flags, track_ID
	tfdtSize   = boxHeader + 4 + 8     // version 1: 64-bit baseMediaDecodeTime
	trunHeader = boxHeader + 4 + 4 + 4 // version+flags, sample_count, data_offset

	tfhdDefaultBaseIsMoof = 0x020000
	trunDataOffset        = 0x000001
	trunSampleDuration    = 0x000100
	trunSampleSize        = 0x000200
	trunSampleFlags       = 0x000400
	sampleIsNonSync       = 1 << 16 // sample_is_non_sync_sample in sample_flags
)

// appendFragment appends one movie fragment to b: a moof (mfhd, then per
// track a traf of tfhd, tfdt and trun) and the mdat with every track's
// samples in order. The layout is the one mediacommon's fmp4.Part.Marshal
// writes, byte for byte (a test holds the two together), without its
// reflection over every field: that cost about 2,500 allocations per
// half-second fragment, most of the recorder's garbage.
func appendFragment(b []byte, seq uint32, tracks []fragTrack) []byte {
	moofSize, dataSize := boxHeader+mfhdSize, 0
	for _, t := range tracks {
		moofSize += boxHeader + tfhdSize + tfdtSize + trunSize(t)
		for _, s := range t.samples {
			dataSize += len(s.payload)
		}
	}

	b = appendBox(b, moofSize, "moof")
	b = appendBox(b, mfhdSize, "mfhd")
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, seq)
	dataOffset := moofSize + boxHeader // the first sample, from the moof's start
	for _, t := range tracks {
		b = appendBox(b, boxHeader+tfhdSize+tfdtSize+trunSize(t), "traf")
		b = appendBox(b, tfhdSize, "tfhd")
		b = binary.BigEndian.AppendUint32(b, tfhdDefaultBaseIsMoof)
		b = binary.BigEndian.AppendUint32(b, t.id)
		b = appendBox(b, tfdtSize, "tfdt")
		b = binary.BigEndian.AppendUint32(b, 1<<24) // version 1
		b = binary.BigEndian.AppendUint64(b, t.baseTime)
		flags := trunFlags(t)
		b = appendBox(b, trunSize(t), "trun")
		b = binary.BigEndian.AppendUint32(b, 1<<24|flags) // version 1
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.samples)))
		b = binary.BigEndian.AppendUint32(b, uint32(dataOffset))
		for _, s := range t.samples {
			b = binary.BigEndian.AppendUint32(b, s.duration)
			b = binary.BigEndian.AppendUint32(b, uint32(len(s.payload)))
			if flags&trunSampleFlags != 0 {
				var f uint32
				if s.nonSync {
					f = sampleIsNonSync
				}
				b = binary.BigEndian.AppendUint32(b, f)
			}
			dataOffset += len(s.payload)
		}
	}
	b = appendBox(b, boxHeader+dataSize, "mdat")
	for _, t := range tracks {
		for _, s := range t.samples {
			b = append(b, s.payload...)
		}
	}
	return b
}

// trunFlags says which per-sample fields t's trun carries: sample flags
// only when some sample is not a sync sample.
func trunFlags(t fragTrack) uint32 {
	flags := uint32(trunDataOffset | trunSampleDuration | trunSampleSize)
	for _, s := range t.samples {
		if s.nonSync {
			return flags | trunSampleFlags
		}
	}
	return flags
}

func trunSize(t fragTrack) int {
	entry := 8
	if trunFlags(t)&trunSampleFlags != 0 {
		entry = 12
	}
	return trunHeader + entry*len(t.samples)
}

func appendBox(b []byte, size int, typ string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	return append(b, typ...)
}
