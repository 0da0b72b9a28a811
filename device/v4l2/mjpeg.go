package v4l2

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// maxMJPEGFrame bounds a compressed frame (a 4K frame at high quality is a
// few MB).
const maxMJPEGFrame = 16 << 20

// maxMJPEGPixels bounds the picture a frame may declare (4096x2304), so a
// corrupt header cannot make the decoder allocate and work for long.
const maxMJPEGPixels = 4096 * 2304

// minMJPEGPixelsPerByte: every 8x8 block costs at least 6 bits (a DC code
// and an end of block), so a real frame has well over one byte per 256
// pixels; a header that declares more pixels than that is corrupt.
const minMJPEGPixelsPerByte = 256

// decodeMJPEG decodes one MJPEG frame into an I420 picture, reusing dst
// when it has the right size, and returns the picture. UVC cameras often
// leave the Huffman tables out of every frame (the format says to use the
// standard ones of JPEG Annex K.3): they are put in when the frame has
// none. JPEG samples are full range (0-255); they are scaled to the
// limited range (Y 16-235, chroma 16-240) of video, as raw cameras deliver
// and the H.264 stream declares by default. Chroma of 4:2:2 (what UVC cameras send) and 4:4:4 frames is
// averaged down to 4:2:0; grey frames get neutral chroma. An odd width or
// height loses its last column or line.
func decodeMJPEG(dst *image.YCbCr, data []byte) (*image.YCbCr, error) {
	if len(data) > maxMJPEGFrame {
		return dst, fmt.Errorf("mjpeg: frame of %d bytes exceeds %d", len(data), maxMJPEGFrame)
	}
	hasDHT, sos, err := scanJPEG(data)
	if err != nil {
		return dst, fmt.Errorf("mjpeg: %w", err)
	}
	if !hasDHT {
		fixed := make([]byte, 0, len(data)+len(standardDHT))
		fixed = append(fixed, data[:sos]...)
		fixed = append(fixed, standardDHT...)
		data = append(fixed, data[sos:]...)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return dst, fmt.Errorf("mjpeg: %w", err)
	}
	if cfg.Width < 2 || cfg.Height < 2 || cfg.Width*cfg.Height > maxMJPEGPixels {
		return dst, fmt.Errorf("mjpeg: picture size %dx%d out of range", cfg.Width, cfg.Height)
	}
	if cfg.Width*cfg.Height > len(data)*minMJPEGPixelsPerByte {
		return dst, fmt.Errorf("mjpeg: %d bytes cannot hold a %dx%d picture", len(data), cfg.Width, cfg.Height)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return dst, fmt.Errorf("mjpeg: %w", err)
	}
	b := img.Bounds()
	w, h := b.Dx()&^1, b.Dy()&^1
	if dst == nil || dst.Rect != image.Rect(0, 0, w, h) || dst.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		dst = image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	}
	switch src := img.(type) {
	case *image.YCbCr:
		ycbcrToI420(dst, src)
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := dst.Y[y*dst.YStride : y*dst.YStride+w]
			for x, v := range src.Pix[y*src.Stride : y*src.Stride+w] {
				row[x] = lumaLimited[v]
			}
		}
		for i := range dst.Cb {
			dst.Cb[i], dst.Cr[i] = 128, 128
		}
	default:
		return dst, fmt.Errorf("mjpeg: %T pictures (CMYK) are not supported", img)
	}
	return dst, nil
}

