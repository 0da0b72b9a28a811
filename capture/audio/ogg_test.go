//go:build cgo

package audio

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/classcap/classcap/capture/media"
)

// oggCRCTable returns the Ogg page checksum table (CRC-32, polynomial
// 0x04c11db7, not reflected, initial value 0).
func oggCRCTable() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}

// writeOggOpus writes packets as an Ogg Opus file (RFC 7845), one packet
// per page; total is the number of input samples, which sets the end
// trimming of the last page.
func writeOggOpus(t *testing.T, path string, channels, preSkip int, packets []media.AudioPacket, total int64) {
	t.Helper()
	oggCRC := oggCRCTable()
	var out bytes.Buffer
	var seq uint32
	page := func(flags byte, granule int64, data []byte) {
		var h bytes.Buffer
		h.WriteString("OggS")
		h.WriteByte(0)
		h.WriteByte(flags)
		binary.Write(&h, binary.LittleEndian, granule)
		binary.Write(&h, binary.LittleEndian, uint32(0x636c6173)) // serial
		binary.Write(&h, binary.LittleEndian, seq)
		binary.Write(&h, binary.LittleEndian, uint32(0)) // CRC, filled below
		var lacing []byte
		n := len(data)
		for ; n >= 255; n -= 255 {
			lacing = append(lacing, 255)
		}
		lacing = append(lacing, byte(n))
		if len(lacing) > 255 {
			t.Fatalf("packet of %d bytes too large for one page", len(data))
		}
		h.WriteByte(byte(len(lacing)))
		h.Write(lacing)
		h.Write(data)
		b := h.Bytes()
		var crc uint32
		for _, c := range b {
			crc = crc<<8 ^ oggCRC[byte(crc>>24)^c]
		}
		binary.LittleEndian.PutUint32(b[22:], crc)
		out.Write(b)
		seq++
	}
	head := []byte("OpusHead")
	head = append(head, 1, byte(channels))
	head = binary.LittleEndian.AppendUint16(head, uint16(preSkip))
	head = binary.LittleEndian.AppendUint32(head, media.AudioRate)
	head = append(head, 0, 0, 0) // gain, mapping family 0
	page(0x02, 0, head)
	tags := []byte("OpusTags")
	tags = binary.LittleEndian.AppendUint32(tags, 8)
	tags = append(tags, "classcap"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0)
	page(0, 0, tags)
	var granule int64
	for i, p := range packets {
		granule += int64(p.Samples)
		flags := byte(0)
		if i == len(packets)-1 {
			flags = 0x04
			granule = min(granule, total+int64(preSkip))
		}
		page(flags, granule, p.Data)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
