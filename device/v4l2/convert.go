package v4l2

import (
	"fmt"
	"image"
)

// frameLayout is the memory layout of a raw frame as the driver set it.
type frameLayout struct {
	Format        PixelFormat
	Width, Height int
	Stride        int // bytes per line of the first plane; 0 means packed
}

// minStride is the smallest valid bytes-per-line of the first plane.
func (l frameLayout) minStride() int {
	switch l.Format {
	case FormatYUYV, FormatUYVY:
		return 2 * l.Width
	}
	return l.Width
}

func (l frameLayout) stride() int {
	if l.Stride < l.minStride() {
		return l.minStride()
	}
	return l.Stride
}

// frameSize is the number of bytes a complete frame needs.
func (l frameLayout) frameSize() int {
	s := l.stride()
	switch l.Format {
	case FormatYUYV, FormatUYVY:
		return s * l.Height
	case FormatNV12:
		return s*l.Height + s*(l.Height/2)
	case FormatYU12:
		return s*l.Height + 2*(s/2)*(l.Height/2)
	}
	return 0
}

func (l frameLayout) check() error {
	if !l.Format.IsRaw() {
		return fmt.Errorf("convert %v: %w", l.Format, ErrFormatUnsupported)
	}
	if l.Width <= 0 || l.Height <= 0 || l.Width%2 != 0 || l.Height%2 != 0 || l.Width > 1<<14 || l.Height > 1<<14 {
		return fmt.Errorf("convert %v: unsupported frame size %dx%d (need even, at most 16384)", l.Format, l.Width, l.Height)
	}
	if l.Stride < 0 || l.Stride > 1<<20 {
		return fmt.Errorf("convert %v: bytes per line %d out of range", l.Format, l.Stride)
	}
	return nil
}

// toI420 converts src to I420 into dst, reusing dst when it has the right
// size; it returns the image written. It does not allocate when dst is
// reused. Chroma of the 4:2:2 formats is averaged over each pair of lines.
func toI420(dst *image.YCbCr, src []byte, l frameLayout) (*image.YCbCr, error) {
	if err := l.check(); err != nil {
		return dst, err
	}
	if need := l.frameSize(); len(src) < need {
		return dst, fmt.Errorf("convert %v %dx%d: short frame: %d bytes, need %d", l.Format, l.Width, l.Height, len(src), need)
	}
	w, h, s := l.Width, l.Height, l.stride()
	if dst == nil || dst.Rect != image.Rect(0, 0, w, h) || dst.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		dst = image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	}
	cw, ch := w/2, h/2
	switch l.Format {
	case FormatYUYV, FormatUYVY:
		yo, uo, vo := 0, 1, 3
		if l.Format == FormatUYVY {
			yo, uo, vo = 1, 0, 2
		}
		for y := 0; y < ch; y++ {
			r0 := src[2*y*s : 2*y*s+2*w]
			r1 := src[(2*y+1)*s : (2*y+1)*s+2*w]
			y0 := dst.Y[2*y*dst.YStride : 2*y*dst.YStride+w]
			y1 := dst.Y[(2*y+1)*dst.YStride : (2*y+1)*dst.YStride+w]
			cb := dst.Cb[y*dst.CStride : y*dst.CStride+cw]
			cr := dst.Cr[y*dst.CStride : y*dst.CStride+cw]
			for x := 0; x < cw; x++ {
				p0 := r0[4*x : 4*x+4]
				p1 := r1[4*x : 4*x+4]
				y0[2*x] = p0[yo]
				y0[2*x+1] = p0[yo+2]
				y1[2*x] = p1[yo]
				y1[2*x+1] = p1[yo+2]
				cb[x] = uint8((uint(p0[uo]) + uint(p1[uo]) + 1) >> 1)
				cr[x] = uint8((uint(p0[vo]) + uint(p1[vo]) + 1) >> 1)
			}
		}
	case FormatNV12:
		copyPlane(dst.Y, dst.YStride, src, s, w, h)
		uv := src[s*h:]
		for y := 0; y < ch; y++ {
			row := uv[y*s : y*s+2*cw]
			cb := dst.Cb[y*dst.CStride : y*dst.CStride+cw]
			cr := dst.Cr[y*dst.CStride : y*dst.CStride+cw]
			for x := range cb {
				cb[x] = row[2*x]
				cr[x] = row[2*x+1]
			}
		}
	case FormatYU12:
		copyPlane(dst.Y, dst.YStride, src, s, w, h)
		cs := s / 2
		u := src[s*h:]
		v := u[cs*ch:]
		copyPlane(dst.Cb, dst.CStride, u, cs, cw, ch)
		copyPlane(dst.Cr, dst.CStride, v, cs, cw, ch)
	}
	return dst, nil
}

func copyPlane(dst []byte, dstStride int, src []byte, srcStride, w, h int) {
	for y := 0; y < h; y++ {
		copy(dst[y*dstStride:y*dstStride+w], src[y*srcStride:y*srcStride+w])
	}
}

// ConvertFrame converts one raw frame of w x h in format f (YUYV, UYVY,
// NV12 or YU12, lines packed) to I420, reusing dst when it has the size; it
// is the conversion RawCamera applies to every captured frame.
func ConvertFrame(dst *image.YCbCr, data []byte, f PixelFormat, w, h int) (*image.YCbCr, error) {
	return toI420(dst, data, frameLayout{Format: f, Width: w, Height: h})
}
