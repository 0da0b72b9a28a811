package v4l2

import (
	"image"
	"math/rand/v2"
	"strings"
	"testing"
)

// pack writes a picture given by per-pixel functions in format f with the
// given stride (bytes per line of the first plane). For the 4:2:2 formats,
// cb and cr are sampled per line pair member: line y uses cb(x/2, y).
func pack(f PixelFormat, w, h, stride int, yf func(x, y int) byte, cb, cr func(cx, y int) byte) []byte {
	switch f {
	case FormatYUYV, FormatUYVY:
		b := make([]byte, stride*h)
		for y := 0; y < h; y++ {
			for cx := 0; cx < w/2; cx++ {
				p := b[y*stride+4*cx:]
				if f == FormatYUYV {
					p[0], p[1], p[2], p[3] = yf(2*cx, y), cb(cx, y), yf(2*cx+1, y), cr(cx, y)
				} else {
					p[0], p[1], p[2], p[3] = cb(cx, y), yf(2*cx, y), cr(cx, y), yf(2*cx+1, y)
				}
			}
		}
		return b
	case FormatNV12:
		b := make([]byte, stride*h+stride*h/2)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				b[y*stride+x] = yf(x, y)
			}
		}
		for cy := 0; cy < h/2; cy++ {
			for cx := 0; cx < w/2; cx++ {
				b[stride*h+cy*stride+2*cx] = cb(cx, 2*cy)
				b[stride*h+cy*stride+2*cx+1] = cr(cx, 2*cy)
			}
		}
		return b
	case FormatYU12:
		cs := stride / 2
		b := make([]byte, stride*h+2*cs*h/2)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				b[y*stride+x] = yf(x, y)
			}
		}
		for cy := 0; cy < h/2; cy++ {
			for cx := 0; cx < w/2; cx++ {
				b[stride*h+cy*cs+cx] = cb(cx, 2*cy)
				b[stride*h+cs*h/2+cy*cs+cx] = cr(cx, 2*cy)
			}
		}
		return b
	}
	panic("unknown format")
}

func TestToI420(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const w, h = 64, 36
	ys := make([]byte, w*h)
	cbs := make([]byte, w/2*h) // per line, so 4:2:2 line pairs differ
	crs := make([]byte, w/2*h)
	for i := range ys {
		ys[i] = byte(rng.UintN(256))
	}
	for i := range cbs {
		cbs[i], crs[i] = byte(rng.UintN(256)), byte(rng.UintN(256))
	}
	yf := func(x, y int) byte { return ys[y*w+x] }
	cb := func(cx, y int) byte { return cbs[y*w/2+cx] }
	cr := func(cx, y int) byte { return crs[y*w/2+cx] }
	// Reference chroma: 4:2:2 sources average the two lines (rounding half
	// up); 4:2:0 sources carry the even line's sample.
	avg := func(f func(int, int) byte, cx, cy int) byte {
		return byte((int(f(cx, 2*cy)) + int(f(cx, 2*cy+1)) + 1) / 2)
	}
	for _, f := range []PixelFormat{FormatYUYV, FormatUYVY, FormatNV12, FormatYU12} {
		for _, pad := range []int{0, 32} {
			t.Run(f.String()+map[bool]string{true: "/padded", false: "/packed"}[pad > 0], func(t *testing.T) {
				l := frameLayout{Format: f, Width: w, Height: h}
				stride := l.minStride() + pad
				if pad > 0 {
					l.Stride = stride
				}
				src := pack(f, w, h, stride, yf, cb, cr)
				img, err := toI420(nil, src, l)
				if err != nil {
					t.Fatal(err)
				}
				if img.Rect != image.Rect(0, 0, w, h) || img.SubsampleRatio != image.YCbCrSubsampleRatio420 {
					t.Fatalf("image %v %v", img.Rect, img.SubsampleRatio)
				}
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						if got, want := img.Y[img.YOffset(x, y)], yf(x, y); got != want {
							t.Fatalf("Y(%d,%d) = %d, want %d", x, y, got, want)
						}
					}
				}
				for cy := 0; cy < h/2; cy++ {
					for cx := 0; cx < w/2; cx++ {
						wantB, wantR := cb(cx, 2*cy), cr(cx, 2*cy)
						if f == FormatYUYV || f == FormatUYVY {
							wantB, wantR = avg(cb, cx, cy), avg(cr, cx, cy)
						}
						o := img.COffset(2*cx, 2*cy)
						if img.Cb[o] != wantB || img.Cr[o] != wantR {
							t.Fatalf("chroma(%d,%d) = %d,%d, want %d,%d", cx, cy, img.Cb[o], img.Cr[o], wantB, wantR)
						}
					}
				}
				// The image is reused, without allocating.
				allocs := testing.AllocsPerRun(10, func() {
					again, err := toI420(img, src, l)
					if err != nil || again != img {
						t.Fatalf("reuse: %v, same image %v", err, again == img)
					}
				})
				if allocs != 0 {
					t.Errorf("%v allocations per converted frame", allocs)
				}
			})
		}
	}
}