// ycbcrToI420 copies the luma and takes each 2x2 block's chroma as the
// mean of the samples at its two rows (for 4:2:0 that is the sample
// itself).
func ycbcrToI420(dst, src *image.YCbCr) {
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	r := src.Rect
	for y := 0; y < h; y++ {
		so := src.YOffset(r.Min.X, r.Min.Y+y)
		row := dst.Y[y*dst.YStride : y*dst.YStride+w]
		for x, v := range src.Y[so : so+w] {
			row[x] = lumaLimited[v]
		}
	}
	if src.SubsampleRatio == image.YCbCrSubsampleRatio420 {
		for y := 0; y < h/2; y++ {
			so := src.COffset(r.Min.X, r.Min.Y+2*y)
			cb := dst.Cb[y*dst.CStride : y*dst.CStride+w/2]
			cr := dst.Cr[y*dst.CStride : y*dst.CStride+w/2]
			for x := range cb {
				cb[x] = chromaLimited[src.Cb[so+x]]
				cr[x] = chromaLimited[src.Cr[so+x]]
			}
		}
		return
	}
	for y := 0; y < h/2; y++ {
		cb := dst.Cb[y*dst.CStride : y*dst.CStride+w/2]
		cr := dst.Cr[y*dst.CStride : y*dst.CStride+w/2]
		for x := range cb {
			o0 := src.COffset(r.Min.X+2*x, r.Min.Y+2*y)
			o1 := src.COffset(r.Min.X+2*x, r.Min.Y+2*y+1)
			cb[x] = chromaLimited[(uint(src.Cb[o0])+uint(src.Cb[o1])+1)>>1]
			cr[x] = chromaLimited[(uint(src.Cr[o0])+uint(src.Cr[o1])+1)>>1]
		}
	}
}

// Full-range to limited-range tables (BT.601 scaling).
var lumaLimited, chromaLimited = func() (l, c [256]uint8) {
	for i := range l {
		l[i] = uint8((i*219+127)/255 + 16)
		c[i] = uint8(((i-128)*224+127*sign(i-128))/255 + 128)
	}
	return l, c
}()

func sign(v int) int {
	if v < 0 {
		return -1
	}
	return 1
}

// scanJPEG walks the marker segments of a JPEG up to its start of scan:
// whether a DHT segment came before it, and where the SOS marker is.
func scanJPEG(d []byte) (hasDHT bool, sos int, err error) {
	if len(d) < 4 || d[0] != 0xff || d[1] != 0xd8 {
		return false, 0, errors.New("no JPEG start of image")
	}
	i := 2
	for {
		// Markers may be preceded by fill bytes 0xff.
		for i+1 < len(d) && d[i] == 0xff && d[i+1] == 0xff {
			i++
		}
		if i+4 > len(d) {
			return false, 0, errors.New("no start of scan")
		}
		if d[i] != 0xff {
			return false, 0, fmt.Errorf("no marker at offset %d", i)
		}
		m := d[i+1]
		switch {
		case m == 0xda:
			return hasDHT, i, nil
		case m == 0xd8 || m == 0xd9 || (m >= 0xd0 && m <= 0xd7) || m == 0x01:
			return false, 0, fmt.Errorf("marker %#x before start of scan", m)
		case m == 0xc4:
			hasDHT = true
		}
		n := int(d[i+2])<<8 | int(d[i+3])
		if n < 2 {
			return false, 0, fmt.Errorf("marker %#x: segment length %d", m, n)
		}
		i += 2 + n
	}
}

// standardDHT is a DHT segment with the four tables of JPEG Annex K.3
// (luminance and chrominance, DC and AC), the ones MJPEG streams without
// tables are coded with.
var standardDHT = func() []byte {
	tables := []struct {
		class byte // 0 DC, 1 AC; low nibble: table id
		bits  [16]byte
		vals  []byte
	}{
		{0x00, [16]byte{0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{0x10, [16]byte{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d}, []byte{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa}},
		{0x01, [16]byte{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
			[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{0x11, [16]byte{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77}, []byte{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa}},
	}
	var body []byte
	for _, t := range tables {
		body = append(body, t.class)
		body = append(body, t.bits[:]...)
		body = append(body, t.vals...)
	}
	n := len(body) + 2
	return append([]byte{0xff, 0xc4, byte(n >> 8), byte(n)}, body...)
}()