func TestToI420Errors(t *testing.T) {
	tests := []struct {
		name string
		l    frameLayout
		n    int
		want string
	}{
		{"short YUYV", frameLayout{Format: FormatYUYV, Width: 4, Height: 2}, 15, "short frame: 15 bytes, need 16"},
		{"short NV12 with stride", frameLayout{Format: FormatNV12, Width: 4, Height: 2, Stride: 8}, 23, "need 24"},
		{"short YU12", frameLayout{Format: FormatYU12, Width: 4, Height: 2}, 11, "need 12"},
		{"odd width", frameLayout{Format: FormatYUYV, Width: 3, Height: 2}, 100, "unsupported frame size 3x2"},
		{"zero height", frameLayout{Format: FormatNV12, Width: 4, Height: 0}, 100, "unsupported frame size"},
		{"huge", frameLayout{Format: FormatNV12, Width: 1 << 20, Height: 2}, 100, "unsupported frame size"},
		{"MJPEG", frameLayout{Format: FormatMJPEG, Width: 4, Height: 2}, 100, "pixel format not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := toI420(nil, make([]byte, tt.n), tt.l)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// A smaller stride than the format needs is treated as packed.
func TestToI420SmallStride(t *testing.T) {
	l := frameLayout{Format: FormatYUYV, Width: 4, Height: 2, Stride: 3}
	if _, err := toI420(nil, make([]byte, 16), l); err != nil {
		t.Fatal(err)
	}
}

// A size change gives a new image.
func TestToI420Resize(t *testing.T) {
	a, err := toI420(nil, make([]byte, 8*4*2), frameLayout{Format: FormatYUYV, Width: 8, Height: 4})
	if err != nil {
		t.Fatal(err)
	}
	b, err := toI420(a, make([]byte, 4*2*2), frameLayout{Format: FormatYUYV, Width: 4, Height: 2})
	if err != nil {
		t.Fatal(err)
	}
	if b == a || b.Rect.Dx() != 4 {
		t.Fatalf("got %v (same %v)", b.Rect, a == b)
	}
}

func FuzzToI420(f *testing.F) {
	f.Add(uint32(FormatYUYV), 4, 2, 0, make([]byte, 16))
	f.Add(uint32(FormatNV12), 4, 2, 8, make([]byte, 24))
	f.Add(uint32(FormatYU12), 2, 2, 0, make([]byte, 5))
	f.Add(uint32(FormatUYVY), 6, 4, 13, make([]byte, 60))
	f.Fuzz(func(t *testing.T, format uint32, w, h, stride int, data []byte) {
		l := frameLayout{Format: PixelFormat(format), Width: w % 64, Height: h % 64, Stride: stride % 512}
		img, err := toI420(nil, data, l)
		if err == nil && (img == nil || img.Rect.Dx() != l.Width || img.Rect.Dy() != l.Height) {
			t.Fatalf("no error but image %v for %+v", img, l)
		}
	})
}
